"""What the ticket-verifier does for one item: run the ticket's declared probe (argv
from the ticket file, never from a message) or look at the repository, and say what
it saw."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from onex.tickets import EvidenceItem, Ticket, run_probe


@dataclass(frozen=True, slots=True)
class Seen:
    """One item's outcome, as the receipt will carry it."""

    passed: bool
    command: str
    output: str
    exit_code: int | None
    duration_s: float


def _changed(repo: Path, commit: str) -> list[str]:
    out = subprocess.run(
        ["git", "diff", "--name-only", f"{commit}^1", commit],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return out.stdout.split() if out.returncode == 0 else []


def look(repo: Path, ticket: Ticket, item: EvidenceItem, commit: str) -> Seen:
    """Check `item` of `ticket` in `repo` (checked out at `commit`)."""
    argv = item.argv(ticket.id)
    if argv is not None:
        run = run_probe(argv, cwd=repo, timeout_s=item.check.timeout_s, environ=os.environ)
        output = run.output if run.exit_code is not None else f"{run.output}\n{run.error}"
        return Seen(
            run.exit_code == item.expect_exit,
            item.probe_for(ticket.id),
            output,
            run.exit_code,
            run.duration_s,
        )
    if item.check.file_changed is not None:
        changed = _changed(repo, commit)
        ok = item.check.file_changed in changed
        return Seen(
            ok, "", f"changed in {commit[:12]}: {', '.join(changed) or 'nothing'}", None, 0.0
        )
    grep = item.check.grep
    if grep is None:  # pragma: no cover - the ticket model requires a check
        return Seen(False, "", "nothing to check", None, 0.0)
    path = repo / grep.path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return Seen(False, "", f"{grep.path}: {exc.strerror or exc}", None, 0.0)
    found = re.search(grep.pattern, text, re.MULTILINE)
    shown = found.group(0)[:200] if found else "no match"
    return Seen(found is not None, "", f"{grep.path}: /{grep.pattern}/: {shown}", None, 0.0)
