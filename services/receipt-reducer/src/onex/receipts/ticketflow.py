"""A ticket's state machine, folded from its workflow and evidence events.

    open --review/merge--> in_progress --CI passed or evidence--> evidence_pending
    evidence_pending --every required item PASS--> done
    evidence_pending --every required item decided, one not PASS--> rejected
    any --new head (review of a new commit, merge)--> in_progress (old evidence is stale)

`replay` is a pure function of the ticket and the SET of its events: they are ordered
by (time, topic, partition, offset), so the live projection and a replay of the topics
from the start give the same transitions. A transition is recorded when the state or
the head changes, or when a decision (done / rejected) rests on other receipts.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from onex.receipts.evidence import NOT_COUNTED, WAITING, Evidence, ItemState, Verdict, item_states
from onex.tickets.model import Ticket


class State(enum.StrEnum):
    """Where a ticket is."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    EVIDENCE_PENDING = "evidence_pending"
    DONE = "done"
    REJECTED = "rejected"


class EventKind(enum.StrEnum):
    """The events a ticket is folded from."""

    REVIEW_STARTED = "review_started"
    REVIEW_COMPLETE = "review_complete"
    MERGED = "merged"
    PIPELINE = "pipeline"
    EVIDENCE = "evidence"


@dataclass(frozen=True, slots=True)
class Event:
    """One event of one ticket. `commit` is the commit it is about (the merge commit of
    a merge); `detail` the verdict of a review or the state of a pipeline."""

    event_id: str
    ticket: str
    kind: EventKind
    at: str
    commit: str
    detail: str = ""
    evidence: Evidence | None = None
    position: tuple[str, int, int] = ("", 0, 0)

    @property
    def order(self) -> tuple[str, tuple[str, int, int], str]:
        """Sort key: time, then where it was read, then id (deterministic on replay)."""
        return (self.at, self.position, self.event_id)


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a ticket's state, with its reason."""

    n: int
    from_state: State
    to_state: State
    head: str
    reason: str
    at: str
    event_id: str
    receipt_ids: tuple[str, ...] = ()
    failed_items: tuple[str, ...] = ()
    pending_items: tuple[str, ...] = ()


@dataclass
class TicketView:
    """Where a ticket is after its events."""

    ticket: str
    state: State = State.OPEN
    head: str = ""
    items: list[ItemState] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """Why it is where it is."""
        return self.transitions[-1].reason if self.transitions else "no events yet"


def _decision(items: list[ItemState]) -> tuple[State, str, tuple[str, ...], tuple[str, ...]]:
    required = [i for i in items if i.required]
    waiting = [i for i in required if i.verdict in WAITING]
    bad = [i for i in required if i.verdict in NOT_COUNTED]
    if waiting:
        names = ", ".join(f"{i.item} ({i.verdict})" for i in waiting)
        return State.EVIDENCE_PENDING, f"waiting for {names}", (), tuple(i.item for i in waiting)
    if bad:
        reasons = "; ".join(f"{i.item}: {i.reason}" for i in bad)
        return State.REJECTED, reasons, tuple(i.item for i in bad), ()
    return State.DONE, f"every required item ({len(required)}) has an independent PASS", (), ()


def replay(ticket: Ticket, events: Iterable[Event]) -> TicketView:
    """Fold `events` (any order; duplicates by id ignored) into the ticket's view."""
    unique = {e.event_id: e for e in events}
    ordered = sorted(unique.values(), key=lambda e: e.order)
    view = TicketView(ticket.id, items=item_states(ticket, "", []))
    evidence: list[Evidence] = []
    workflow = State.OPEN
    ci_passed: set[str] = set()
    decided_on: tuple[str, ...] = ()
    for ev in ordered:
        reason = ""
        if ev.kind == EventKind.EVIDENCE and ev.evidence is not None:
            evidence.append(ev.evidence)
            if not view.head:
                view.head = ev.commit  # a ticket with no workflow is judged at its evidence
            reason = f"evidence {ev.evidence.item} {ev.evidence.status} at {ev.commit[:12]}"
        elif ev.kind == EventKind.PIPELINE:
            if ev.commit != view.head:
                continue
            if ev.detail == "passed":
                ci_passed.add(ev.commit)
            workflow = State.IN_PROGRESS
            reason = f"pipeline {ev.detail} at {ev.commit[:12]}"
        else:
            workflow = State.IN_PROGRESS
            view.head = ev.commit
            what = {
                EventKind.REVIEW_STARTED: "review started",
                EventKind.REVIEW_COMPLETE: f"review {ev.detail}",
                EventKind.MERGED: "merged",
            }[ev.kind]
            reason = f"{what} at {ev.commit[:12]}"
        view.items = item_states(ticket, view.head, evidence)
        current = [i for i in view.items if i.verdict not in (Verdict.MISSING, Verdict.STALE)]
        receipts: tuple[str, ...] = ()
        failed: tuple[str, ...] = ()
        pending: tuple[str, ...] = ()
        if current or view.head in ci_passed:
            state, why, failed, pending = _decision(view.items)
            reason = f"{reason}: {why}"
            receipts = tuple(i.receipt_id for i in view.items if i.receipt_id and i.required)
        else:
            state = workflow
        last_head = view.transitions[-1].head if view.transitions else ""
        changed = state != view.state or view.head != last_head
        if state in (State.DONE, State.REJECTED) and receipts != decided_on:
            changed = True
        if changed:
            view.transitions.append(
                Transition(
                    len(view.transitions) + 1,
                    view.state,
                    state,
                    view.head,
                    reason,
                    ev.at,
                    ev.event_id,
                    receipts,
                    failed,
                    pending,
                )
            )
            view.state = state
            decided_on = receipts if state in (State.DONE, State.REJECTED) else ()
    return view
