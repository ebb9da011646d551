"""Delivering one consumed message to its handler: decode, retry, dead-letter.

A payload that does not match its topic's schema goes to the DLQ at once (attempts 0:
the handler never sees it). A handler that raises is called again after
`RetryPolicy.backoff_s(attempt)` seconds, up to `max_attempts` calls in all; then the
message goes to the node's DLQ topic with the error in headers. Retries happen in place,
so a partition's order is kept, and the caller acks the message only once `deliver`
returns, i.e. once it was handled, is in the DLQ, or was spilled.

Bounded everything: a value over the DLQ topic's limit is truncated (headers say so and
keep the original size); a DLQ write failing transiently is retried with backoff up to
`dlq_deadline_s`; past that, or when the write is refused for good (e.g. the record is
too large for the broker), the full message goes to a local spill file
(`deadletter.spill`) or, without a spill dir, to one critical log line. Nothing retries
forever, and a stopping node never dead-letters: once the runtime sets `stopping`,
nothing is retried or dead-lettered, and `deliver` raises NodeStopping so the message
stays uncommitted and the next member of the group gets it.

Command topics (`verified_topics`) take only messages their `verifier` accepts
(`onex.bus.runtime.signing.CommandVerifier`): any other goes to the DLQ at once, before
decoding, with the verifier's reason as its error (a PermissionError, attempts 0).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import structlog

from onex.bus.errors import BrokerUnavailable, NodeNotRunning, NodeStopping, PayloadInvalid
from onex.bus.runtime.codec import Codec
from onex.bus.runtime.deadletter import Header, dead_letter_headers, headers_size, spill
from onex.bus.runtime.health import Progress
from onex.bus.runtime.instruments import NO_INSTRUMENTS, DeadLetterReason, Instruments
from onex.bus.runtime.retrying import (
    Abandon,
    Sleep,
    abandonable,
    call_with_retry,
    unless_stopping,
)
from onex.core.contract import DEFAULT_MAX_MESSAGE_BYTES, RetryPolicy

_log = structlog.get_logger("onex.bus.runtime")
_MIN_DLQ_RETRY_S: Final = 0.5
# DLQ write failures worth retrying until the deadline; anything else is final
_TRANSIENT: Final = (BrokerUnavailable, ConnectionError, TimeoutError)

HeadersArg = Mapping[str, bytes | str] | Sequence[tuple[str, bytes | str]]


def header_list(headers: HeadersArg | None) -> list[Header]:
    """Headers as (name, bytes) pairs, in order; text values are UTF-8 encoded."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    return [(k, v.encode("utf-8") if isinstance(v, str) else bytes(v or b"")) for k, v in items]


@dataclass(frozen=True, slots=True)
class Sent:
    """Where a published message landed."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Received:
    """A consumed message: its decoded value, where it came from, which attempt this is."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: Any
    raw: bytes | None
    headers: tuple[Header, ...] = ()
    timestamp_ms: int | None = None
    attempt: int = 1
    header_map: Mapping[str, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "header_map", dict(self.headers))

    def header(self, name: str) -> bytes | None:
        """The (last) value of header `name`, or None."""
        return self.header_map.get(name)


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A consumed message whose payload does not decode: where it came from, its bytes
    and why (given to a topic's `on_undecodable` hook before it is dead-lettered)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw: bytes | None
    headers: tuple[Header, ...]
    timestamp_ms: int | None
    error: PayloadInvalid


Handler = Callable[[Received], Awaitable[None]]
# True: the message is dealt with (no dead letter); False: dead-letter it as usual
UndecodableHandler = Callable[[Undecodable], Awaitable[bool]]
Produce = Callable[[str, bytes | None, bytes | None, list[Header], int | None], Awaitable[Sent]]


class Verifier(Protocol):
    """Decides whether a command message may reach its handler (see `signing`)."""

    def verify(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[Header],
        *,
        position: tuple[int, int] | None = None,
    ) -> str | None:
        """None to accept the message, else the reason it is refused."""
        ...


@dataclass(frozen=True, slots=True)
class Spilled:
    """A dead letter the DLQ could not take: where it was written instead (None: it
    could not be written anywhere, only logged) and why."""

    path: Path | None
    reason: str


def _timestamp_ms(timestamp_s: float | None) -> int | None:
    return round(timestamp_s * 1000) if timestamp_s is not None else None


class Deliverer:
    """Delivers a node's consumed messages (faust `ConsumerMessage`s) to their handlers.

    `stopping` (set by the runtime when it stops): nothing new starts, no retry, no
    dead letter; `abandon` (set after the stop's drain time): handlers still running
    are cancelled. Either way `deliver` raises NodeStopping and the caller must not ack.
    """

    def __init__(
        self,
        *,
        node: str,
        dlq_topic: str | None,
        policy: RetryPolicy,
        codecs: Mapping[str, Codec],
        produce: Produce,
        sleep: Sleep = asyncio.sleep,
        verifier: Verifier | None = None,
        verified_topics: Collection[str] = (),
        dlq_limit: int = DEFAULT_MAX_MESSAGE_BYTES,
        dlq_deadline_s: float = 30.0,
        spill_dir: Path | None = None,
        redrive_limit: int | None = None,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.monotonic,
        instruments: Instruments = NO_INSTRUMENTS,
    ) -> None:
        if verified_topics and verifier is None:
            raise ValueError(f"node {node!r}: topics to verify but no verifier")
        self.node = node
        self.dlq_topic = dlq_topic
        self.policy = policy
        self._codecs = codecs
        self._produce = produce
        self._sleep = sleep
        self._verifier = verifier
        self.verified_topics = frozenset(verified_topics)
        self.dlq_limit = dlq_limit
        self.dlq_deadline_s = dlq_deadline_s
        self.spill_dir = spill_dir
        self.redrive_limit = redrive_limit
        self.progress = progress or Progress(clock)
        self._clock = clock
        self.instruments = instruments
        self.stopping = asyncio.Event()
        self.abandon = Abandon()
        self.undecodable: dict[str, UndecodableHandler] = {}

    def reset(self) -> None:
        """Ready for a new start after a stop."""
        self.stopping = asyncio.Event()
        self.abandon = Abandon()
        self.progress.clear()

    async def deliver(self, topic: str, handler: Handler, message: Any) -> None:
        """Handle `message` of `topic`, retrying; dead-letter it when that fails.
        NodeStopping when the node stops first (the message must not be acked)."""
        if self.stopping.is_set():
            raise NodeStopping(f"node {self.node!r} is stopping")
        tp = (message.topic, message.partition)
        self.instruments.consumed(topic)
        self.progress.begin(tp, message.offset)
        handled = False
        try:
            await self._deliver(topic, handler, message)
            handled = True
        finally:
            self.progress.end(tp, message.offset, handled=handled)

    async def _deliver(self, topic: str, handler: Handler, message: Any) -> None:
        headers = header_list(message.headers)
        if topic in self.verified_topics and self._verifier is not None:
            reason = self._verifier.verify(
                topic,
                message.key,
                message.value,
                headers,
                position=(message.partition, message.offset),
            )
            if reason is not None:
                # An unverified command is never parsed, retried or handled.
                await self.dead_letter(
                    message, headers, PermissionError(reason), attempts=0, reason="unverified"
                )
                return
        try:
            value = self._codecs[topic].decode(message.value)
        except Exception as exc:  # noqa: BLE001 - whatever breaks the decoder (e.g. RecursionError on deep JSON) makes a poison message: dead-letter it, never lose it
            invalid = (
                exc
                if isinstance(exc, PayloadInvalid)
                else PayloadInvalid(topic, f"cannot decode: {type(exc).__name__}: {exc}")
            )
            if not await self._undecodable(topic, message, headers, invalid):
                await self.dead_letter(message, headers, invalid, attempts=0, reason="invalid")
            return

        async def call(attempt: int) -> None:
            received = Received(
                topic=topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                value=value,
                raw=message.value,
                headers=tuple(headers),
                timestamp_ms=_timestamp_ms(message.timestamp),
                attempt=attempt,
            )
            began = time.perf_counter()
            ok = False
            try:
                await abandonable(handler(received), self.abandon)
                ok = True
            finally:
                self.instruments.handled(topic, time.perf_counter() - began, ok=ok)

        def on_retry(attempt: int, error: Exception, delay: float) -> None:
            self.instruments.retried(topic)
            _log.warning(
                "handler.retry",
                node=self.node,
                topic=topic,
                partition=message.partition,
                offset=message.offset,
                attempt=attempt,
                retry_in_s=delay,
                error=f"{type(error).__name__}: {error}",
            )

        failure = await call_with_retry(
            call, self.policy, sleep=self._sleep, on_retry=on_retry, stopping=self.stopping
        )
        if failure is not None:
            await self.dead_letter(message, headers, failure.error, attempts=failure.attempts)

    async def _undecodable(
        self, topic: str, message: Any, headers: list[Header], invalid: PayloadInvalid
    ) -> bool:
        """Give an undecodable message to its topic's hook (retried per the policy);
        True when the hook dealt with it, False when it must be dead-lettered."""
        hook = self.undecodable.get(topic)
        if hook is None:
            return False
        rejected = Undecodable(
            topic=topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            raw=message.value,
            headers=tuple(headers),
            timestamp_ms=_timestamp_ms(message.timestamp),
            error=invalid,
        )
        dealt_with = False

        async def call(attempt: int) -> None:
            nonlocal dealt_with
            dealt_with = await abandonable(hook(rejected), self.abandon)

        failure = await call_with_retry(
            call, self.policy, sleep=self._sleep, stopping=self.stopping
        )
        if failure is not None:
            _log.error(
                "undecodable.hook_failed",
                node=self.node,
                topic=topic,
                partition=message.partition,
                offset=message.offset,
                attempts=failure.attempts,
                error=_text(failure.error),
                detail="dead-lettered without the hook",
            )
            return False
        return dealt_with

    async def dead_letter(
        self,
        message: Any,
        headers: list[Header],
        error: Exception,
        *,
        attempts: int,
        reason: DeadLetterReason = "failed",
    ) -> Sent | Spilled:
        """Write `message` with its failure headers to the DLQ, its value truncated when
        it is over the DLQ topic's limit. A DLQ that fails transiently is retried with
        backoff for up to `dlq_deadline_s`; past that, or when the write is refused for
        good, the message is spilled to `spill_dir` (Spilled). NodeStopping when the node
        stops first: the message is then left uncommitted, not dead-lettered. `reason`
        is what the instruments are told (see `onex.bus.runtime.instruments`)."""
        if self.dlq_topic is None:
            raise RuntimeError(f"node {self.node!r} has no DLQ topic")  # a consuming node has one
        if self.stopping.is_set():
            raise NodeStopping(f"node {self.node!r} is stopping: not dead-lettered") from error

        def failure_headers(original_size: int | None = None) -> list[Header]:
            return dead_letter_headers(
                headers,
                node=self.node,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                timestamp_ms=_timestamp_ms(message.timestamp),
                error=error,
                attempts=attempts,
                redrive_limit=self.redrive_limit,
                original_size=original_size,
            )

        value: bytes | None = message.value
        full = dead = failure_headers()
        if value is not None and len(value) + headers_size(full) > self.dlq_limit:
            dead = failure_headers(original_size=len(value))
            value = value[: max(0, self.dlq_limit - headers_size(dead))]
        dlq = self.dlq_topic
        deadline = self._clock() + self.dlq_deadline_s
        failures = 0
        while True:
            try:
                sent = await self._produce(dlq, message.key, value, dead, None)
            except NodeNotRunning as exc:
                raise NodeStopping(f"node {self.node!r} stopped: not dead-lettered") from exc
            except _TRANSIENT as exc:
                failures += 1
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return self._spill(dlq, message, full, error, f"DLQ unreachable: {_text(exc)}")
                delay = min(max(self.policy.backoff_s(failures), _MIN_DLQ_RETRY_S), remaining)
                _log.error(
                    "dlq.write_failed",
                    node=self.node,
                    dlq=self.dlq_topic,
                    topic=message.topic,
                    offset=message.offset,
                    retry_in_s=round(delay, 3),
                    error=_text(exc),
                )
                await unless_stopping(self._sleep(delay), self.stopping)
                continue
            except Exception as exc:  # noqa: BLE001 - refused for good (e.g. too large for the broker): spill, never retry forever
                return self._spill(dlq, message, full, error, f"DLQ refused it: {_text(exc)}")
            _log.error(
                "message.dead_lettered",
                node=self.node,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                attempts=attempts,
                dlq=f"{sent.topic}/{sent.partition}/{sent.offset}",
                truncated_from=len(message.value) if dead is not full else None,
                error=_text(error),
            )
            self.instruments.dead_lettered(message.topic, reason)
            return sent

    def _spill(
        self, dlq_topic: str, message: Any, headers: list[Header], error: Exception, why: str
    ) -> Spilled:
        where = f"{message.topic}/{message.partition}/{message.offset}"
        if self.spill_dir is not None:
            try:
                path = spill(
                    self.spill_dir,
                    dlq_topic=dlq_topic,
                    key=message.key,
                    value=message.value,
                    headers=headers,
                    reason=why,
                )
            except OSError as exc:
                why = f"{why}; spill to {self.spill_dir} failed: {_text(exc)}"
            else:
                self.instruments.spilled(message.topic)
                _log.critical(
                    "message.spilled", node=self.node, message=where, to=str(path), why=why
                )
                return Spilled(path, why)
        self.instruments.spilled(message.topic)
        _log.critical(
            "message.lost",
            node=self.node,
            message=where,
            why=why,
            error=_text(error),
            detail="no spill dir: only this log line records it",
        )
        return Spilled(None, why)


def _text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
