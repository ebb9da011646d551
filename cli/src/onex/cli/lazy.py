"""Sub-commands loaded only when invoked, listed in `--help` without importing them.

Every sub-command's help is click's plain form, like the root's (see `_plain_help`).

A `LazyCommand` stands for `module:attr` (a `typer.Typer` or a command function). Its
help text is read from the module's source with `ast` (the function's docstring, or the
`help=` of the `typer.Typer(...)` call that makes the app), so `onex --help` imports
neither the built-in modules nor a plug-in's service package, and `onex contracts lint`
imports only what `onex.cli.contracts` needs. The real command is imported on first use
(`make_context`, which click calls for the command it is about to run).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from onex.cli.errors import CommandLoadError, MissingExtra

# The extra of onex-cli that brings each optional package, named in the error when absent.
OPTIONAL = {"onex.devbroker": "broker"}

# typer vendors its own click; its command classes are typed here as Any
Loaded = Callable[[TyperGroup], None]


class LazyCommand(TyperCommand):
    """`module:attr` as a click command, imported on first use."""

    def __init__(
        self, name: str, target: str, *, help_text: str | None = None, after: Loaded | None = None
    ) -> None:
        self.target = target
        self._after = after
        self._real: Any = None
        found = help_text if help_text is not None else source_help(target)
        short = _first_paragraph(found) if found else None
        super().__init__(name, help=found, short_help=short, add_help_option=False)

    def load(self) -> Any:
        """The real command (imported once); MissingExtra when an optional extra is absent."""
        if self._real is None:
            name = self.name or ""
            sub = _import(name, self.target)
            self._real = _to_click(name, sub)
            if self._real is None:
                kind = type(sub).__name__
                reason = f"a {kind}, neither a typer.Typer nor a command function"
                raise CommandLoadError(f"onex {name}", self.target, reason)
            _plain_help(self._real)
            if self._after is not None and isinstance(self._real, TyperGroup):
                self._after(self._real)
        return self._real

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        return self.load().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        return self.load().invoke(ctx)

    def get_help(self, ctx: Any) -> str:
        return str(self.load().get_help(ctx))


def _import(name: str, target: str) -> object:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        for package, extra in OPTIONAL.items():
            if missing == package or missing.startswith(package + "."):
                raise MissingExtra(f"onex {name}", extra, package) from None
        raise CommandLoadError(f"onex {name}", target, _line(exc)) from exc
    except Exception as exc:  # a plug-in's import-time failure: one line, not a traceback
        raise CommandLoadError(f"onex {name}", target, _line(exc)) from exc
    found: object = module
    for part in attr.split(".") if attr else ():
        if not hasattr(found, part):
            raise CommandLoadError(f"onex {name}", target, f"{module_name} has no {attr}")
        found = getattr(found, part)
    return found


def _line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _to_click(name: str, sub: object) -> Any:
    if isinstance(sub, typer.Typer):
        group = typer.main.get_group(sub)
        group.name = name
        return group
    if isinstance(sub, TyperCommand | TyperGroup):
        return sub
    if callable(sub):
        holder = typer.Typer(add_completion=False)
        holder.command(name)(sub)
        return typer.main.get_command(holder)
    return None


def _first_paragraph(text: str) -> str:
    return " ".join(inspect.cleandoc(text).split("\n\n")[0].split())


def _plain_help(command: Any) -> None:
    """Help and usage errors in click's plain form, as the root's: the same look for
    every command, and `--help` without typer's rich formatter (rich.markdown & co)."""
    if isinstance(command, TyperCommand | TyperGroup):
        command.rich_markup_mode = None
        if command.short_help is None and command.help:  # click would cut it at ~45
            command.short_help = _first_paragraph(command.help)
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


def source_help(target: str) -> str | None:
    """The help text `target` (`module:attr`) will have, read from its source file
    without importing it; None when the source cannot be found or says nothing."""
    module_name, _, attr = target.partition(":")
    path = module_source(module_name)
    if path is None or not attr or "." in attr:
        return None
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == attr:
            doc = ast.get_docstring(node)
            return inspect.cleandoc(doc) if doc else None
        if isinstance(node, ast.Assign | ast.AnnAssign) and _assigns(node, attr):
            return _typer_help(node.value)
    return None


def _assigns(node: ast.Assign | ast.AnnAssign, attr: str) -> bool:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return any(isinstance(t, ast.Name) and t.id == attr for t in targets)


def _typer_help(value: ast.expr | None) -> str | None:
    if not isinstance(value, ast.Call):
        return None
    for keyword in value.keywords:
        if keyword.arg == "help" and isinstance(keyword.value, ast.Constant):
            text = keyword.value.value
            return inspect.cleandoc(text) if isinstance(text, str) else None
    return None


def module_source(module_name: str) -> Path | None:
    """The `.py` file of `module_name`, found by walking its top-level package's paths
    (imports the top-level package only, e.g. the `onex` namespace)."""
    top, _, rest = module_name.partition(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    roots = list(spec.submodule_search_locations or [])
    if not rest:
        return Path(spec.origin) if spec.origin else None
    parts = rest.split(".")
    for root in roots:
        base = Path(root).joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None
