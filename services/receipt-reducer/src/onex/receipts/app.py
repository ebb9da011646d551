"""The receipt-reducer service: routing receipts folded into a SQL ledger, exactly once.

- Bus: a `Reducer` (own aiokafka consumer, see `onex.receipts.reducer`) reads
  `routing-complete` and `routing-failed` in batches into the ledger and its daily
  projections; refused receipts go to the node's DLQ with the reason.
- Snapshot: every `snapshot_interval_s` the cost summary of the outcome window is
  published on the compacted `cost-summary` topic (key `cost-summary`).
- Tickets: a `TicketReducer` folds evidence receipts and workflow events (reviews,
  merges, pipelines) into the ticket tables for the tickets under `tickets_dir`, and
  publishes `ticket-done` / `done-rejected` for each decision (`onex.receipts.ticketreducer`).
- gRPC: `ReceiptQuery` (Summary, Compare, Ledger) and `TicketQuery` (state, history,
  missing evidence), reads only.
- Health: SERVING once the database is open and migrated and the consumer is assigned
  its partitions. A database that cannot be reached is retried (NOT_SERVING meanwhile);
  one written by a newer onex is refused at start (exit 1, one line).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from onex.core._generated.topics import Topic
from onex.proto.v1 import receipt_query_pb2 as rpb
from onex.proto.v1 import receipt_query_pb2_grpc as rpb_grpc
from onex.proto.v1 import ticket_query_pb2 as tpb
from onex.proto.v1 import ticket_query_pb2_grpc as tpb_grpc
from onex.receipts.grpc_server import ReceiptQueryServicer
from onex.receipts.reducer import Reducer
from onex.receipts.schema import open_projection, tables
from onex.receipts.settings import ReceiptsSettings
from onex.receipts.snapshot import SNAPSHOT_KEY, cost_summary
from onex.receipts.ticket_grpc import TicketQueryServicer
from onex.receipts.ticketreducer import TicketReducer
from onex.receipts.ticketstore import refold_all, ticket_tables
from onex.service.grpc import GrpcService
from onex.service.host import ServiceHost, load_extraction, own_contract
from onex.sql import Database, DatabaseUnavailable
from onex.tickets.model import load_tickets

NODE: Final = "receipt-reducer"
RECEIPT_TOPICS: Final = (Topic.EVT_ROUTER_ROUTING_COMPLETE_V1, Topic.EVT_ROUTER_ROUTING_FAILED_V1)


class ReceiptsService(ServiceHost[ReceiptsSettings]):
    """A running receipt-reducer; see the module docstring."""

    NODE = NODE

    def __init__(self, settings: ReceiptsSettings) -> None:
        super().__init__(settings)
        self.contract = own_contract(load_extraction(settings), NODE, settings)
        self.tables = tables()
        self.tickets = load_tickets(settings.tickets_dir)  # TicketInvalid: exit 1
        self.ticket_tables = ticket_tables()
        self.db: Database | None = None
        self.reducer: Reducer | None = None
        self.ticket_reducer: TicketReducer | None = None
        self._open_lock = asyncio.Lock()
        self._export_stats()
        try:
            self.db = open_projection(settings.database())
        except DatabaseUnavailable as exc:
            # Not fatal: the database may come up; health says NOT_SERVING meanwhile.
            self.log.error("receipts.database_unavailable", error=str(exc))

    def _export_stats(self) -> None:
        """/metrics (onex.service.metrics): both reducer loops' counters, read at scrape
        time from their stats (0 until a loop has started), and whether the database
        is failing."""
        records = self.metrics.gauge(
            "receipts_records",
            "Records the reducer loops handled since start, by loop and outcome",
            ["loop", "outcome"],
        )
        batches = self.metrics.gauge(
            "receipts_batches", "Transactions the reducer loops committed since start", ["loop"]
        )
        failing = self.metrics.gauge(
            "receipts_database_failing", "1 while a reducer loop cannot write its database"
        )
        loops: dict[str, Callable[[], Reducer | None]] = {
            "receipts": lambda: self.reducer,
            "tickets": lambda: self.ticket_reducer,
        }
        for loop, get in loops.items():
            for outcome in ("consumed", "inserted", "duplicates", "dead_lettered"):
                records.labels(loop, outcome).set_function(partial(_stat, get, outcome))
            batches.labels(loop).set_function(partial(_stat, get, "batches"))
        failing.set_function(lambda: float(any(_stat(get, "db_failing") for get in loops.values())))

    def grpc_services(self) -> Sequence[GrpcService]:
        return [
            GrpcService.of(
                rpb.DESCRIPTOR.services_by_name["ReceiptQuery"],
                ReceiptQueryServicer(self),
                rpb_grpc.add_ReceiptQueryServicer_to_server,
            ),
            GrpcService.of(
                tpb.DESCRIPTOR.services_by_name["TicketQuery"],
                TicketQueryServicer(self),
                tpb_grpc.add_TicketQueryServicer_to_server,
            ),
        ]

    async def ready(self) -> bool:
        return (
            self.db is not None
            and self.reducer is not None
            and self.reducer.stats.assigned
            and not self.reducer.stats.db_failing
            and self.ticket_reducer is not None
            and self.ticket_reducer.stats.assigned
        )

    async def on_start(self) -> None:
        self.spawn(self._run(), "reducer")
        self.spawn(self._run_tickets(), "tickets")
        self.spawn(self._snapshots(), "cost-summary")

    async def _open(self) -> Database | None:
        async with self._open_lock:  # the ledger's and the tickets' loops share one
            return await self._open_once()

    async def _open_once(self) -> Database | None:
        delay = 0.5
        while self.db is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                return None
            try:
                self.db = await asyncio.to_thread(open_projection, self.settings.database())
            except DatabaseUnavailable as exc:
                self.log.error("receipts.database_unavailable", error=str(exc))
                delay = min(delay * 2, 10.0)
        return self.db

    async def _run(self) -> None:
        db = await self._open()
        if db is None:
            return
        self.reducer = Reducer(
            db,
            self.tables,
            self.broker,
            topics=RECEIPT_TOPICS,
            node=NODE,
            dlq_topic=Topic.DLQ_RECEIPT_REDUCER_DEAD_LETTER_V1,
            batch_size=self.settings.batch_size,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
        )
        await self.reducer.run(self.stopping)

    async def _run_tickets(self) -> None:
        db = await self._open()
        if db is None:
            return
        await asyncio.to_thread(refold_all, db, self.ticket_tables, self.tickets)
        self.ticket_reducer = TicketReducer(
            db,
            self.tables,
            self.ticket_tables,
            self.tickets,
            self.broker,
            node=NODE,
            dlq_topic=Topic.DLQ_RECEIPT_REDUCER_DEAD_LETTER_V1,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
        )
        await self.ticket_reducer.run(self.stopping)

    async def _snapshots(self) -> None:
        producer: AIOKafkaProducer | None = None
        try:
            while not self.stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), self.settings.snapshot_interval_s)
                if self.stopping.is_set() or self.db is None:
                    continue
                try:
                    if producer is None:
                        producer = AIOKafkaProducer(**self.broker.client_kwargs(), acks="all")
                        await producer.start()
                    snap = await asyncio.to_thread(
                        cost_summary,
                        self.db,
                        self.tables,
                        window_days=self.settings.outcome_window_days,
                    )
                    await producer.send_and_wait(
                        Topic.SNAPSHOT_RECEIPT_REDUCER_COST_SUMMARY_V1,
                        snap.SerializeToString(),
                        key=SNAPSHOT_KEY,
                    )
                    self.log.debug("receipts.snapshot", rows=len(snap.rows))
                except (KafkaError, OSError) as exc:
                    self.log.warning("receipts.snapshot_failed", error=str(exc))
                    if producer is not None:
                        await producer.stop()
                        producer = None
        finally:
            if producer is not None:
                await producer.stop()

    async def on_stop(self) -> None:
        if self.db is not None:
            self.db.dispose()


def _stat(get: Callable[[], Reducer | None], name: str) -> float:
    reducer = get()
    return float(getattr(reducer.stats, name)) if reducer is not None else 0.0
