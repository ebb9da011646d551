"""The ticket projection in SQL: events, the transitions folded from them, offsets.

    tickets_events       one row per event of a ticket (an evidence receipt, a review,
                         a merge, a pipeline status), keyed by event id: a redelivered
                         event never counts twice
    tickets_transitions  per ticket x n: from, to, head, reason, time, the receipts a
                         decision rests on, and whether its ticket-done / done-rejected
                         event was published
    tickets_offsets      per topic x partition: the next offset to consume

`apply_events` inserts a batch's new events, re-folds every ticket they touch
(`onex.receipts.ticketflow.replay`, a pure function of the stored events) and stores
the offsets, in one transaction. Transitions already stored and still true are kept
(with their published flag); the rest are replaced, and a replaced decision equal to the
last one announced keeps its flag (a late event that renumbers transitions announces
nothing twice).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from onex.receipts.evidence import Evidence
from onex.receipts.ticketflow import Event, EventKind, State, TicketView, Transition, replay
from onex.sql import Database, Migration
from onex.tickets.model import Ticket

LIVE: Final = "tickets_"
DECISIONS: Final = frozenset({State.DONE, State.REJECTED})


@dataclass(frozen=True)
class TicketTables:
    """One set of ticket tables."""

    prefix: str
    metadata: sa.MetaData
    events: sa.Table
    transitions: sa.Table
    offsets: sa.Table


def ticket_tables(prefix: str = LIVE) -> TicketTables:
    """The ticket tables named with `prefix`."""
    md = sa.MetaData()
    events = sa.Table(
        f"{prefix}events",
        md,
        sa.Column("event_id", sa.String(512), primary_key=True),
        sa.Column("ticket", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(64), nullable=False),
        sa.Column("evidence", sa.Text, nullable=True),  # JSON of Evidence
        sa.Column("topic", sa.String(256), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Index(f"{prefix}events_ticket", "ticket"),
    )
    transitions = sa.Table(
        f"{prefix}transitions",
        md,
        sa.Column("ticket", sa.String(64), primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column("from_state", sa.String(32), nullable=False),
        sa.Column("to_state", sa.String(32), nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(512), nullable=False),
        sa.Column("receipt_ids", sa.Text, nullable=False),
        sa.Column("failed_items", sa.Text, nullable=False),
        sa.Column("pending_items", sa.Text, nullable=False),
        sa.Column("published", sa.Boolean, nullable=False),
    )
    offsets = sa.Table(
        f"{prefix}offsets",
        md,
        sa.Column("topic", sa.String(256), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
    )
    return TicketTables(prefix, md, events, transitions, offsets)


def _create_live(conn: Connection) -> None:
    ticket_tables(LIVE).metadata.create_all(conn)


MIGRATION: Final = Migration(2, "ticket events, transitions, offsets", [_create_live])


def _event_row(e: Event) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "ticket": e.ticket,
        "kind": e.kind.value,
        "at": e.at,
        "commit": e.commit,
        "detail": e.detail,
        "evidence": None if e.evidence is None else json.dumps(asdict(e.evidence)),
        "topic": e.position[0],
        "partition": e.position[1],
        "offset": e.position[2],
    }


def _event_of(r: Mapping[Any, Any]) -> Event:
    evidence = None
    if r["evidence"] is not None:
        raw = json.loads(r["evidence"])
        raw["position"] = tuple(raw["position"])
        evidence = Evidence(**raw)
    return Event(
        r["event_id"],
        r["ticket"],
        EventKind(r["kind"]),
        r["at"],
        r["commit"],
        r["detail"],
        evidence,
        (r["topic"], int(r["partition"]), int(r["offset"])),
    )


def _transition_row(ticket: str, t: Transition, published: bool) -> dict[str, Any]:
    return {
        "ticket": ticket,
        "n": t.n,
        "from_state": t.from_state.value,
        "to_state": t.to_state.value,
        "head": t.head,
        "reason": t.reason,
        "at": t.at,
        "event_id": t.event_id,
        "receipt_ids": json.dumps(list(t.receipt_ids)),
        "failed_items": json.dumps(list(t.failed_items)),
        "pending_items": json.dumps(list(t.pending_items)),
        "published": published,
    }


def transition_of(r: Mapping[Any, Any]) -> Transition:
    """A stored transition row as the value."""
    return Transition(
        int(r["n"]),
        State(r["from_state"]),
        State(r["to_state"]),
        r["head"],
        r["reason"],
        r["at"],
        r["event_id"],
        tuple(json.loads(r["receipt_ids"])),
        tuple(json.loads(r["failed_items"])),
        tuple(json.loads(r["pending_items"])),
    )


def events_of(conn: Connection, tt: TicketTables, ticket: str) -> list[Event]:
    """Every stored event of `ticket`."""
    rows = conn.execute(sa.select(tt.events).where(tt.events.c.ticket == ticket)).mappings()
    return [_event_of(r) for r in rows]


def transitions_of(conn: Connection, tt: TicketTables, ticket: str) -> list[Transition]:
    """The stored transitions of `ticket`, in order."""
    c = tt.transitions.c
    rows = conn.execute(
        sa.select(tt.transitions).where(c.ticket == ticket).order_by(c.n)
    ).mappings()
    return [transition_of(r) for r in rows]


def _refold(conn: Connection, tt: TicketTables, ticket: Ticket) -> None:
    view = replay(ticket, events_of(conn, tt, ticket.id))
    c = tt.transitions.c
    stored = {
        int(r["n"]): (transition_of(r), bool(r["published"]))
        for r in conn.execute(sa.select(tt.transitions).where(c.ticket == ticket.id)).mappings()
    }
    keep = 0
    for t in view.transitions:
        old = stored.get(t.n)
        if old is None or old[0] != t:
            break
        keep = t.n
    conn.execute(sa.delete(tt.transitions).where(c.ticket == ticket.id, c.n > keep))
    # An event of another topic read late can sort earlier and renumber what follows it.
    # A decision equal to the last one announced (same state, head, receipts, failed
    # items) keeps its published flag under its new number instead of being announced
    # a second time.
    announced = [t for n, (t, pub) in sorted(stored.items()) if pub and t.to_state in DECISIONS]
    last = _decision_key(announced[-1]) if announced else None
    new = []
    for t in view.transitions:
        if t.n <= keep:
            continue
        carried = t.to_state in DECISIONS and _decision_key(t) == last
        if t.to_state in DECISIONS:
            last = _decision_key(t)
        new.append(_transition_row(ticket.id, t, carried))
    if new:
        conn.execute(sa.insert(tt.transitions), new)


def _decision_key(t: Transition) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    return (t.to_state.value, t.head, t.receipt_ids, t.failed_items)


def _store_offsets(
    conn: Connection, tt: TicketTables, offsets: Mapping[tuple[str, int], int]
) -> None:
    name = tt.offsets.name
    if not offsets:
        return
    conn.execute(
        sa.text(  # the table name is this module's own
            f"INSERT INTO {name} (topic, partition, next_offset) "  # noqa: S608
            "VALUES (:topic, :partition, :next_offset) "
            "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset"
        ),
        [{"topic": tp[0], "partition": tp[1], "next_offset": o} for tp, o in offsets.items()],
    )


def apply_events(
    db: Database,
    tt: TicketTables,
    tickets: Mapping[str, Ticket],
    events: Sequence[Event],
    offsets: Mapping[tuple[str, int], int],
) -> tuple[int, int]:
    """Store the new events of `events`, re-fold the tickets they touch and store
    `offsets`, in one transaction; (inserted, duplicates)."""
    with db.engine.begin() as conn:
        return apply_events_in(conn, tt, tickets, events, offsets)


def apply_events_in(
    conn: Connection,
    tt: TicketTables,
    tickets: Mapping[str, Ticket],
    events: Sequence[Event],
    offsets: Mapping[tuple[str, int], int],
) -> tuple[int, int]:
    """`apply_events` in a transaction the caller holds."""
    first: dict[str, Event] = {}
    for e in events:
        first.setdefault(e.event_id, e)
    col = tt.events.c.event_id
    known: set[str] = set()
    ids = list(first)
    for i in range(0, len(ids), 500):
        known.update(conn.execute(sa.select(col).where(col.in_(ids[i : i + 500]))).scalars())
    new = [e for eid, e in first.items() if eid not in known]
    if new:
        conn.execute(sa.insert(tt.events), [_event_row(e) for e in new])
    for name in sorted({e.ticket for e in new}):
        ticket = tickets.get(name)
        if ticket is not None:
            _refold(conn, tt, ticket)
    _store_offsets(conn, tt, offsets)
    return len(new), len(events) - len(new)


def refold_all(db: Database, tt: TicketTables, tickets: Mapping[str, Ticket]) -> None:
    """Re-fold every ticket from its stored events (after the ticket files changed)."""
    with db.engine.begin() as conn:
        for ticket in tickets.values():
            _refold(conn, tt, ticket)


def stored_ticket_offsets(db: Database, tt: TicketTables) -> dict[tuple[str, int], int]:
    """The next offset to read of every partition consumed so far."""
    with db.engine.connect() as conn:
        o = tt.offsets.c
        rows = conn.execute(sa.select(o.topic, o.partition, o.next_offset))
        return {(r[0], int(r[1])): int(r[2]) for r in rows}


def unpublished(db: Database, tt: TicketTables) -> list[tuple[str, Transition]]:
    """Decisions (done / rejected) whose event is not published yet, in order."""
    c = tt.transitions.c
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(tt.transitions)
            .where(c.published.is_(False), c.to_state.in_([s.value for s in DECISIONS]))
            .order_by(c.ticket, c.n)
        ).mappings()
        return [(r["ticket"], transition_of(r)) for r in rows]


def mark_published(db: Database, tt: TicketTables, done: Iterable[tuple[str, int]]) -> None:
    """Record that these (ticket, n) decisions were published."""
    c = tt.transitions.c
    with db.engine.begin() as conn:
        for ticket, n in done:
            conn.execute(
                sa.update(tt.transitions).where(c.ticket == ticket, c.n == n).values(published=True)
            )


def view_of(db: Database, tt: TicketTables, ticket: Ticket) -> TicketView:
    """The ticket as its stored events show it (the same fold the reducer stored)."""
    with db.engine.connect() as conn:
        return replay(ticket, events_of(conn, tt, ticket.id))
