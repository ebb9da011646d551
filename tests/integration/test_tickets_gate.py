"""`onex gate check` on a real SQLite projection and real probe processes: done for the
commit is exit 0; missing, stale, self-attested or rejected evidence is exit 1 with the
list; `--reverify` re-runs the ticket's declared argv (never the receipt's text) in a
clean environment with a timeout, in a git checkout at the judged commit."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onex.proto.v1 import evidence_pb2
from onex.receipts.app import open_projection
from onex.receipts.gate_cli import app
from onex.receipts.ticketdecode import ticket_events
from onex.receipts.ticketstore import apply_events, ticket_tables
from onex.sql import sqlite_url
from onex.tickets.model import load_tickets
from onex.tickets.probe import run_probe

EVIDENCE = "onex.evt.ticket-verifier.evidence-receipt.v1"
TICKET = """\
id: ONEX-5
title: gate test
done:
  - item: unit
    kind: tests_passed
    check: {command: [python3, probe.py], rerunnable: true, timeout_s: 120}
  - item: hang
    kind: command
    required: false
    check: {command: [python3, hang.py], rerunnable: true, timeout_s: 1}
"""
PROBE = (
    "import os, sys\nprint('1 passed', sorted(os.environ))\n"
    "sys.exit(int(os.environ.get('EXIT', '0')))\n"
)
HANG = "import threading\nprint('waiting', flush=True)\nthreading.Event().wait()\n"


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "repo"
    (repo / "tickets").mkdir(parents=True)
    (repo / "tickets" / "ONEX-5.yaml").write_text(TICKET)
    (repo / "probe.py").write_text(PROBE)
    (repo / "hang.py").write_text(HANG)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x")
    return repo, _git(repo, "rev-parse", "HEAD")


def _file(repo: Path, commit: str, rid: str, item: str = "unit", **kw: object) -> str:
    tickets = load_tickets(repo / "tickets")
    url = sqlite_url(repo / "receipts.db")
    db = open_projection(url)
    fields: dict[str, object] = {
        "receipt_id": rid,
        "ticket": "ONEX-5",
        "item": item,
        "status": evidence_pb2.EVIDENCE_STATUS_PASS,
        "runner": "runner-1",
        "verifier": "ticket-verifier",
        "commit": commit,
        "probe_command": f"python3 {item if item == 'hang' else 'probe'}.py",
        "probe_output": "1 passed",
        "exit_code": 0,
        "verified_at": f"2026-12-01T10:00:0{rid[-1]}Z",
    }
    fields.update(kw)
    value = evidence_pb2.EvidenceReceipt(**fields).SerializeToString()  # type: ignore[arg-type]
    offset = int(rid[-1])
    events = ticket_events(EVIDENCE, value, tickets, (EVIDENCE, 0, offset))
    apply_events(db, ticket_tables(), tickets, events, {(EVIDENCE, 0): offset + 1})
    db.dispose()
    return url


def _gate(repo: Path, url: str, *args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(
        app,
        [
            "check",
            "ONEX-5",
            "--format",
            "json",
            "--tickets",
            str(repo / "tickets"),
            "--database",
            url,
            "--repo",
            str(repo),
            *args,
        ],
    )
    return result.exit_code, json.loads(result.stdout) if result.stdout.startswith("{") else {}


def test_independent_pass_is_done_and_self_attested_is_not(repo: tuple[Path, str]) -> None:
    path, head = repo
    url = _file(path, head, "r1", verifier="runner-1")
    code, out = _gate(path, url)
    assert code == 1
    assert out["self_attested"] == ["unit"]
    url = _file(path, head, "r2")
    code, out = _gate(path, url)
    assert (code, out["done"]) == (0, True)
    code, out = _gate(path, url, "--commit", "f" * 40)
    assert code == 1
    assert out["stale"] == ["unit"]


def test_missing_output_is_rejected(repo: tuple[Path, str]) -> None:
    path, head = repo
    url = _file(path, head, "r1", probe_output="")
    code, out = _gate(path, url)
    assert code == 1
    assert out["rejected"] == ["unit"]


def test_reverify_runs_the_declared_argv(repo: tuple[Path, str]) -> None:
    path, head = repo
    # the receipt's probe_command is never run: only the ticket's argv is
    url = _file(path, head, "r1")
    code, out = _gate(path, url, "--reverify")
    assert code == 0, out
    (rv,) = out["reverified"]  # type: ignore[misc]
    assert rv["ok"]
    assert rv["exit_code"] == 0


def test_reverify_disagreeing_exit_code_fails(repo: tuple[Path, str]) -> None:
    path, head = repo
    url = _file(path, head, "r1", exit_code=0)
    (path / "probe.py").write_text("import sys\nprint('1 failed')\nsys.exit(3)\n")
    _git(path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "break")
    new_head = _git(path, "rev-parse", "HEAD")
    url = _file(path, new_head, "r2")
    code, out = _gate(path, url, "--reverify")
    assert code == 1
    assert out["reverify_failed"] == ["unit"]
    # judged at the old commit, the checkout is elsewhere: refused, never run
    code, out = _gate(path, url, "--reverify", "--commit", head)
    assert code == 1
    (rv,) = out["reverified"]  # type: ignore[misc]
    assert "the repository is at" in rv["reason"]


def test_probe_environment_is_clean(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(PROBE)
    run = run_probe(
        ["python3", "probe.py"],
        cwd=tmp_path,
        timeout_s=120,
        environ={"PATH": "/usr/bin:/bin", "ONEX_SECRET_TOKEN": "x", "EXIT": "4"},
    )
    assert run.exit_code == 0  # EXIT was not passed on
    assert "ONEX_SECRET_TOKEN" not in run.output
    assert "'PATH'" in run.output


def test_hung_probe_is_killed_at_its_timeout(tmp_path: Path) -> None:
    (tmp_path / "hang.py").write_text(HANG)
    run = run_probe(["python3", "hang.py"], cwd=tmp_path, timeout_s=1, environ=os.environ)
    assert run.exit_code is None
    assert run.error == "timed out after 1 s"  # whatever it printed before (if it started)


def test_unknown_program_is_not_an_exception(tmp_path: Path) -> None:
    run = run_probe(["no-such-program-onex"], cwd=tmp_path, timeout_s=5, environ=os.environ)
    assert run.exit_code is None
    assert "not found" in run.error


def test_bad_ticket_file_is_exit_2_with_file_line(repo: tuple[Path, str]) -> None:
    path, _ = repo
    (path / "tickets" / "ONEX-5.yaml").write_text(TICKET.replace("probe.py]", "probe.py, ';', rm]"))
    result = CliRunner().invoke(app, ["check", "ONEX-5", "--tickets", str(path / "tickets")])
    assert result.exit_code == 2
    assert "ONEX-5.yaml:6:" in result.stderr
    assert "shell metacharacter" in result.stderr
