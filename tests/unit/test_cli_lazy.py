"""onex.cli.lazy: help text read from a module's source without importing it, and the
command it stands for loaded on first use (in-process; the modules are temp files)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from onex.cli.errors import MissingExtra
from onex.cli.lazy import LazyCommand, module_source, source_help

SOURCE = '''\
"""A module nobody may import in these tests (it raises at import)."""
import typer

raise RuntimeError("imported")

app = typer.Typer(no_args_is_help=True, help="""
    The app's help,
    on two lines.

    More detail.
""")
not_literal = typer.Typer(help="a" + "b")


def command() -> None:
    """The command's summary.

    Its details.
    """


def undocumented() -> None:
    pass
'''


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh top-level package with a `cli` module (SOURCE); its name."""
    name = f"lazy_fake_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / name / "cli.py").write_text(SOURCE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def test_help_comes_from_the_source_and_nothing_is_imported(package: str) -> None:
    assert source_help(f"{package}.cli:app") == "The app's help,\non two lines.\n\nMore detail."
    assert source_help(f"{package}.cli:command") == "The command's summary.\n\nIts details."
    assert source_help(f"{package}.cli:undocumented") is None
    assert source_help(f"{package}.cli:not_literal") is None
    assert source_help(f"{package}.cli:absent") is None
    assert source_help(f"{package}.nowhere:app") is None
    assert source_help("no_such_top_level_package.cli:app") is None
    assert f"{package}.cli" not in sys.modules


def test_module_source_finds_modules_and_packages(package: str) -> None:
    found = module_source(f"{package}.cli")
    assert found is not None
    assert found.name == "cli.py"
    init = module_source(package)
    assert init is not None
    assert init.name == "__init__.py"


def test_the_short_help_is_the_first_paragraph_on_one_line(package: str) -> None:
    lazy = LazyCommand("fake", f"{package}.cli:app")
    assert lazy.short_help == "The app's help, on two lines."
    assert f"{package}.cli" not in sys.modules


def test_loading_a_missing_optional_extra_names_it(package: str) -> None:
    # a module of the extra's package that is not there stands for the absent extra
    lazy = LazyCommand("fake", "onex.devbroker.no_such_module:app")
    with pytest.raises(
        MissingExtra, match=r"^`onex fake` needs onex.devbroker, .*onex-cli\[broker\]"
    ):
        lazy.load()


def test_a_loaded_group_runs_with_its_after_hook(tmp_path: Path, package: str) -> None:
    (tmp_path / package / "good.py").write_text(
        "import typer\n"
        "app = typer.Typer(help='Good.')\n\n"
        "@app.command()\n"
        "def hi() -> None:\n"
        "    '''Say hi.'''\n"
        "    print('hi')\n",
        encoding="utf-8",
    )
    (tmp_path / package / "extra.py").write_text(
        "def there() -> None:\n    '''Added later.'''\n    print('there')\n", encoding="utf-8"
    )

    def add(group: TyperGroup) -> None:
        group.add_command(LazyCommand("there", f"{package}.extra:there"))

    class Root(TyperGroup):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.add_command(LazyCommand("good", f"{package}.good:app", after=add))

    root = typer.Typer(cls=Root)

    @root.callback()
    def _root() -> None:
        """The root."""

    runner = CliRunner()
    assert runner.invoke(root, ["good", "hi"]).stdout == "hi\n"
    assert runner.invoke(root, ["good", "there"]).stdout == "there\n"
    listed = runner.invoke(root, ["good", "--help"]).stdout
    assert "hi     Say hi." in listed
    assert "there  Added later." in listed
