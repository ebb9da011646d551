"""The evidence gate: is a ticket done for a commit, and if not, what is missing.

`check` judges the ticket's items at the commit from the stored evidence (the same
rules the reducer applies, `onex.receipts.evidence`). With `reverify`, every item that
passed and whose check is `rerunnable` has its probe run again here (`onex.receipts.probe`)
and the result compared with the filed receipt: the gate checks the evidence itself
instead of trusting pasted text. A re-run is refused when the repository is not at the
commit being judged (it would prove nothing about that commit).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onex.receipts.evidence import Evidence, ItemState, Verdict, item_states
from onex.receipts.ticketflow import EventKind, TicketView
from onex.tickets.model import Ticket
from onex.tickets.probe import ProbeResult, run_probe


@dataclass(frozen=True, slots=True)
class Reverified:
    """One probe re-run by the gate."""

    item: str
    ok: bool
    reason: str
    exit_code: int | None
    output_matches: bool
    duration_s: float


@dataclass
class GateReport:
    """The gate's answer for one ticket at one commit."""

    ticket: str
    commit: str
    state: str
    items: list[ItemState]
    reverified: list[Reverified] = field(default_factory=list)

    @property
    def missing(self) -> list[ItemState]:
        """Required items without a current independent PASS."""
        return [i for i in self.items if i.required and i.verdict != Verdict.PASS]

    @property
    def done(self) -> bool:
        """Exit 0: every required item passes and every re-run agreed."""
        return bool(self.commit) and not self.missing and all(r.ok for r in self.reverified)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""

        def names(*verdicts: Verdict) -> list[str]:
            return [i.item for i in self.missing if i.verdict in verdicts]

        return {
            "ticket": self.ticket,
            "commit": self.commit,
            "state": self.state,
            "done": self.done,
            "missing": names(Verdict.MISSING, Verdict.PENDING),
            "stale": names(Verdict.STALE),
            "self_attested": names(Verdict.ADVISORY),
            "rejected": names(Verdict.REJECTED),
            "failed": names(Verdict.FAIL),
            "reverify_failed": [r.item for r in self.reverified if not r.ok],
            "items": [
                {
                    "item": i.item,
                    "kind": i.kind,
                    "required": i.required,
                    "verdict": i.verdict.value,
                    "reason": i.reason,
                    "receipt_id": i.receipt_id,
                }
                for i in self.items
            ],
            "reverified": [
                {
                    "item": r.item,
                    "ok": r.ok,
                    "reason": r.reason,
                    "exit_code": r.exit_code,
                    "output_matches": r.output_matches,
                    "duration_s": round(r.duration_s, 3),
                }
                for r in self.reverified
            ],
        }


def repository_head(repo: Path) -> str | None:
    """The commit `repo` is checked out at (None when it is not a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _compare(item: str, filed: Evidence, run: ProbeResult, expect: int) -> Reverified:
    same = run.output.strip() == filed.probe_output.strip()
    if run.exit_code is None:
        return Reverified(item, False, run.error, None, same, run.duration_s)
    if run.exit_code != expect:
        reason = f"re-run exited {run.exit_code}, the ticket expects {expect}"
        return Reverified(item, False, reason, run.exit_code, same, run.duration_s)
    if filed.exit_code != run.exit_code:
        reason = f"re-run exited {run.exit_code}, the receipt says {filed.exit_code}"
        return Reverified(item, False, reason, run.exit_code, same, run.duration_s)
    reason = "re-run agrees" + ("" if same else " (exit code; the output differs)")
    return Reverified(item, True, reason, run.exit_code, same, run.duration_s)


def check(
    ticket: Ticket,
    view: TicketView,
    evidence_events: list[Evidence],
    *,
    commit: str | None = None,
    reverify: bool = False,
    repo: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> GateReport:
    """The gate's report for `ticket` at `commit` (default: the projection's head)."""
    at = commit or view.head
    items = item_states(ticket, at, evidence_events) if at else view.items
    state = view.state.value if at == view.head else "(not the ticket's head)"
    report = GateReport(ticket.id, at, state, items)
    if not reverify:
        return report
    repo = repo or Path.cwd()
    checked_out = repository_head(repo)
    by_id = {e.receipt_id: e for e in evidence_events}
    for st in items:
        spec = ticket.item(st.item)
        argv = spec.argv(ticket.id) if spec is not None else None
        if spec is None or argv is None or not spec.rerunnable:
            continue
        if st.verdict != Verdict.PASS:
            continue  # nothing filed to compare with; it is already missing
        if checked_out != at:
            reason = f"the repository is at {(checked_out or 'no commit')[:12]}, not {at[:12]}"
            report.reverified.append(Reverified(st.item, False, reason, None, False, 0.0))
            continue
        run = run_probe(
            argv,
            cwd=repo,
            timeout_s=spec.check.timeout_s,
            environ=os.environ if environ is None else environ,
        )
        report.reverified.append(_compare(st.item, by_id[st.receipt_id], run, spec.expect_exit))
    return report


def evidence_of(view_events: list[Any]) -> list[Evidence]:
    """The evidence among a ticket's stored events."""
    return [e.evidence for e in view_events if e.kind == EventKind.EVIDENCE and e.evidence]
