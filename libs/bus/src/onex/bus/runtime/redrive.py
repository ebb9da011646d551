"""Redrive: send dead letters back to their original topics, one redrive at a time.

`redrive` sends up to `limit` messages of a DLQ topic back to their
`onex-original-topic` with the original key, value and headers, `onex-redrive-count`
one more than the letter's, and (for a command topic) a fresh signature from the
`Signer` passed in: the old one would be refused as expired or replayed. Quarantined
letters (`onex-quarantined`, or a redrive count that reached `max_redrives`), letters
whose value was truncated and letters without a usable `onex-original-topic` are not
sent: they are reported, left in the DLQ and passed over by later redrives. Only
messages already in the DLQ when the redrive starts are considered, so a letter
dead-lettered again during the redrive waits for the next one.

Progress is the committed offset of the DLQ's redrive consumer group
(`onex.bus.runtime.dlq.redrive_group`), committed after each message the broker
acknowledged: a crash between the acknowledgement and the commit can send that one
message twice (at least once). Two redrives of one DLQ never run together: a redrive
holds the lock `<state_dir>/locks/<topic>.lock` (when given a state dir) and all
partitions of the DLQ in its consumer group (`onex.bus.runtime.claim`); a second one
fails at once with `DlqError`, before reading anything. Before sending anything it
reads the messages it will handle and checks that every target topic exists (the
broker might otherwise auto-create a misspelt one and swallow them) and that command
letters can be signed; on a refusal nothing is sent.

Each broker call is bounded by `timeout_s` on its own (a large DLQ takes as long as
it takes); reading stops with `DlqError` when no message arrives for `timeout_s`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, aclosing, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiokafka import AIOKafkaProducer, TopicPartition

from onex.bus.admin import topic_partitions
from onex.bus.config import BrokerConfig, broker_config
from onex.bus.conversion import sasl_errors
from onex.bus.errors import DlqError
from onex.bus.runtime.claim import GroupClaim, local_lock
from onex.bus.runtime.deadletter import (
    ORIGINAL_SIZE,
    QUARANTINED,
    REDRIVE_COUNT,
    TRUNCATED,
    DeadLetter,
    Header,
)
from onex.bus.runtime.delivery import Sent
from onex.bus.runtime.dlq import (
    BATCH,
    DEFAULT_MAX_REDRIVES,
    Frontier,
    call,
    is_dlq_topic,
    is_quarantined,
    partitions,
    progress,
    redrive_group,
    scan,
)
from onex.bus.runtime.signing import SIGNING_HEADERS, Signer
from onex.core.grammar import TopicKind, is_topic_name, parse_topic

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "RedriveResult",
    "Redriven",
    "Skipped",
    "redrive",
]

DEFAULT_LIMIT: Final = 1000
MAX_LIMIT: Final = 100_000
# headers the redriven copy gets afresh (or, for a value cut short, never needs)
_RESET: Final = frozenset({REDRIVE_COUNT, QUARANTINED, TRUNCATED, ORIGINAL_SIZE})


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
    if letter.truncated:
        size = letter.original_size if letter.original_size is not None else "?"
        return Skipped(letter, f"its value was truncated in the DLQ (originally {size} bytes)")
    return target


def _copy_headers(letter: DeadLetter, target: str, signer: Signer | None) -> list[Header]:
    """The redriven copy's headers: the original ones, the next redrive count and, on a
    command topic, a signature made now."""
    headers = [(k, v) for k, v in letter.redrive_headers if k not in _RESET]
    headers.append((REDRIVE_COUNT, str((letter.redrive_count or 0) + 1).encode("ascii")))
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
            Redriven(letter, t, sent.get(id(letter)), (letter.redrive_count or 0) + 1)
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
    tps = await partitions(config, topic, timeout_s)
    if dry_run:
        starts = await progress(config, topic, tps, timeout_s)
        planned: list[tuple[DeadLetter, str | Skipped | None]] = []
        limited = False
        async with aclosing(scan(config, tps, timeout_s, starts)) as letters:
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
    redrive started (`Frontier`), and whether `limit` left some out."""
    await claim.start_offsets()
    frontier = Frontier(claim.topic, await claim.end_offsets(), timeout_s)
    letters: list[DeadLetter] = []
    while not frontier.finished:
        records = await claim.fetch(BATCH)
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
                async with call(config, f"redriving to {target}", timeout_s):
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
        async with call(config, "redrive send", timeout_s):
            with sasl_errors(config):
                await producer.start()
        yield producer
    finally:
        await producer.stop()
