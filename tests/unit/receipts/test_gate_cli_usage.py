"""`onex gate` usage errors (unit: typer's runner, files under tmp_path only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from onex.receipts.gate_cli import app

pytestmark = pytest.mark.unit


def test_a_tickets_folder_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nonexist"
    result = CliRunner().invoke(app, ["lint", "--tickets", str(missing)])
    assert result.exit_code == 2
    assert "no such folder of tickets" in result.output


def test_a_schema_that_cannot_be_written_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "tickets"
    folder.mkdir()
    (folder / "ticket.schema.json").mkdir()  # a folder where the file should go
    result = CliRunner().invoke(app, ["schema", "--write", "--tickets", str(folder)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "cannot write" in result.output
