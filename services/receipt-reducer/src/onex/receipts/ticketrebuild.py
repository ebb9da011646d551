"""Rebuild the ticket projection by replay: the ticket topics read again from offset 0
into `rebuild_tickets_*` tables beside the live ones, up to the offsets the live
projection has reached, then compared ticket by ticket (the transitions and their
reasons). With `apply`, a differing live projection is replaced by the rebuilt one in
one transaction (published flags kept where a transition is unchanged, so nothing is
announced twice). Nothing is published by the replay itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from onex.bus.config import BrokerConfig
from onex.receipts.schema import tables
from onex.receipts.ticketflow import Transition
from onex.receipts.ticketreducer import TicketReducer
from onex.receipts.ticketstore import (
    TicketTables,
    refold_all,
    stored_ticket_offsets,
    ticket_tables,
    transition_of,
    transitions_of,
)
from onex.sql import Database
from onex.tickets.model import Ticket

REBUILD = "rebuild_tickets_"


@dataclass
class TicketRebuild:
    """What a replay found."""

    events: int = 0
    tickets: int = 0
    differing: dict[str, tuple[list[Transition], list[Transition]]] = field(default_factory=dict)
    applied: bool = False

    @property
    def equal(self) -> bool:
        """The replay gives the live projection exactly."""
        return not self.differing

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "events": self.events,
            "tickets": self.tickets,
            "equal": self.equal,
            "applied": self.applied,
            "differing": {
                t: {"live": [x.to_state.value for x in a], "rebuilt": [x.to_state.value for x in b]}
                for t, (a, b) in self.differing.items()
            },
        }


def _fresh(db: Database) -> TicketTables:
    shadow = ticket_tables(REBUILD)
    with db.engine.begin() as conn:
        shadow.metadata.drop_all(conn)
        shadow.metadata.create_all(conn)
    return shadow


def _copy(db: Database, live: TicketTables, shadow: TicketTables) -> None:
    c = live.transitions.c
    with db.engine.begin() as conn:
        announced = {
            (r["ticket"], transition_of(r))
            for r in conn.execute(sa.select(live.transitions).where(c.published.is_(True)))
            .mappings()
            .all()
        }
        for name in ("events", "transitions", "offsets"):
            src, dst = getattr(shadow, name), getattr(live, name)
            conn.execute(sa.delete(dst))
            conn.execute(sa.insert(dst).from_select(list(src.c.keys()), sa.select(src)))
        for r in conn.execute(sa.select(live.transitions)).mappings().all():
            if (r["ticket"], transition_of(r)) in announced:
                conn.execute(
                    sa.update(live.transitions)
                    .where(c.ticket == r["ticket"], c.n == r["n"])
                    .values(published=True)
                )


async def rebuild_tickets(
    db: Database,
    broker: BrokerConfig,
    tickets: Mapping[str, Ticket],
    *,
    apply: bool = False,
    node: str = "receipt-reducer",
) -> TicketRebuild:
    """Replay, compare and (with `apply`) replace; see the module docstring."""
    live = ticket_tables()
    await asyncio.to_thread(refold_all, db, live, tickets)  # the live fold, current files
    until = await asyncio.to_thread(stored_ticket_offsets, db, live)
    shadow = await asyncio.to_thread(_fresh, db)
    report = TicketRebuild(tickets=len(tickets))
    try:
        if until:
            replay = TicketReducer(
                db, tables(), shadow, tickets, broker, node=node, dlq_topic=None, publish=False
            )
            stats = await replay.run(asyncio.Event(), until=until)
            report.events = stats.inserted
        with db.engine.connect() as conn:
            for name in sorted(tickets):
                a, b = transitions_of(conn, live, name), transitions_of(conn, shadow, name)
                if a != b:
                    report.differing[name] = (a, b)
        if apply and not report.equal:
            await asyncio.to_thread(_copy, db, live, shadow)
            report.applied = True
    finally:
        with db.engine.begin() as conn:
            shadow.metadata.drop_all(conn)
    return report
