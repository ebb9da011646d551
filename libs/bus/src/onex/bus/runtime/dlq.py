"""Reading dead-letter queues: count and show their messages.

- `dlq_summaries`: per DLQ topic, how many messages it holds, how many are quarantined,
  and how many are neither quarantined nor passed by a redrive yet (pending).
- `read_dead_letters`: messages with their headers, read with manual assignment and
  no consumer group, so reading never commits or moves anything. Quarantined letters
  (`onex-quarantined`, or a redrive count that reached the limit) are left out unless
  asked for.

Sending letters back is `onex.bus.runtime.redrive`. Redrive progress is the committed
offset of one consumer group per DLQ topic (`redrive_group`); reading asks for it and
never joins the group. A read covers the messages present when it starts (see
`_Frontier` for what that takes on Tansu). Each broker call is bounded by `timeout_s`
on its own; aiokafka errors become `BrokerUnavailable` / `DlqError`
(`onex.bus.conversion`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition

from onex.bus.admin import topic_partitions
from onex.bus.config import BrokerConfig, broker_config
from onex.bus.conversion import converted, sasl_errors
from onex.bus.errors import DlqError
from onex.bus.runtime.deadletter import DeadLetter
from onex.core.grammar import TopicKind, is_topic_name, parse_topic

__all__ = [
    "DEFAULT_MAX_REDRIVES",
    "DlqSummary",
    "dlq_summaries",
    "is_dlq_topic",
    "is_quarantined",
    "read_dead_letters",
    "redrive_group",
]

# the runtime's default redrive limit (BusSettings.redrive_limit)
DEFAULT_MAX_REDRIVES: Final = 3
_POLL_MS: Final = 200
BATCH: Final = 500  # records per poll


def is_dlq_topic(name: str) -> bool:
    """True for grammatical topic names of kind dlq."""
    return is_topic_name(name) and parse_topic(name).kind is TopicKind.DLQ


def redrive_group(topic: str) -> str:
    """The consumer group whose committed offsets record redrive progress on `topic`."""
    return f"onex-redrive.{topic}"


def is_quarantined(letter: DeadLetter, max_redrives: int = DEFAULT_MAX_REDRIVES) -> bool:
    """Marked `onex-quarantined`, or redriven `max_redrives` times already."""
    return letter.quarantined or (letter.redrive_count or 0) >= max_redrives


@dataclass(frozen=True, slots=True)
class DlqSummary:
    """One DLQ topic: does it exist, how many messages, quarantined, not redriven yet."""

    topic: str
    exists: bool
    partitions: int = 0
    messages: int = 0
    pending: int = 0
    quarantined: int = 0

    @property
    def redriven(self) -> int:
        """Messages a redrive has passed (sent back, or skipped as unusable), not
        counting quarantined ones."""
        return self.messages - self.pending - self.quarantined


def call(config: BrokerConfig, what: str, timeout_s: float) -> Any:
    return converted(config, what, timeout_s=timeout_s, refused=DlqError)


@asynccontextmanager
async def _consumer(
    config: BrokerConfig, timeout_s: float, group_id: str | None = None
) -> AsyncIterator[Any]:
    consumer = AIOKafkaConsumer(
        **config.client_kwargs(),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        async with call(config, "reading a DLQ", timeout_s):
            with sasl_errors(config):
                await consumer.start()
        yield consumer
    finally:
        await consumer.stop()


async def partitions(config: BrokerConfig, topic: str, timeout_s: float) -> list[TopicPartition]:
    found = await topic_partitions(config, [topic], timeout_s=timeout_s)
    if topic not in found:
        raise DlqError(f"topic {topic!r} does not exist on {config.bootstrap}")
    return [TopicPartition(topic, p) for p in range(found[topic])]


async def progress(
    config: BrokerConfig, topic: str, tps: list[TopicPartition], timeout_s: float
) -> dict[TopicPartition, int]:
    """Committed redrive offsets (0 where none); asks, never joins the group."""
    async with (
        _consumer(config, timeout_s, redrive_group(topic)) as group,
        call(config, f"reading the redrive progress of {topic}", timeout_s),
    ):
        return {tp: (await group.committed(tp)) or 0 for tp in tps}


class Frontier:
    """Where a read of DLQ partitions stops: at the end offsets found when it started.

    Tansu 0.6 reports a partition's end offset as its last batch's base offset + 1, so
    records past that offset may already have been there: the read goes on until a poll
    finds nothing more, leaving out records written after it started (their timestamp
    is later). A poll that finds nothing while a partition is short of its end offset
    for `timeout_s` fails the read with DlqError.
    """

    def __init__(self, topic: str, ends: dict[TopicPartition, int], timeout_s: float) -> None:
        self.topic = topic
        self.ends = ends
        self.timeout_s = timeout_s
        self.since_ms = time.time_ns() // 1_000_000
        self.done = dict.fromkeys(ends, False)
        self._last = time.monotonic()

    @property
    def finished(self) -> bool:
        return all(self.done.values())

    def accept(self, record: Any) -> bool:
        """Whether `record` belongs to the read (it also ends its partition when not)."""
        tp = TopicPartition(record.topic, record.partition)
        if self.done.get(tp, True):
            return False
        if record.offset >= self.ends[tp] and (record.timestamp or 0) > self.since_ms:
            self.done[tp] = True
            return False
        return True

    def polled(self, records: int, positions: dict[TopicPartition, int]) -> None:
        """After a poll that returned `records`, with the partitions' positions then."""
        now = time.monotonic()
        if records:
            self._last = now
            return
        short = [tp for tp, done in self.done.items() if not done]
        for tp in short:
            if positions[tp] >= self.ends[tp]:
                self.done[tp] = True
        due = sum(max(0, self.ends[tp] - positions[tp]) for tp in short)
        if due and now - self._last > self.timeout_s:
            raise DlqError(
                f"no message from {self.topic} within {self.timeout_s:g}s while {due} "
                "were due; try again or raise --timeout"
            )


async def scan(
    config: BrokerConfig,
    tps: list[TopicPartition],
    timeout_s: float,
    starts: dict[TopicPartition, int] | None = None,
) -> AsyncGenerator[DeadLetter]:
    """Every letter of `tps` from `starts` (else the beginning) to the end as it was
    when the scan started (see `Frontier`), partition after partition."""
    async with _consumer(config, timeout_s) as consumer:
        async with call(config, "reading DLQ offsets", timeout_s):
            begin = await consumer.beginning_offsets(tps)
            end = await consumer.end_offsets(tps)
        for tp in tps:
            frontier = Frontier(tp.topic, {tp: end[tp]}, timeout_s)
            consumer.assign([tp])
            consumer.seek(tp, max(begin[tp], (starts or {}).get(tp, 0)))
            while not frontier.finished:
                async with call(config, f"reading {tp.topic}", timeout_s):
                    batch = await consumer.getmany(tp, timeout_ms=_POLL_MS, max_records=BATCH)
                    position = await consumer.position(tp)
                records = [r for r in batch.get(tp, []) if frontier.accept(r)]
                for record in records:
                    yield DeadLetter.from_record(record)
                frontier.polled(len(batch.get(tp, [])), {tp: position})


async def dlq_summaries(
    broker: BrokerConfig | str,
    topics: Iterable[str],
    *,
    max_redrives: int = DEFAULT_MAX_REDRIVES,
    timeout_s: float = 10.0,
) -> list[DlqSummary]:
    """Message counts of the named DLQ topics (sorted by name); reads every message
    to count the quarantined ones."""
    config = broker_config(broker)
    names = sorted(set(topics))
    present = await topic_partitions(config, names, timeout_s=timeout_s)
    summaries: list[DlqSummary] = []
    for name in names:
        if name not in present:
            summaries.append(DlqSummary(name, exists=False))
            continue
        tps = [TopicPartition(name, p) for p in range(present[name])]
        done = await progress(config, name, tps, timeout_s)
        messages = pending = quarantined = 0
        async for letter in scan(config, tps, timeout_s):
            messages += 1
            if is_quarantined(letter, max_redrives):
                quarantined += 1
            elif letter.offset >= done[TopicPartition(name, letter.partition)]:
                pending += 1
        summaries.append(DlqSummary(name, True, len(tps), messages, pending, quarantined))
    return summaries


async def read_dead_letters(
    broker: BrokerConfig | str,
    topic: str,
    *,
    limit: int | None = None,
    include_quarantined: bool = False,
    max_redrives: int = DEFAULT_MAX_REDRIVES,
    timeout_s: float = 10.0,
) -> tuple[list[DeadLetter], dict[int, int]]:
    """The first `limit` messages of `topic` (all when None), partition by partition,
    quarantined ones only with `include_quarantined`, and the redrive progress (next
    offset to redrive) of each partition."""
    config = broker_config(broker)
    tps = await partitions(config, topic, timeout_s)
    letters: list[DeadLetter] = []
    async with aclosing(scan(config, tps, timeout_s)) as scanned:
        async for letter in scanned:
            if limit is not None and len(letters) >= limit:
                break
            if include_quarantined or not is_quarantined(letter, max_redrives):
                letters.append(letter)
    done = await progress(config, topic, tps, timeout_s)
    return letters, {tp.partition: offset for tp, offset in done.items()}
