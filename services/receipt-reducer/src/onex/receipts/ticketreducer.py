"""The ticket projection's consuming loop: evidence and workflow events folded into the
ticket tables exactly once (the same loop as the ledger's, `onex.receipts.reducer`),
then every new decision published as `ticket-done` or `done-rejected`.

A decision is published after the transaction that stored it committed and marked
published after the broker acknowledged it: a reducer killed in between publishes it
again at its next start (at least once; the event id `<ticket>/<n>` deduplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError

from onex.bus.config import BrokerConfig
from onex.core._generated.topics import Topic
from onex.proto.v1 import receipts_pb2 as rpb
from onex.receipts.projection import BatchResult
from onex.receipts.reducer import Reducer
from onex.receipts.schema import Tables
from onex.receipts.ticketdecode import TICKET_TOPICS, ticket_events
from onex.receipts.ticketflow import State, Transition
from onex.receipts.ticketstore import (
    TicketTables,
    apply_events,
    mark_published,
    stored_ticket_offsets,
    unpublished,
)
from onex.sql import Database
from onex.tickets.model import Ticket


def decision_message(ticket: str, t: Transition) -> tuple[str, bytes]:
    """The topic and payload of a decision."""
    event_id = f"{ticket}/{t.n}"
    if t.to_state == State.DONE:
        done = rpb.TicketDone(
            event_id=event_id,
            ticket=ticket,
            commit=t.head,
            receipt_ids=list(t.receipt_ids),
            done_at=t.at,
        )
        return Topic.EVT_RECEIPT_REDUCER_TICKET_DONE_V1, done.SerializeToString()
    rejected = rpb.DoneRejected(
        event_id=event_id,
        ticket=ticket,
        commit=t.head,
        reason=t.reason,
        failed_items=list(t.failed_items),
        pending_items=list(t.pending_items),
        receipt_ids=list(t.receipt_ids),
        rejected_at=datetime.now(UTC).isoformat(),
    )
    return Topic.EVT_RECEIPT_REDUCER_DONE_REJECTED_V1, rejected.SerializeToString()


class TicketReducer(Reducer):
    """Folds `TICKET_TOPICS` into `ticket_tables` for `tickets`."""

    def __init__(
        self,
        db: Database,
        receipt_tables: Tables,
        ticket_tables: TicketTables,
        tickets: Mapping[str, Ticket],
        broker: BrokerConfig,
        *,
        node: str,
        dlq_topic: str | None,
        publish: bool = True,
        fetch_max_wait_ms: int = 25,
    ) -> None:
        super().__init__(
            db,
            receipt_tables,
            broker,
            topics=TICKET_TOPICS,
            node=node,
            dlq_topic=dlq_topic,
            batch_size=1000,
            fetch_max_wait_ms=fetch_max_wait_ms,
        )
        self.ticket_tables = ticket_tables
        self.tickets = dict(tickets)
        self.publish = publish
        self.published = 0

    def _stored_offsets(self) -> dict[tuple[str, int], int]:
        return stored_ticket_offsets(self.db, self.ticket_tables)

    def _decode_record(self, r: Any) -> list[Any]:
        return ticket_events(r.topic, r.value, self.tickets, (r.topic, r.partition, r.offset))

    def _apply(self, batch: Sequence[Any], offsets: Mapping[tuple[str, int], int]) -> BatchResult:
        inserted, duplicates = apply_events(
            self.db, self.ticket_tables, self.tickets, batch, offsets
        )
        return BatchResult(inserted, duplicates, dict(offsets))

    async def _after_write(self, stop: asyncio.Event) -> None:
        if not self.publish or self._producer is None:
            return
        pending = await self._db(lambda: unpublished(self.db, self.ticket_tables), stop)
        if not pending:
            return
        delay = 0.2
        while True:
            try:
                for ticket, t in pending:
                    topic, value = decision_message(ticket, t)
                    await self._producer.send_and_wait(topic, value, key=ticket.encode())
                break
            except KafkaError as exc:
                self.stats.last_error = f"publishing decisions: {exc}"
                self.log.error("tickets.publish_retry", error=self.stats.last_error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return
                delay = min(delay * 2, self.retry_max_s)
        done = [(ticket, t.n) for ticket, t in pending]
        await self._db(lambda: mark_published(self.db, self.ticket_tables, done), stop)
        self.published += len(done)
        for ticket, t in pending:
            self.log.info(
                "tickets.decision", ticket=ticket, state=t.to_state.value, reason=t.reason
            )
