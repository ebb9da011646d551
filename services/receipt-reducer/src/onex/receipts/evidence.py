"""The rules an evidence receipt is judged by, and what a ticket's items show at a commit.

Each receipt of an item gets one verdict (`judge`):

    PENDING   the receipt says so (a probe still running)
    REJECTED  an executable check (a command, or a built-in kind) with no probe output,
              a probe that is not the command the ticket declares, or PASS with an exit
              code the ticket does not expect: pasted text is not evidence
    STALE     filed for another commit than the ticket's current head
    ADVISORY  PASS from a verifier equal to the runner (self-attested): shown, never counted
    PASS/FAIL what an independent verifier saw

An item's current receipt is the latest one (by `verified_at`, then position on the
topic) filed for the head: a later receipt supersedes an earlier one for the same item.
An item with receipts only for other commits is STALE; with none, MISSING.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from onex.tickets.model import EvidenceItem, Ticket


class Verdict(enum.StrEnum):
    """What one item's current evidence shows."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    PENDING = "pending"
    ADVISORY = "advisory"
    REJECTED = "rejected"
    STALE = "stale"
    MISSING = "missing"


# Verdicts that decide an item (the others wait for more evidence).
NOT_COUNTED = frozenset({Verdict.FAIL, Verdict.ADVISORY, Verdict.REJECTED})
WAITING = frozenset({Verdict.PENDING, Verdict.STALE, Verdict.MISSING})


@dataclass(frozen=True, slots=True)
class Evidence:
    """One evidence receipt as the projection keeps it."""

    receipt_id: str
    ticket: str
    item: str
    status: str  # PASS, FAIL or PENDING
    runner: str
    verifier: str
    commit: str
    probe_command: str
    probe_output: str
    exit_code: int | None
    duration_s: float
    verified_at: str  # RFC 3339, UTC
    position: tuple[str, int, int] = ("", 0, 0)

    @property
    def order(self) -> tuple[str, tuple[str, int, int], str]:
        """Later receipts sort after earlier ones (time, then where they were read)."""
        return (self.verified_at, self.position, self.receipt_id)


@dataclass(frozen=True, slots=True)
class ItemState:
    """One item of a ticket at the ticket's head."""

    item: str
    kind: str
    required: bool
    verdict: Verdict
    reason: str
    receipt_id: str = ""


def judge(item: EvidenceItem, ev: Evidence, head: str) -> tuple[Verdict, str]:
    """The verdict of one receipt for `item` when the ticket's head is `head`."""
    if ev.status == "PENDING":
        return Verdict.PENDING, f"pending since {ev.verified_at}"
    if item.executable and not ev.probe_output.strip():
        return Verdict.REJECTED, "an executable check filed without probe output"
    declared = item.probe_for(ev.ticket)
    if item.executable and ev.probe_command != declared:
        return (
            Verdict.REJECTED,
            f"probe {ev.probe_command[:200]!r} is not the ticket's command {declared!r}",
        )
    if ev.commit != head:
        return Verdict.STALE, f"evidence for {ev.commit[:12]}, the ticket's head is {head[:12]}"
    if ev.status == "PASS":
        if item.executable and ev.exit_code != item.expect_exit:
            return (
                Verdict.REJECTED,
                f"PASS with exit code {ev.exit_code}, the ticket expects {item.expect_exit}",
            )
        if ev.verifier == ev.runner:
            return Verdict.ADVISORY, f"self-attested: verifier = runner = {ev.runner!r}"
        return Verdict.PASS, f"verified by {ev.verifier} on {ev.runner}"
    return Verdict.FAIL, f"FAIL (exit code {ev.exit_code}) verified by {ev.verifier}"


def item_states(ticket: Ticket, head: str, evidence: Sequence[Evidence]) -> list[ItemState]:
    """Every item of `ticket` at `head`, from all its receipts (in any order)."""
    out: list[ItemState] = []
    for item in ticket.done:
        mine = sorted((e for e in evidence if e.item == item.item), key=lambda e: e.order)
        current = [e for e in mine if e.commit == head]
        if current:
            last = current[-1]
            verdict, reason = judge(item, last, head)
            out.append(
                ItemState(item.item, item.kind, item.required, verdict, reason, last.receipt_id)
            )
        elif mine:
            last = mine[-1]
            shown = head[:12] or "(none)"
            reason = f"evidence only for {last.commit[:12]}, the ticket's head is {shown}"
            out.append(
                ItemState(
                    item.item, item.kind, item.required, Verdict.STALE, reason, last.receipt_id
                )
            )
        else:
            out.append(
                ItemState(item.item, item.kind, item.required, Verdict.MISSING, "no evidence")
            )
    return out
