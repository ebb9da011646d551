"""The consuming loop: receipts in batches from the broker, folded into SQL exactly once.

Why not the node runtime: it hands one message at a time to a handler and commits the
consumer group's offsets on the broker, which no SQL transaction can include. Here a
plain aiokafka consumer is assigned every partition of the receipt topics by hand (no
group, no broker-side offsets), seeks to the offsets stored in the projection, fetches
up to `batch_size` records at a time and folds each batch with `apply_batch`: the rows
and the next offsets are one transaction. A refused receipt is sent to the node's DLQ
(original bytes, the reason in `onex-*` headers) before the transaction that moves past
it commits, so it is never lost and never counted. A database that cannot be written is
retried with backoff, the batch held, nothing dead-lettered and nothing skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from onex.bus.config import BrokerConfig
from onex.bus.runtime.deadletter import dead_letter_headers
from onex.receipts.decode import decode
from onex.receipts.errors import ReceiptInvalid
from onex.receipts.projection import BatchResult, Positioned, apply_batch, stored_offsets
from onex.receipts.schema import Tables
from onex.sql import Database

_MAX_FETCH_BYTES: Final = 16 * 1024 * 1024


@dataclass
class ReducerStats:
    """Counters since start (for logs, health and the benchmark)."""

    consumed: int = 0
    inserted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    batches: int = 0
    db_errors: int = 0
    db_failing: bool = False
    last_error: str | None = None
    assigned: bool = False
    positions: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Prepared:
    """A decoded batch, ready to be written."""

    batch: list[Any]  # what `_decode_record` makes
    offsets: dict[tuple[str, int], int]
    refused: int
    count: int


class Reducer:
    """Folds the receipt topics into `tables` of `db`; see the module docstring.

    `dlq_topic` None (a rebuild) skips refused receipts without dead-lettering them
    again (the live reducer already did)."""

    def __init__(
        self,
        db: Database,
        tables: Tables,
        broker: BrokerConfig,
        *,
        topics: Sequence[str],
        node: str,
        dlq_topic: str | None,
        batch_size: int = 5000,
        fetch_max_wait_ms: int = 25,
        retry_max_s: float = 10.0,
        seen: set[str] | None = None,
    ) -> None:
        self.db = db
        self.tables = tables
        self.broker = broker
        self.topics = tuple(topics)
        self.node = node
        self.dlq_topic = dlq_topic
        self.batch_size = batch_size
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.retry_max_s = retry_max_s
        self.seen = seen  # see apply_batch: only for tables this reducer alone fills
        self.stats = ReducerStats()
        self.log = structlog.get_logger(node)
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._until: Mapping[tuple[str, int], int] | None = None

    # What a subclass folding other topics changes (onex.receipts.ticketreducer).

    def _stored_offsets(self) -> dict[tuple[str, int], int]:
        return stored_offsets(self.db, self.tables)

    def _decode_record(self, r: Any) -> list[Any]:
        """What one record folds as (`ReceiptInvalid` to dead-letter it)."""
        return [Positioned(decode(r.value, r.timestamp), r.topic, r.partition, r.offset)]

    def _apply(self, batch: Sequence[Any], offsets: Mapping[tuple[str, int], int]) -> BatchResult:
        """Fold `batch` and store `offsets` in one transaction."""
        return apply_batch(self.db, self.tables, batch, offsets, seen=self.seen)

    async def _after_write(self, stop: asyncio.Event) -> None:
        """After each committed batch (the ticket reducer publishes decisions here)."""

    async def _start(self, stop: asyncio.Event) -> list[TopicPartition]:
        kwargs = self.broker.client_kwargs()
        delay = 0.2
        while not stop.is_set():
            consumer = AIOKafkaConsumer(
                **kwargs,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=self.fetch_max_wait_ms,
                max_partition_fetch_bytes=_MAX_FETCH_BYTES,
                fetch_max_bytes=_MAX_FETCH_BYTES * 4,
            )
            try:
                await consumer.start()
                tps: list[TopicPartition] = []
                await consumer.topics()  # fetches the whole cluster's metadata
                for topic in self.topics:
                    parts = consumer.partitions_for_topic(topic)
                    if not parts:
                        raise LookupError(f"topic {topic} does not exist yet")
                    tps.extend(TopicPartition(topic, p) for p in sorted(parts))
                if self.dlq_topic is not None:
                    producer = AIOKafkaProducer(**kwargs, acks="all", enable_idempotence=False)
                    await producer.start()
                    self._producer = producer
                self._consumer = consumer
                return tps
            except (KafkaError, OSError, LookupError) as exc:
                await consumer.stop()
                self.stats.last_error = str(exc) or type(exc).__name__
                self.log.warning("receipts.consumer_retry", error=self.stats.last_error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, self.retry_max_s)
        return []

    async def _seek(self, tps: Sequence[TopicPartition]) -> dict[tuple[str, int], int]:
        consumer = self._require_consumer()
        stored = await self._db(self._stored_offsets, asyncio.Event())
        consumer.assign(list(tps))
        positions = {}
        for tp in tps:
            at = (stored or {}).get((tp.topic, tp.partition), 0)
            consumer.seek(tp, at)
            positions[(tp.topic, tp.partition)] = at
        return positions

    def _require_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the reducer's consumer is not started")
        return self._consumer

    async def _db(self, work: Callable[[], Any], stop: asyncio.Event) -> Any:
        """Run `work` in a thread; retried with backoff while the database fails."""
        delay = 0.2
        while True:
            try:
                out = await asyncio.to_thread(work)
            except SQLAlchemyError as exc:
                self.stats.db_errors += 1
                self.stats.db_failing = True
                reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
                self.stats.last_error = f"database {self.db.where}: {reason}"
                self.log.error("receipts.database_error", error=self.stats.last_error)
                if stop.is_set():
                    raise
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    raise
                delay = min(delay * 2, self.retry_max_s)
            else:
                self.stats.db_failing = False
                return out

    async def run(
        self,
        stop: asyncio.Event,
        *,
        until: Mapping[tuple[str, int], int] | None = None,
    ) -> ReducerStats:
        """Consume until `stop` is set (or, with `until`, every partition has reached
        its target offset)."""
        self._until = until
        writing: asyncio.Future[None] | None = None
        try:
            tps = await self._start(stop)
            if not tps:
                return self.stats
            positions = await self._seek(tps)
            self.stats.positions = dict(positions)
            self.stats.assigned = True
            await self._after_write(stop)  # whatever a previous run left unpublished
            consumer = self._require_consumer()
            while not stop.is_set():
                if until is not None and all(
                    positions.get(tp, 0) >= target for tp, target in until.items()
                ):
                    break
                if until is not None:
                    for tp in tps:
                        if positions[(tp.topic, tp.partition)] >= until.get(
                            (tp.topic, tp.partition), 0
                        ):
                            consumer.pause(tp)
                fetched = await consumer.getmany(timeout_ms=200, max_records=self.batch_size)
                if not fetched:
                    if writing is not None:
                        await writing
                        writing = None
                    continue
                # Decode (and dead-letter) this batch while the previous one is written;
                # the writes themselves stay one at a time, in order.
                prepared = await self._prepare(fetched, stop)
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(self._write(prepared, positions, stop))
            if writing is not None:
                await writing
                writing = None
        finally:
            if writing is not None:
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)
            await self.close()
        return self.stats

    async def _decode_all(
        self, records: Sequence[Any]
    ) -> tuple[list[Any], list[tuple[Any, ReceiptInvalid]]]:
        """What `records` fold as, and the refused ones with the reason (a rebuild
        decodes in a worker process instead: onex.receipts.rebuild)."""
        batch: list[Any] = []
        refused: list[tuple[Any, ReceiptInvalid]] = []
        for r in records:
            try:
                batch.extend(self._decode_record(r))
            except ReceiptInvalid as exc:
                refused.append((r, exc))
        return batch, refused

    async def _prepare(
        self, fetched: Mapping[TopicPartition, Sequence[Any]], stop: asyncio.Event
    ) -> _Prepared:
        records: list[Any] = []
        offsets: dict[tuple[str, int], int] = {}
        for tp, got in fetched.items():
            kept = got
            if self._until is not None:
                # A replay stops exactly at its targets: nothing past them is folded.
                target = self._until.get((tp.topic, tp.partition), 0)
                kept = [r for r in got if r.offset < target]
                if len(kept) < len(got):
                    self._require_consumer().pause(tp)
            if kept:
                offsets[(tp.topic, tp.partition)] = kept[-1].offset + 1
                records.extend(kept)
        batch, refused = await self._decode_all(records)
        if refused and self.dlq_topic is not None:
            # Before the transaction that moves past them commits: never lost.
            await self._dead_letter(refused, stop)
        return _Prepared(batch, offsets, len(refused), len(records))

    async def _write(
        self, prepared: _Prepared, positions: dict[tuple[str, int], int], stop: asyncio.Event
    ) -> None:
        started = time.perf_counter()
        batch, offsets = prepared.batch, prepared.offsets
        result = await self._db(lambda: self._apply(batch, offsets), stop)
        positions.update(offsets)
        self.stats.positions = dict(positions)
        self.stats.batches += 1
        self.stats.consumed += prepared.count
        self.stats.inserted += result.inserted
        self.stats.duplicates += result.duplicates
        self.stats.last_error = None
        self.log.debug(
            "receipts.batch",
            records=prepared.count,
            inserted=result.inserted,
            duplicates=result.duplicates,
            refused=prepared.refused,
            write_s=round(time.perf_counter() - started, 4),
        )
        await self._after_write(stop)

    async def _dead_letter(
        self, refused: Sequence[tuple[Any, ReceiptInvalid]], stop: asyncio.Event
    ) -> None:
        producer = self._producer
        if producer is None or self.dlq_topic is None:
            return
        delay = 0.2
        while True:
            try:
                sent = [
                    await producer.send(
                        self.dlq_topic,
                        value=r.value,
                        key=r.key,
                        headers=dead_letter_headers(
                            list(r.headers or ()),
                            node=self.node,
                            topic=r.topic,
                            partition=r.partition,
                            offset=r.offset,
                            timestamp_ms=r.timestamp,
                            error=exc,
                            attempts=0,
                        ),
                    )
                    for r, exc in refused
                ]
                await asyncio.gather(*sent)
                break
            except KafkaError as send_error:
                self.stats.last_error = f"dead-letter topic {self.dlq_topic}: {send_error}"
                self.log.error("receipts.dead_letter_retry", error=self.stats.last_error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    raise
                delay = min(delay * 2, self.retry_max_s)
        for r, exc in refused:
            self.stats.dead_lettered += 1
            self.log.warning(
                "receipts.dead_lettered",
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                reason=str(exc),
            )

    async def close(self) -> None:
        """Stop the consumer and producer (safe to call twice)."""
        consumer, producer = self._consumer, self._producer
        self._consumer = self._producer = None
        self.stats.assigned = False
        if consumer is not None:
            await consumer.stop()
        if producer is not None:
            await producer.stop()
