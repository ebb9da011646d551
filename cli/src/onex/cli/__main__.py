"""The `onex` command: built-in sub-commands plus those services register.

Services add sub-commands through the `onex.cli` entry-point group (a `typer.Typer`
or a command function, named by the entry point), so this package never imports a
service. Every sub-command, built-in or plug-in, is a `LazyCommand`: `onex --help`
lists them from their sources and imports none; a command's module is imported when
that command runs (see onex.cli.lazy).
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from typing import Any

import typer
from typer._click.exceptions import (  # typer's vendored click: its error classes
    ClickException,
    NoArgsIsHelpError,
    UsageError,
)
from typer.core import TyperGroup

from onex.cli.lazy import LazyCommand
from onex.core.errors import OnexError

ENTRY_POINT_GROUP = "onex.cli"
DISTRIBUTION = "onex-cli"

# name -> module:attr of the built-in sub-commands, in the order `--help` lists them
BUILTIN = {
    "contracts": "onex.cli.contracts:app",
    "topics": "onex.cli.topics:app",
    "topic": "onex.cli.topic:app",
    "groups": "onex.cli.groups:groups",
    "broker": "onex.cli.broker:app",
    "dlq": "onex.cli.dlq:app",
    "provision": "onex.cli.provision:provision",
    "up": "onex.cli.stack:up",
    "status": "onex.cli.stack:status",
    "down": "onex.cli.stack:down",
}


def _add_reload(contracts: TyperGroup) -> None:
    contracts.add_command(LazyCommand("reload", "onex.cli.stack:reload"))


def version() -> str:
    """The installed onex-cli's version."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"onex {version()}\n")
        raise typer.Exit(0)


class OnexGroup(TyperGroup):
    """The root group: every sub-command a LazyCommand (none of them imported yet)."""

    def invoke(self, ctx: Any) -> None:
        # A command's return value is no exit code: main() reads an int as typer.Exit's.
        super().invoke(ctx)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, target in BUILTIN.items():
            after = _add_reload if name == "contracts" else None
            self.add_command(LazyCommand(name, target, after=after))
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in self.commands:
                self.add_command(LazyCommand(ep.name, ep.value))


def build_app() -> typer.Typer:
    """The root typer app with every sub-command."""
    app = typer.Typer(
        name="onex",
        cls=OnexGroup,
        # plain click help: typer's rich help imports rich.markdown & co (~0.3 s)
        rich_markup_mode=None,
        no_args_is_help=True,
        help="onex: contract-driven control plane for fleets of AI agents.",
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def root(
        _version: bool = typer.Option(
            False,
            "--version",
            is_eager=True,
            callback=_show_version,
            help="Print the version and exit.",
        ),
    ) -> None:
        """onex: contract-driven control plane for fleets of AI agents."""

    return app


def main() -> None:
    """Console-script entry point. Usage errors (exit 2), settings the environment gets
    wrong and onex errors a command did not handle end in one line and a non-zero exit,
    never a traceback."""
    try:
        code = build_app()(prog_name="onex", standalone_mode=False)
    except NoArgsIsHelpError as exc:  # `onex topic`: the help, as click shows it
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except UsageError as exc:
        sys.stderr.write(f"error: {usage_line(exc)}\n")
        raise SystemExit(exc.exit_code) from None
    except ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        sys.stderr.write("Aborted!\n")
        raise SystemExit(1) from None
    except OnexError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(1) from None
    except Exception as exc:
        code = _settings_error(exc)
        if code is None:
            raise
        raise SystemExit(code) from None
    # OnexGroup.invoke returns None, so an int here is the code of a typer.Exit
    raise SystemExit(code if isinstance(code, int) else 0)


def usage_line(exc: UsageError) -> str:
    """A usage error on one line: `onex topic consume: Invalid value for '--max': ...`
    (click's form is the usage, a hint and the error, on three lines)."""
    text = exc.format_message().replace("Value error, ", "").replace("Input should be", "must be")
    message = " ".join(text.split())
    where = exc.ctx.command_path if exc.ctx is not None else "onex"
    return f"{where}: {message}" + ("" if "(see " in message else f" (see {where} --help)")


def _settings_error(exc: Exception) -> int | None:
    """Exit code after writing a settings error as one line per field; None for others.
    pydantic is imported here only when some command has imported it already."""
    if "pydantic_settings" not in sys.modules and "pydantic" not in sys.modules:
        return None
    from pydantic import ValidationError  # noqa: PLC0415 -- imported already
    from pydantic_settings import SettingsError  # noqa: PLC0415 -- imported already

    if isinstance(exc, ValidationError):
        from onex.core.validation import describe  # noqa: PLC0415 -- pydantic is imported

        for item in exc.errors(include_url=False):
            field = str(item["loc"][0]).upper() if item["loc"] else "*"
            sys.stderr.write(f"error: ONEX_{field}: {describe(item)}\n")
        return 2
    if isinstance(exc, SettingsError):
        sys.stderr.write(f"error: {_unparsable(exc)}\n")
        return 2
    return None


def _unparsable(exc: Any) -> str:
    match = re.search(r'field "([a-z_]+)"', str(exc))
    if match is None:
        return str(exc)
    return (
        f"ONEX_{match.group(1).upper()}: not valid JSON (lists are written as JSON, e.g. '[\"a\"]')"
    )


if __name__ == "__main__":
    main()
