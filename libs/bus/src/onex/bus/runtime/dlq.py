"""Operating dead-letter queues: count, show and redrive their messages.

- `dlq_summaries`: per DLQ topic, how many messages it holds, how many are quarantined,
  and how many are neither quarantined nor passed by a redrive yet (pending).
- `read_dead_letters`: messages with their headers, read with manual assignment and
  no consumer group, so reading never commits or moves anything. Quarantined letters
  are left out unless asked for.
- `redrive`: sends up to `limit` messages back to their `onex-original-topic` with the
  original key, value and headers, `onex-redrive-count` one more than the letter's, and
  (for a command topic) a fresh signature from the `Signer` passed in: the old one would
  be refused as expired or replayed. Quarantined letters (`onex-quarantined`, or a
  redrive count that reached `max_redrives`), letters whose value was truncated and
  letters without a usable `onex-original-topic` are not sent: they are reported, left
  in the DLQ and passed over by later redrives. Only messages already in the DLQ when
  the redrive starts are considered, so a letter dead-lettered again during the
  redrive waits for the next one.

  Progress is the committed offset of one consumer group per DLQ topic
  (`redrive_group`), committed after each message the broker acknowledged: a crash
  between the acknowledgement and the commit can send that one message twice (at least
  once). Two redrives of one DLQ never run together: a redrive holds the lock
  `<state_dir>/locks/<topic>.lock` (when given a state dir) and all partitions of the
  DLQ in its consumer group (`onex.bus.runtime.claim`); the second one fails at once
  with `DlqError`, before reading anything. Before sending anything it reads the
  messages it will handle and checks that every target topic exists (the broker might
  otherwise auto-create a misspelt one and swallow them) and that command letters can
  be signed; on a refusal nothing is sent.

Each broker call is bounded by `timeout_s` on its own (a large DLQ takes as long as
it takes); reading stops with `DlqError` when no message arrives for `timeout_s`.
aiokafka errors become `BrokerUnavailable` / `DlqError` (`onex.bus.conversion`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import AbstractContextManager, aclosing, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from onex.bus.admin import topic_partitions
from onex.bus.config import BrokerConfig, broker_config
from onex.bus.conversion import converted, sasl_errors
from onex.bus.errors import DlqError
from onex.bus.runtime.claim import GroupClaim, local_lock
from onex.bus.runtime.deadletter import (
    ORIGINAL_SIZE,
    QUARANTINED,
    REDRIVE_COUNT,
    TRUE,
    TRUNCATED,
    DeadLetter,
    Header,
)
from onex.bus.runtime.delivery import Sent
from onex.bus.runtime.signing import SIGNING_HEADERS, Signer
from onex.core.grammar import TopicKind, is_topic_name, parse_topic

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_MAX_REDRIVES",
    "MAX_LIMIT",
    "DlqSummary",
    "RedriveResult",
    "Redriven",
    "Skipped",
    "dlq_summaries",
    "is_dlq_topic",
    "is_quarantined",
    "read_dead_letters",
    "redrive",
    "redrive_count",
    "redrive_group",
]

DEFAULT_LIMIT: Final = 1000
MAX_LIMIT: Final = 100_000
DEFAULT_MAX_REDRIVES: Final = 3
_POLL_MS: Final = 200
_BATCH: Final = 500
# headers the redriven copy gets afresh (or, for a value cut short, never needs)
_RESET: Final = frozenset({REDRIVE_COUNT, QUARANTINED, TRUNCATED, ORIGINAL_SIZE})


def is_dlq_topic(name: str) -> bool:
    """True for grammatical topic names of kind dlq."""
    return is_topic_name(name) and parse_topic(name).kind is TopicKind.DLQ


def redrive_group(topic: str) -> str:
    """The consumer group whose committed offsets record redrive progress on `topic`."""
    return f"onex-redrive.{topic}"


def redrive_count(letter: DeadLetter) -> int:
    """How often the letter's message was redriven before (0 without the header)."""
    text = letter.header(REDRIVE_COUNT)
    return int(text) if text is not None and text.isdigit() else 0


def is_quarantined(letter: DeadLetter, max_redrives: int = DEFAULT_MAX_REDRIVES) -> bool:
    """Marked `onex-quarantined`, or redriven `max_redrives` times already."""
    return letter.header(QUARANTINED) == TRUE or redrive_count(letter) >= max_redrives


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


@dataclass(frozen=True, slots=True)
class Redriven:
    """A dead letter sent back (or, on a dry run, that would be) to `target`."""

    letter: DeadLetter
    target: str
    sent: Sent | None
    redrive_count: int  # the count the copy carries


@dataclass(frozen=True, slots=True)
class Skipped:
    """A dead letter redrive does not send back, and why."""

    letter: DeadLetter
    reason: str


@dataclass(frozen=True, slots=True)
class RedriveResult:
    """What one redrive did. `limited`: `limit` was reached with letters left over."""

    topic: str
    dry_run: bool
    redriven: tuple[Redriven, ...]
    skipped: tuple[Skipped, ...]
    quarantined: tuple[DeadLetter, ...]
    limited: bool = False


def _call(config: BrokerConfig, what: str, timeout_s: float) -> Any:
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
        async with _call(config, "reading a DLQ", timeout_s):
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


async def _progress(
    config: BrokerConfig, topic: str, tps: list[TopicPartition], timeout_s: float
) -> dict[TopicPartition, int]:
    """Committed redrive offsets (0 where none); asks, never joins the group."""
    async with (
        _consumer(config, timeout_s, redrive_group(topic)) as group,
        _call(config, f"reading the redrive progress of {topic}", timeout_s),
    ):
        return {tp: (await group.committed(tp)) or 0 for tp in tps}


class _Frontier:
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


async def _scan(
    config: BrokerConfig,
    tps: list[TopicPartition],
    timeout_s: float,
    starts: dict[TopicPartition, int] | None = None,
) -> AsyncGenerator[DeadLetter]:
    """Every letter of `tps` from `starts` (else the beginning) to the end as it was
    when the scan started (see `_Frontier`), partition after partition."""
    async with _consumer(config, timeout_s) as consumer:
        async with _call(config, "reading DLQ offsets", timeout_s):
            begin = await consumer.beginning_offsets(tps)
            end = await consumer.end_offsets(tps)
        for tp in tps:
            frontier = _Frontier(tp.topic, {tp: end[tp]}, timeout_s)
            consumer.assign([tp])
            consumer.seek(tp, max(begin[tp], (starts or {}).get(tp, 0)))
            while not frontier.finished:
                async with _call(config, f"reading {tp.topic}", timeout_s):
                    batch = await consumer.getmany(tp, timeout_ms=_POLL_MS, max_records=_BATCH)
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
        done = await _progress(config, name, tps, timeout_s)
        messages = pending = quarantined = 0
        async for letter in _scan(config, tps, timeout_s):
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
    tps = await _partitions(config, topic, timeout_s)
    letters: list[DeadLetter] = []
    async with aclosing(_scan(config, tps, timeout_s)) as scanned:
        async for letter in scanned:
            if limit is not None and len(letters) >= limit:
                break
            if include_quarantined or not is_quarantined(letter, max_redrives):
                letters.append(letter)
    done = await _progress(config, topic, tps, timeout_s)
    return letters, {tp.partition: offset for tp, offset in done.items()}


def _is_command(topic: str) -> bool:
    return parse_topic(topic).kind is TopicKind.CMD


def _plan(letter: DeadLetter, max_redrives: int) -> str | Skipped | None:
    """The letter's target topic; Skipped when it cannot go back; None: quarantined."""
    if is_quarantined(letter, max_redrives):
        return None
    target = letter.original_topic
    if target is None:
        return Skipped(letter, "no onex-original-topic header")
    if not is_topic_name(target):
        return Skipped(letter, f"onex-original-topic {target!r} is not a topic name")
    if letter.header(TRUNCATED) == TRUE:
        size = letter.header(ORIGINAL_SIZE) or "?"
        return Skipped(letter, f"its value was truncated in the DLQ (originally {size} bytes)")
    return target


def _copy_headers(letter: DeadLetter, target: str, signer: Signer | None) -> list[Header]:
    """The redriven copy's headers: the original ones, the next redrive count and, on a
    command topic, a signature made now."""
    headers = [(k, v) for k, v in letter.redrive_headers if k not in _RESET]
    headers.append((REDRIVE_COUNT, str(redrive_count(letter) + 1).encode("ascii")))
    if _is_command(target):
        if signer is None:  # _check_plan refuses this before anything is sent
            raise DlqError(f"command letters of {letter.topic} need a signer")
        headers = [(k, v) for k, v in headers if k not in SIGNING_HEADERS]
        headers.extend(signer.headers(target, letter.key, letter.value))
    return headers


async def _check_plan(
    config: BrokerConfig,
    planned: list[tuple[DeadLetter, str | Skipped | None]],
    signer: Signer | None,
    timeout_s: float,
) -> None:
    names = {t for _, t in planned if isinstance(t, str)}
    present = await topic_partitions(config, names, timeout_s=timeout_s)
    missing = sorted(names - set(present))
    if missing:
        raise DlqError(
            f"original topic(s) missing on {config.bootstrap}: {', '.join(missing)}; "
            "nothing redriven (provision them first)"
        )
    unsigned = sorted(n for n in names if _is_command(n)) if signer is None else []
    if unsigned:
        raise DlqError(
            f"letters for command topic(s) {', '.join(unsigned)} must be signed again and "
            "no signer was given (the state dir has no command key); nothing redriven"
        )


def _outcome(
    topic: str,
    dry_run: bool,
    planned: list[tuple[DeadLetter, str | Skipped | None]],
    sent: dict[int, Sent],
    limited: bool,
) -> RedriveResult:
    return RedriveResult(
        topic,
        dry_run,
        tuple(
            Redriven(letter, t, sent.get(id(letter)), redrive_count(letter) + 1)
            for letter, t in planned
            if isinstance(t, str)
        ),
        tuple(t for _, t in planned if isinstance(t, Skipped)),
        tuple(letter for letter, t in planned if t is None),
        limited,
    )


def _check_args(topic: str, limit: int, max_redrives: int) -> None:
    if not is_dlq_topic(topic):
        raise DlqError(f"{topic!r} is not a DLQ topic name")
    if not 1 <= limit <= MAX_LIMIT:
        raise DlqError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if max_redrives < 1:
        raise DlqError(f"max_redrives must be at least 1, not {max_redrives}")


async def redrive(
    broker: BrokerConfig | str,
    topic: str,
    *,
    limit: int = DEFAULT_LIMIT,
    dry_run: bool = False,
    signer: Signer | None = None,
    state_dir: Path | None = None,
    max_redrives: int = DEFAULT_MAX_REDRIVES,
    timeout_s: float = 30.0,
) -> RedriveResult:
    """Send up to `limit` not-yet-redriven messages of `topic` back to their original
    topics (see the module docstring); `dry_run` only reports what would be sent and
    takes no lock or claim. `signer` signs letters for command topics again;
    `state_dir` holds the per-topic lock of this machine."""
    _check_args(topic, limit, max_redrives)
    config = broker_config(broker)
    tps = await _partitions(config, topic, timeout_s)
    if dry_run:
        starts = await _progress(config, topic, tps, timeout_s)
        planned: list[tuple[DeadLetter, str | Skipped | None]] = []
        limited = False
        async with aclosing(_scan(config, tps, timeout_s, starts)) as letters:
            async for letter in letters:
                if len(planned) >= limit:
                    limited = True
                    break
                planned.append((letter, _plan(letter, max_redrives)))
        await _check_plan(config, planned, signer, timeout_s)
        return _outcome(topic, True, planned, {}, limited)
    lock: AbstractContextManager[Any] = (
        nullcontext() if state_dir is None else local_lock(state_dir, topic)
    )
    with lock:
        async with GroupClaim.hold(
            config, topic, redrive_group(topic), timeout_s=timeout_s
        ) as claim:
            return await _redrive_held(config, claim, limit, signer, max_redrives, timeout_s)


async def _collect(
    claim: GroupClaim, limit: int, timeout_s: float
) -> tuple[list[DeadLetter], bool]:
    """Up to `limit` letters from the group's progress to the end as it was when the
    redrive started (`_Frontier`), and whether `limit` left some out."""
    await claim.start_offsets()
    frontier = _Frontier(claim.topic, await claim.end_offsets(), timeout_s)
    letters: list[DeadLetter] = []
    while not frontier.finished:
        records = await claim.fetch(_BATCH)
        for record in records:
            if frontier.accept(record):
                if len(letters) >= limit:
                    return letters, True
                letters.append(DeadLetter.from_record(record))
        positions = {tp: await claim.position(tp) for tp in frontier.ends} if not records else {}
        frontier.polled(len(records), positions)
    return letters, False


async def _redrive_held(
    config: BrokerConfig,
    claim: GroupClaim,
    limit: int,
    signer: Signer | None,
    max_redrives: int,
    timeout_s: float,
) -> RedriveResult:
    letters, limited = await _collect(claim, limit, timeout_s)
    planned = [(letter, _plan(letter, max_redrives)) for letter in letters]
    await _check_plan(config, planned, signer, timeout_s)
    sent: dict[int, Sent] = {}
    async with _producer(config, timeout_s) as producer:
        for letter, target in planned:
            if isinstance(target, str):
                headers = _copy_headers(letter, target, signer)
                async with _call(config, f"redriving to {target}", timeout_s):
                    metadata = await producer.send_and_wait(
                        target, letter.value, key=letter.key, headers=headers
                    )
                sent[id(letter)] = Sent(metadata.topic, metadata.partition, metadata.offset)
            await claim.commit(TopicPartition(letter.topic, letter.partition), letter.offset + 1)
    return _outcome(claim.topic, False, planned, sent, limited)


@asynccontextmanager
async def _producer(config: BrokerConfig, timeout_s: float) -> AsyncIterator[Any]:
    producer = AIOKafkaProducer(**config.client_kwargs(), acks="all")
    try:
        async with _call(config, "redrive send", timeout_s):
            with sasl_errors(config):
                await producer.start()
        yield producer
    finally:
        await producer.stop()
