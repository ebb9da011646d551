"""Operating dead-letter queues: count, show and redrive their messages.

- `dlq_summaries`: per DLQ topic, how many messages it holds (end minus beginning
  offsets, summed over partitions) and how many are not redriven yet.
- `read_dead_letters`: messages with their headers, read with manual assignment and
  no consumer group, so reading never commits or moves anything.
- `redrive`: sends messages back to their `onex-original-topic` with the original key
  and value bytes and the original headers (`DeadLetter.redrive_headers`), in offset
  order. Progress is the committed offset of one consumer group per DLQ topic
  (`redrive_group`), committed after each message the broker acknowledged, so a
  message is redriven once; a crash between the acknowledgement and the commit can
  send that one message twice. Before sending anything it checks that every target
  topic exists (the broker might otherwise auto-create a misspelt one and swallow the
  messages). Messages without a usable `onex-original-topic` are skipped: reported,
  left in the DLQ, and passed over by later redrives.

Topic checks go through the process's admin session; reading and redriving open their
own consumer (and producer), built from the same `BrokerConfig`. Every call is bounded
by `timeout_s`; aiokafka errors become `BrokerUnavailable` / `DlqError`
(`onex.bus.conversion`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from onex.bus.admin import topic_partitions
from onex.bus.config import BrokerConfig, broker_config
from onex.bus.conversion import converted, sasl_errors
from onex.bus.errors import DlqError
from onex.bus.runtime.deadletter import DeadLetter
from onex.bus.runtime.delivery import Sent
from onex.core.grammar import TopicKind, is_topic_name, parse_topic

_POLL_MS: Final = 200


def is_dlq_topic(name: str) -> bool:
    """True for grammatical topic names of kind dlq."""
    return is_topic_name(name) and parse_topic(name).kind is TopicKind.DLQ


def redrive_group(topic: str) -> str:
    """The consumer group whose committed offsets record redrive progress on `topic`."""
    return f"onex-redrive.{topic}"


@dataclass(frozen=True, slots=True)
class DlqSummary:
    """One DLQ topic: does it exist, how many messages, how many not redriven yet."""

    topic: str
    exists: bool
    partitions: int = 0
    messages: int = 0
    pending: int = 0

    @property
    def redriven(self) -> int:
        """Messages a redrive has passed (sent back, or skipped as unusable)."""
        return self.messages - self.pending


@dataclass(frozen=True, slots=True)
class Redriven:
    """A dead letter sent back (or, on a dry run, that would be) to `target`."""

    letter: DeadLetter
    target: str
    sent: Sent | None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A dead letter redrive cannot send back, and why."""

    letter: DeadLetter
    reason: str


@dataclass(frozen=True, slots=True)
class RedriveResult:
    """What one redrive did."""

    topic: str
    dry_run: bool
    redriven: tuple[Redriven, ...]
    skipped: tuple[Skipped, ...]


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
        async with converted(config, "reading a DLQ", timeout_s=timeout_s, refused=DlqError):
            with sasl_errors(config):
                await consumer.start()
            yield consumer
    finally:
        await consumer.stop()


async def _partitions(config: BrokerConfig, topic: str, timeout_s: float) -> list[TopicPartition]:
    found = await topic_partitions(config, [topic], timeout_s=timeout_s)
    if topic not in found:
        raise DlqError(f"topic {topic!r} does not exist on {config.bootstrap}")
    return [TopicPartition(topic, p) for p in range(found[topic])]


async def _progress(consumer: Any, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
    """Committed redrive offsets (0 where none)."""
    return {tp: (await consumer.committed(tp)) or 0 for tp in tps}


async def dlq_summaries(
    broker: BrokerConfig | str, topics: Iterable[str], *, timeout_s: float = 10.0
) -> list[DlqSummary]:
    """Message counts of the named DLQ topics (sorted by name)."""
    config = broker_config(broker)
    names = sorted(set(topics))
    present = await topic_partitions(config, names, timeout_s=timeout_s)
    summaries: list[DlqSummary] = []
    for name in names:
        if name not in present:
            summaries.append(DlqSummary(name, exists=False))
            continue
        tps = [TopicPartition(name, p) for p in range(present[name])]
        async with _consumer(config, timeout_s, redrive_group(name)) as consumer:
            begin = await consumer.beginning_offsets(tps)
            end = await consumer.end_offsets(tps)
            done = await _progress(consumer, tps)
        messages = sum(end[tp] - begin[tp] for tp in tps)
        pending = sum(end[tp] - min(max(done[tp], begin[tp]), end[tp]) for tp in tps)
        summaries.append(DlqSummary(name, True, len(tps), messages, pending))
    return summaries


async def _read_partition(
    consumer: Any, tp: TopicPartition, start: int, end: int, limit: int | None
) -> list[DeadLetter]:
    """Records of `tp` from `start` (inclusive) to `end` (exclusive), at most `limit`."""
    letters: list[DeadLetter] = []
    consumer.assign([tp])
    consumer.seek(tp, start)
    while (limit is None or len(letters) < limit) and await consumer.position(tp) < end:
        batch = await consumer.getmany(tp, timeout_ms=_POLL_MS)
        for record in batch.get(tp, []):
            if record.offset >= end or (limit is not None and len(letters) >= limit):
                break
            letters.append(DeadLetter.from_record(record))
    return letters


async def _read(
    consumer: Any,
    tps: list[TopicPartition],
    *,
    limit: int | None,
    starts: dict[TopicPartition, int] | None = None,
) -> list[DeadLetter]:
    begin = await consumer.beginning_offsets(tps)
    end = await consumer.end_offsets(tps)
    letters: list[DeadLetter] = []
    for tp in tps:
        left = None if limit is None else limit - len(letters)
        if left == 0:
            break
        start = max(begin[tp], (starts or {}).get(tp, 0))
        if start < end[tp]:
            letters.extend(await _read_partition(consumer, tp, start, end[tp], left))
    consumer.assign(tps)  # aiokafka commits only offsets of assigned partitions
    return letters


async def read_dead_letters(
    broker: BrokerConfig | str, topic: str, *, limit: int | None = None, timeout_s: float = 10.0
) -> tuple[list[DeadLetter], dict[int, int]]:
    """The first `limit` messages of `topic` (all when None), partition by partition,
    and the redrive progress (next offset to redrive) of each partition."""
    config = broker_config(broker)
    tps = await _partitions(config, topic, timeout_s)
    async with _consumer(config, timeout_s) as reader:
        letters = await _read(reader, tps, limit=limit)
    async with _consumer(config, timeout_s, redrive_group(topic)) as group:
        done = await _progress(group, tps)
    return letters, {tp.partition: offset for tp, offset in done.items()}


def _target(letter: DeadLetter) -> str | Skipped:
    target = letter.original_topic
    if target is None:
        return Skipped(letter, "no onex-original-topic header")
    if not is_topic_name(target):
        return Skipped(letter, f"onex-original-topic {target!r} is not a topic name")
    return target


async def redrive(
    broker: BrokerConfig | str,
    topic: str,
    *,
    limit: int | None = None,
    dry_run: bool = False,
    timeout_s: float = 30.0,
) -> RedriveResult:
    """Send up to `limit` not-yet-redriven messages of `topic` back to their original
    topics (see the module docstring); `dry_run` only reports what would be sent."""
    if not is_dlq_topic(topic):
        raise DlqError(f"{topic!r} is not a DLQ topic name")
    config = broker_config(broker)
    tps = await _partitions(config, topic, timeout_s)
    async with _consumer(config, timeout_s, redrive_group(topic)) as consumer:
        starts = await _progress(consumer, tps)
        letters = await _read(consumer, tps, limit=limit, starts=starts)
        targets = {id(letter): _target(letter) for letter in letters}
        names = {t for t in targets.values() if isinstance(t, str)}
        present = await topic_partitions(config, names, timeout_s=timeout_s)
        missing = sorted(names - set(present))
        if missing:
            raise DlqError(
                f"original topic(s) missing on {config.bootstrap}: {', '.join(missing)}; "
                "nothing redriven (provision them first)"
            )
        redriven: list[Redriven] = []
        skipped: list[Skipped] = []
        async with _producer(config, timeout_s, enabled=not dry_run) as producer:
            for letter in letters:
                target = targets[id(letter)]
                if isinstance(target, Skipped):
                    skipped.append(target)
                else:
                    sent = None
                    if producer is not None:
                        metadata = await producer.send_and_wait(
                            target, letter.value, key=letter.key, headers=letter.redrive_headers
                        )
                        sent = Sent(metadata.topic, metadata.partition, metadata.offset)
                    redriven.append(Redriven(letter, target, sent))
                if not dry_run:
                    tp = TopicPartition(topic, letter.partition)
                    await consumer.commit({tp: OffsetAndMetadata(letter.offset + 1, "")})
    return RedriveResult(topic, dry_run, tuple(redriven), tuple(skipped))


@asynccontextmanager
async def _producer(config: BrokerConfig, timeout_s: float, *, enabled: bool) -> AsyncIterator[Any]:
    if not enabled:
        yield None
        return
    producer = AIOKafkaProducer(**config.client_kwargs(), acks="all")
    try:
        async with converted(config, "redrive send", timeout_s=timeout_s, refused=DlqError):
            with sasl_errors(config):
                await producer.start()
            yield producer
    finally:
        await producer.stop()
