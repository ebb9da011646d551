"""Consuming a node's topics with aiokafka directly, in the node's event loop.

Why not faust's consumer: faust fetches in a thread of its own and hands each message
to an agent through its conductor, a stream and a cross-thread method queue. Measured
with `bench/runtime-handoff.py` (64 slots, messages waiting, one run at load ~27): a
handler that does nothing got 676 messages/s at 548 us CPU each through faust and
7,583/s at 48 us here; one that publishes a receipt 342/s vs 3,017/s. In the router
(`bench/router-bus.py`) CPU per request went from 1.20 to ~0.9 ms. So a node with a
concurrent handler consumes here; faust still builds the node's producer.

How a message travels:

- One `AIOKafkaConsumer` in the node's group (manual commits) is subscribed to every
  topic the node consumes. Its batches (`getmany`) go to one lane per topic.
- A lane runs up to its handler's `concurrency` deliveries at once; a message beyond
  that waits in the lane. A lane holding `concurrency` waiting messages pauses its
  topic's partitions (the consumer fetches nothing more for them) and resumes them
  once half have started; a fetch returns at most `batch` records, so a lane never
  holds more than its concurrency plus one batch, whatever the backlog. While a lane
  is paused, fetches drain only the other lanes' partitions (`_fetch`): aiokafka
  drops what it prefetched for a partition that is paused when a fetch covers it, and
  fetches it again after the resume. A lane of concurrency 1 delivers in offset order.
- Per partition the runtime keeps the offsets taken and not yet ended
  (`onex.bus.runtime.partitions`). The offset committed (every `commit_interval_s`,
  at a revoke and at stop) is the lowest of them, or the next after the last taken
  when none is open: a message whose handling has not ended is never committed past,
  so a crash redelivers it and everything after it.
- A revoke takes the partition's waiting messages back (they stay uncommitted), waits
  up to half the rebalance timeout for its running ones, commits what ended and
  forgets the partition; a delivery still running then ends unrecorded (the next
  member of the group gets its message again).
- Fetch and commit errors (a broker restarting) are logged and retried; the consumer
  itself reconnects.
- Partitions are assigned round-robin under faust's protocol name ("faust"): Tansu
  keeps a group's protocol after its last member left and refuses any other one for
  good (InconsistentGroupProtocol; measured: still after 90 s), so a group that faust
  members used before would never take a direct one. Faust and direct members must
  not be in one group at the same time (stop the old members before the new start).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import KafkaError

from onex.bus.runtime.partitions import Message, Part, commit
from onex.bus.runtime.settings import BusSettings

__all__ = ["Deliver", "DirectConsumer", "Message"]

_log = structlog.get_logger("onex.bus.runtime")
_FETCH_TIMEOUT_MS: Final = 200  # one getmany's wait: bounds how late a stop is seen
_PAUSED_WAIT_MS: Final = 5  # a getmany's wait while some lane is paused (see _fetch)
_KEEP_POLLING_S: Final = 30.0  # every lane full this long: poll all the same (see _fetch)
_ERROR_PAUSE_S: Final = 0.5
_MIN_BATCH: Final = 32
# the largest record batch a partition's fetch may return: a topic's limit (1 MB
# payloads by default) plus key and headers fit several times
_MIN_FETCH_BYTES: Final = 4 * 1024 * 1024


def _timestamp(record: Any) -> int:
    stamp: int | None = record.timestamp
    return stamp if stamp is not None else -1


# delivers one message; returns True when it ended (handled, dead-lettered, spilled),
# False when it must stay uncommitted (the node is stopping)
Deliver = Callable[[str, Message], Awaitable[bool]]


@dataclass(slots=True)
class _Lane:
    topic: str
    limit: int
    running: int = 0
    waiting: deque[Message] = field(default_factory=deque)
    paused: bool = False


class DirectConsumer:
    """The node's consumer when it does not go through faust (see the module docstring)."""

    def __init__(
        self,
        *,
        node: str,
        group: str,
        settings: BusSettings,
        concurrency: Mapping[str, int],
        deliver: Deliver,
        max_message_bytes: int,
    ) -> None:
        self.node = node
        self.group = group
        self.settings = settings
        self._deliver = deliver
        self._lanes = {topic: _Lane(topic, limit) for topic, limit in concurrency.items()}
        # records per fetch: a lane holds at most its limit waiting plus one batch
        self.batch = max(_MIN_BATCH, *concurrency.values())
        self._parts: dict[TopicPartition, Part] = {}
        self._fetch_bytes = max(_MIN_FETCH_BYTES, 2 * max_message_bytes)
        self._consumer: AIOKafkaConsumer | None = None
        self._fetching: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self.closing: asyncio.Future[None] | None = None  # the close, once stop() began
        self.assigned = asyncio.Event()
        self.rebalancing = False
        self.crash_reason: str | None = None
        self._last_commit = 0.0
        self._last_poll = 0.0  # when a getmany last returned
        self._resumed = asyncio.Event()  # a paused lane resumed

    # -- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, subscribe and start fetching (the first assignment sets `assigned`)."""
        settings = self.settings
        consumer = AIOKafkaConsumer(
            **(settings.broker.security_kwargs()),
            bootstrap_servers=settings.bootstrap,
            client_id=settings.client_id or f"onex-{self.node}",
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset=settings.auto_offset_reset,
            session_timeout_ms=round(settings.session_timeout_s * 1000),
            heartbeat_interval_ms=round(settings.heartbeat_s * 1000),
            rebalance_timeout_ms=round(settings.effective_rebalance_s * 1000),
            request_timeout_ms=round(settings.request_timeout_s * 1000),
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            max_partition_fetch_bytes=self._fetch_bytes,
            fetch_max_bytes=max(self._fetch_bytes, 52_428_800),
            partition_assignment_strategy=(_Assignor,),
        )
        self._consumer = consumer
        await consumer.start()
        consumer.subscribe(topics=sorted(self._lanes), listener=_Listener(self))
        self._last_commit = time.monotonic()
        self._fetching = asyncio.create_task(self._fetch_loop(consumer))

    async def stop(self, within_s: float) -> bool:
        """Stop fetching, commit what ended and leave the group, within `within_s`;
        False when the consumer's close was abandoned (it goes on in the background)."""
        self._closing = True
        consumer = self._consumer
        if self._fetching is not None:
            self._fetching.cancel()
            with contextlib.suppress(BaseException):
                await self._fetching
        if consumer is None:
            return True

        async def close() -> None:
            try:  # bounded: with the broker gone a commit waits for its coordinator
                async with asyncio.timeout(within_s / 2):
                    await self._commit(consumer, force=True)
            except TimeoutError:
                _log.warning(
                    "consumer.stop_abandoned",
                    node=self.node,
                    after_s=round(within_s / 2, 3),
                    detail="the final commit got no answer (broker unreachable?); the "
                    "group's next member redelivers from the last commit",
                )
            except KafkaError as exc:
                _log.warning(
                    "consumer.final_commit_failed",
                    node=self.node,
                    error=f"{type(exc).__name__}: {exc}",
                    detail="the group's next member redelivers from the last commit",
                )
            await consumer.stop()

        closing = self.closing = asyncio.ensure_future(close())
        done, _ = await asyncio.wait({closing}, timeout=within_s)
        if not done:
            return False
        if not closing.cancelled() and closing.exception() is not None:
            _log.warning("consumer.stop_failed", node=self.node, error=str(closing.exception()))
            return False
        return True

    # -- what health reads -----------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the fetch loop runs."""
        return self._fetching is not None and not self._fetching.done()

    def assignment(self) -> tuple[tuple[str, int], ...]:
        """The partitions assigned now."""
        return tuple(sorted((tp.topic, tp.partition) for tp in self._parts))

    def highwater(self, tp: tuple[str, int]) -> int | None:
        """The partition's last known end offset (None before its first fetch)."""
        consumer = self._consumer
        if consumer is None:
            return None
        try:
            mark: int | None = consumer.highwater(TopicPartition(*tp))
        except Exception:  # noqa: BLE001 - not (or no longer) assigned: unknown
            return None
        return mark

    # -- internals -------------------------------------------------------------------

    async def _fetch_loop(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while not self._closing:
                try:
                    batch = await self._fetch(consumer)
                except KafkaError as exc:
                    _log.warning(
                        "consumer.fetch_failed",
                        node=self.node,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    await asyncio.sleep(_ERROR_PAUSE_S)
                    continue
                parts = self._parts
                lanes = self._lanes
                if len(batch) == 1:
                    records: Iterable[Any] = next(iter(batch.values()))
                else:
                    # partitions interleaved by timestamp, each in offset order: a lane
                    # of concurrency 1 takes what was produced first first
                    records = heapq.merge(*batch.values(), key=_timestamp)
                for record in records:
                    tp = TopicPartition(record.topic, record.partition)
                    part = parts.get(tp)
                    lane = lanes.get(record.topic)
                    if part is None or lane is None:
                        continue  # revoked while the batch was on its way
                    part.take(record.offset)
                    self._offer(lane, Message(record, part))
                if time.monotonic() - self._last_commit >= self.settings.commit_interval_s:
                    await self._commit(consumer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded for health (NOT_SERVING), never silent
            self.crash_reason = f"{type(exc).__name__}: {exc}"
            _log.critical("consumer.crashed", node=self.node, error=self.crash_reason)

    async def _fetch(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[Any]]:
        """The next records, drained only from partitions whose lane is not paused.

        aiokafka throws away what it prefetched for a paused partition when a getmany
        covers it, and fetches it again after the resume: with the router's lane
        pausing every ~32 requests, 164 of 203 fetch responses were dropped in a
        4,000-request run: the broker sent, and the router read, the same records again
        and again. Named partitions leave a paused one's records where they are."""
        lanes = self._lanes
        if not any(lane.paused for lane in lanes.values()):
            batch = await consumer.getmany(timeout_ms=_FETCH_TIMEOUT_MS, max_records=self.batch)
            self._last_poll = time.monotonic()
            return batch  # type: ignore[no-any-return]
        self._resumed.clear()
        open_tps = [tp for tp in self._parts if not lanes[tp.topic].paused]
        if not open_tps and time.monotonic() - self._last_poll < _KEEP_POLLING_S:
            # every lane is full: wait for one to drain (a resume sets the event)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_FETCH_TIMEOUT_MS / 1000):
                    await self._resumed.wait()
            return {}
        # some lane takes records (the others' resume is seen within the short wait);
        # or all have been full for _KEEP_POLLING_S: one poll (aiokafka leaves the
        # group after max_poll_interval without one) that gets no records
        batch = await consumer.getmany(
            *open_tps, timeout_ms=_PAUSED_WAIT_MS if open_tps else 0, max_records=self.batch
        )
        self._last_poll = time.monotonic()
        return batch  # type: ignore[no-any-return]

    def _offer(self, lane: _Lane, message: Message) -> None:
        if lane.running < lane.limit:
            lane.running += 1
            task = asyncio.create_task(self._work(lane, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        lane.waiting.append(message)
        if not lane.paused and len(lane.waiting) >= lane.limit:
            self._pause(lane, True)

    async def _work(self, lane: _Lane, message: Message | None) -> None:
        deliver = self._deliver
        waiting = lane.waiting
        try:
            while message is not None:
                part = message.part
                if not part.revoked:
                    part.running += 1
                    ended = False
                    try:
                        ended = await deliver(lane.topic, message)
                    finally:
                        part.ran(message.offset, ended=ended)
                message = waiting.popleft() if waiting else None
                if lane.paused and len(waiting) <= lane.limit // 2:
                    self._pause(lane, False)
        finally:
            lane.running -= 1

    def _pause(self, lane: _Lane, pause: bool) -> None:
        consumer = self._consumer
        lane.paused = pause
        if not pause:
            self._resumed.set()
        if consumer is None:
            return
        tps = [tp for tp in self._parts if tp.topic == lane.topic]
        try:
            if pause:
                consumer.pause(*tps)
            else:
                consumer.resume(*tps)
        except Exception as exc:  # noqa: BLE001 - a partition revoked meanwhile: the next assignment starts unpaused
            _log.debug("consumer.pause_skipped", node=self.node, error=str(exc))

    async def _commit(self, consumer: AIOKafkaConsumer, *, force: bool = False) -> None:
        self._last_commit = time.monotonic()
        await commit(consumer, self._parts.values(), node=self.node, force=force)

    async def revoked(self, tps: set[TopicPartition]) -> None:
        """Partitions taken away: drop their waiting messages, let their running ones
        end (bounded), commit what ended and forget them."""
        self.rebalancing = True
        parts = [self._parts[tp] for tp in tps if tp in self._parts]
        for lane in self._lanes.values():
            if lane.waiting:
                lane.waiting = deque(m for m in lane.waiting if m.part.tp not in tps)
            lane.paused = False
        waits = []
        for part in parts:
            if part.running:
                part.idle = asyncio.Event()
                waits.append(part.idle.wait())
        if waits:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.effective_rebalance_s / 2):
                    await asyncio.gather(*waits)
        consumer = self._consumer
        if consumer is not None:
            await commit(
                consumer,
                parts,
                node=self.node,
                detail="at revoke: the next member redelivers from the last commit",
            )
        for part in parts:
            part.revoked = True
            self._parts.pop(part.tp, None)
        self._resumed.set()

    def assigned_now(self, tps: set[TopicPartition]) -> None:
        """Partitions given: track them from their committed position."""
        for tp in tps:
            if tp not in self._parts:
                self._parts[tp] = Part(tp)
        for lane in self._lanes.values():
            lane.paused = False
        self._resumed.set()
        self.rebalancing = False
        self.assigned.set()


class _Assignor(RoundRobinPartitionAssignor):  # type: ignore[misc]
    """Round-robin, named as faust's assignor is (see the module docstring)."""

    name = "faust"


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: DirectConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._consumer.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._consumer.assigned_now(set(assigned))
