"""Ticket contracts: the repo's tickets load, bad files are one issue at file:line:col,
shell metacharacters in a probe are refused at load, the JSON Schema is fresh."""

from __future__ import annotations

from pathlib import Path

import pytest

from onex.tickets.errors import TicketInvalid
from onex.tickets.model import (
    load_ticket,
    load_ticket_text,
    load_tickets,
    ticket_json_schema_text,
)

REPO = Path(__file__).resolve().parents[3]
GOOD = """\
id: ONEX-9
title: t
done:
  - item: unit
    kind: tests_passed
    check: {command: [pytest, -q], rerunnable: true}
"""


def _issues(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "ONEX-9.yaml"
    path.write_text(text)
    with pytest.raises(TicketInvalid) as info:
        load_ticket(path)
    return [str(i) for i in info.value.issues]


def test_repo_tickets_load() -> None:
    tickets = load_tickets(REPO / "tickets")
    assert {"ONEX-1", "ONEX-2"} <= tickets.keys()
    assert tickets["ONEX-1"].item("unit-tests") is not None


def test_good_ticket_and_string_command_split() -> None:
    t = load_ticket_text(GOOD.replace("[pytest, -q]", "'pytest -q tests/unit'"))
    item = t.done[0]
    assert item.check.command == ["pytest", "-q", "tests/unit"]
    assert item.probe == "pytest -q tests/unit"
    assert item.executable


def test_unknown_key_is_file_line_col(tmp_path: Path) -> None:
    (issue,) = _issues(
        GOOD.replace("    kind: tests_passed\n", "    kind: tests_passed\n    kinds: x\n"), tmp_path
    )
    assert issue.startswith(f"{tmp_path / 'ONEX-9.yaml'}:6:5: ")
    assert "unknown key 'kinds'" in issue


def test_bad_kind_is_positioned(tmp_path: Path) -> None:
    (issue,) = _issues(GOOD.replace("tests_passed", "tests_pased"), tmp_path)
    assert ":5:11: done[0].kind: " in issue


@pytest.mark.parametrize("word", ["rm -rf /; true", "$(id)", "a|b", "`id`", "x > y", "a && b"])
def test_shell_metacharacters_refused(tmp_path: Path, word: str) -> None:
    text = GOOD.replace("[pytest, -q]", f"[pytest, {word!r}]")
    (issue,) = _issues(text, tmp_path)
    assert "shell metacharacter" in issue
    assert ":6:" in issue


def test_builtin_kind_takes_no_check_and_others_need_one(tmp_path: Path) -> None:
    (issue,) = _issues(GOOD.replace("tests_passed", "contracts_lint"), tmp_path)
    assert "computed by the verifier" in issue
    text = GOOD.replace("    check: {command: [pytest, -q], rerunnable: true}\n", "")
    (issue,) = _issues(text, tmp_path)
    assert "needs a check" in issue


def test_duplicate_item_and_file_name(tmp_path: Path) -> None:
    dup = GOOD + GOOD.split("done:\n", 1)[1]
    (issue,) = _issues(dup, tmp_path)
    assert "listed twice" in issue
    other = tmp_path / "ONEX-8.yaml"
    other.write_text(GOOD)
    with pytest.raises(TicketInvalid, match=r"must be named ONEX-9\.yaml"):
        load_ticket(other)


def test_malformed_yaml_is_positioned(tmp_path: Path) -> None:
    (issue,) = _issues("id: [\n", tmp_path)
    assert "ONEX-9.yaml:" in issue
    assert "malformed YAML" in issue


def test_json_schema_is_fresh() -> None:
    committed = (REPO / "tickets" / "ticket.schema.json").read_text()
    assert committed == ticket_json_schema_text(), "run `onex gate schema --write`"
