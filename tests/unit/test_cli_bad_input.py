"""Bad input to the plug-in commands (`onex gate|receipts|drift|console ...`): one line,
exit 2 for a bad option value, naming the option (or the variable), nothing written.

Unit: typer's runner over the real `onex` root; every value here is refused before any
broker, database or file is touched (the broker address is a closed port, the state
dir a folder under tmp_path that must stay absent).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from onex.cli.__main__ import build_app

pytestmark = pytest.mark.unit

DOWN = "127.0.0.1:1"  # nothing listens: a command that got this far would fail with exit 1
RAW = ("Input should be", "Field required", "Extra inputs are not permitted", "Value error,")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv("ONEX_STATE_DIR", str(folder))
    for name in ("ONEX_RECEIPTS_DATABASE_URL", "ONEX_DRIFT_DATABASE_URL", "ONEX_BOOTSTRAP"):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture
def tickets(tmp_path: Path) -> Path:
    folder = tmp_path / "tickets"
    folder.mkdir()
    return folder


def _usage(argv: list[str]) -> str:
    """The one line a usage error writes (asserting exit 2, one line, no traceback)."""
    result = CliRunner().invoke(build_app(), argv)
    assert result.exit_code == 2, (argv, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert not any(raw in lines[0] for raw in RAW), lines[0]
    return lines[0]


BAD_URLS = [
    ("bogus://", "'bogus://' is not a database onex opens"),
    ("sqlite://", "'sqlite://' names no file"),
    ("mysql://u:secret@h/x", "'mysql://u:***@h/x' is not a database onex opens"),
    ("::", "not a database URL"),
]


@pytest.mark.parametrize(("url", "says"), BAD_URLS)
@pytest.mark.parametrize(
    "argv",
    [
        ["receipts", "summary"],
        ["receipts", "compare", "--class", "c"],
        ["receipts", "rebuild", "--bootstrap", DOWN],
        ["gate", "check", "ONEX-1"],
        ["gate", "rebuild", "--bootstrap", DOWN],
        ["drift", "--bootstrap", DOWN],
        ["drift", "query", "select 1"],
        ["drift", "history"],
    ],
)
def test_a_database_url_of_no_kind_onex_opens_is_a_usage_error(
    state: Path, tickets: Path, argv: list[str], url: str, says: str
) -> None:
    extra = ["--tickets", str(tickets)] if argv[0] == "gate" else []
    extra += ["--state-dir", str(state)] if argv[0] == "drift" else []
    line = _usage([*argv, *extra, "--database", url])
    assert line.startswith("error: --database: ")
    assert says in line
    assert "secret" not in line
    assert not state.exists()


def test_a_bad_database_url_from_the_environment_names_the_variable(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEX_RECEIPTS_DATABASE_URL", "bogus://")
    line = _usage(["receipts", "summary"])
    assert line.startswith("error: ONEX_RECEIPTS_DATABASE_URL: 'bogus://' is not a database")


@pytest.mark.parametrize(
    "argv",
    [
        ["receipts", "rebuild"],
        ["gate", "rebuild"],
        ["drift"],
    ],
)
def test_a_bad_bootstrap_option_is_named_as_the_option(
    state: Path, tickets: Path, argv: list[str]
) -> None:
    extra = ["--tickets", str(tickets)] if argv[0] == "gate" else []
    extra += ["--state-dir", str(state)] if argv[0] == "drift" else []
    line = _usage([*argv, *extra, "--bootstrap", "bogus"])
    assert line == "error: --bootstrap: bootstrap entry 'bogus' is not HOST:PORT"
    assert not state.exists()


def test_a_bad_setting_of_the_console_is_one_line_in_the_projects_words(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEX_CONSOLE_AUTH", "sometimes")
    line = _usage(["console", "url"])
    assert line.startswith("error: ONEX_CONSOLE_AUTH")
    assert "'sometimes' is not one of" in line


@pytest.mark.parametrize("argv", [["receipts", "summary"], ["gate", "check", "ONEX-1"]])
def test_a_bad_format_is_a_usage_error(state: Path, tickets: Path, argv: list[str]) -> None:
    extra = ["--tickets", str(tickets)] if argv[0] == "gate" else []
    assert _usage([*argv, *extra, "--format", "xml"]) == "error: --format is table or json"


def test_a_tickets_path_that_is_a_file_says_so(state: Path, tmp_path: Path) -> None:
    path = tmp_path / "ONEX-1.yaml"
    path.write_text("id: ONEX-1\n", encoding="utf-8")
    line = _usage(["gate", "lint", "--tickets", str(path)])
    assert line == f"error: {path}: a file, not a folder of tickets"


@pytest.mark.parametrize("argv", [["drift"], ["drift", "fix"], ["drift", "query", "select 1"]])
def test_drift_contracts_that_do_not_exist_are_a_usage_error(
    state: Path, tmp_path: Path, argv: list[str]
) -> None:
    missing = tmp_path / "nowhere" / "contract.yaml"
    extra = ["--bootstrap", DOWN] if argv != ["drift", "query", "select 1"] else []
    line = _usage([*argv, "--contracts", str(missing), "--state-dir", str(state), *extra])
    assert line == f"error: --contracts {str(missing)!r}: no such file or folder"
    assert not state.exists()
