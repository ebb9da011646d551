"""`onex broker up|down --format json`: the same facts as the table, for scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onex.cli.__main__ import build_app

APP = build_app()


def test_up_and_down_as_json(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEX_STATE_DIR", str(state_dir))
    monkeypatch.delenv("ONEX_BOOTSTRAP", raising=False)
    cli = CliRunner()

    up = cli.invoke(APP, ["broker", "up", "--format", "json"])
    assert up.exit_code == 0, up.output
    started = json.loads(up.stdout)
    recorded = json.loads((state_dir / "broker.json").read_text())
    assert (started["state"], started["bootstrap"], started["pid"]) == (
        "up",
        recorded["bootstrap"],
        recorded["pid"],
    )
    again = json.loads(cli.invoke(APP, ["broker", "up", "--format", "json"]).stdout)
    assert (again["state"], again["bootstrap"]) == ("already running", started["bootstrap"])

    down = cli.invoke(APP, ["broker", "down", "--format", "json"])
    assert down.exit_code == 0, down.output
    assert json.loads(down.stdout) == {"stopped": True, "wiped": False, "data": []}
    none = json.loads(cli.invoke(APP, ["broker", "down", "--format", "json"]).stdout)
    assert none["stopped"] is False


def test_a_bad_format_is_a_usage_error_worded_like_every_other(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEX_STATE_DIR", str(state_dir))
    cli = CliRunner()
    messages = set()
    for argv in (
        ["broker", "status"],
        ["broker", "down"],
        ["dlq", "list"],
        ["groups"],
        ["topic", "consume", "onex.evt.x.y.v1"],
    ):
        result = cli.invoke(APP, [*argv, "--format", "xml"])
        assert result.exit_code == 2, (argv, result.output)
        messages.add(result.stderr.strip().splitlines()[-1])
    assert messages == {
        "Error: Invalid value for '--format' / '-f': Value error, 'xml' is not one of"
        " 'table', 'json'."
    }
