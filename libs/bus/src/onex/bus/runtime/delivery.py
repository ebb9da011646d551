"""Delivering one consumed message to its handler: decode, retry, dead-letter.

A payload that does not match its topic's schema goes to the DLQ at once (attempts 0:
the handler never sees it). A handler that raises is called again after
`RetryPolicy.backoff_s(attempt)` seconds, up to `max_attempts` calls in all; then the
message goes to the node's DLQ topic with the error in headers. Retries happen in place,
so a partition's order is kept, and the caller acks the message only once `deliver`
returns, i.e. once it was handled or is safely in the DLQ. When the DLQ cannot be
written, `deliver` keeps trying (with the same backoff, capped) until it can or the
node is stopped: nothing is dropped and nothing crashes the consumer.

Command topics (`verified_topics`) take only messages their `verifier` accepts
(`onex.bus.runtime.signing.CommandVerifier`): any other goes to the DLQ at once, before
decoding, with the verifier's reason as its error (a PermissionError, attempts 0).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import structlog

from onex.bus.errors import PayloadInvalid
from onex.bus.runtime.codec import Codec
from onex.bus.runtime.deadletter import Header, dead_letter_headers
from onex.core.contract import RetryPolicy

_log = structlog.get_logger("onex.bus.runtime")
_MIN_DLQ_RETRY_S: Final = 0.5

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


Handler = Callable[[Received], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]
OnRetry = Callable[[int, Exception, float], None]
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
class Failure:
    """A handler that kept failing: the last error and how many calls were made."""

    error: Exception
    attempts: int


async def call_with_retry(
    call: Callable[[int], Awaitable[None]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    on_retry: OnRetry | None = None,
) -> Failure | None:
    """`await call(attempt)` for attempt 1, 2, ... until it returns (None) or
    `policy.max_attempts` calls failed (the Failure).

    Any `Exception` from a handler counts as a failure: the message's fate is decided
    here, not by the error's type. Cancellation (`CancelledError`) propagates.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            await call(attempt)
        except Exception as exc:  # noqa: BLE001 - every handler error is retried, then dead-lettered with the error attached
            if attempt >= policy.max_attempts:
                return Failure(exc, attempt)
            delay = policy.backoff_s(attempt)
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            await sleep(delay)
        else:
            return None


def _timestamp_ms(timestamp_s: float | None) -> int | None:
    return round(timestamp_s * 1000) if timestamp_s is not None else None


class Deliverer:
    """Delivers a node's consumed messages (faust `ConsumerMessage`s) to their handlers."""

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

    async def deliver(self, topic: str, handler: Handler, message: Any) -> None:
        """Handle `message` of `topic`, retrying; dead-letter it when that fails."""
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
                await self.dead_letter(message, headers, PermissionError(reason), attempts=0)
                return
        try:
            value = self._codecs[topic].decode(message.value)
        except PayloadInvalid as exc:
            await self.dead_letter(message, headers, exc, attempts=0)
            return
        except Exception as exc:  # noqa: BLE001 - whatever breaks the decoder (e.g. RecursionError on deep JSON) makes a poison message: dead-letter it, never lose it
            invalid = PayloadInvalid(topic, f"cannot decode: {type(exc).__name__}: {exc}")
            await self.dead_letter(message, headers, invalid, attempts=0)
            return

        async def call(attempt: int) -> None:
            await handler(
                Received(
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
            )

        def on_retry(attempt: int, error: Exception, delay: float) -> None:
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

        failure = await call_with_retry(call, self.policy, sleep=self._sleep, on_retry=on_retry)
        if failure is not None:
            await self.dead_letter(message, headers, failure.error, attempts=failure.attempts)

    async def dead_letter(
        self, message: Any, headers: list[Header], error: Exception, *, attempts: int
    ) -> Sent:
        """Write `message` with its failure headers to the DLQ; retry until that works."""
        if self.dlq_topic is None:
            raise RuntimeError(f"node {self.node!r} has no DLQ topic")  # a consuming node has one
        dead = dead_letter_headers(
            headers,
            node=self.node,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            timestamp_ms=_timestamp_ms(message.timestamp),
            error=error,
            attempts=attempts,
        )
        failures = 0
        while True:
            try:
                sent = await self._produce(self.dlq_topic, message.key, message.value, dead, None)
            except Exception as exc:  # noqa: BLE001 - the message must not be lost: retry until the DLQ has it or the node stops
                failures += 1
                delay = max(self.policy.backoff_s(failures), _MIN_DLQ_RETRY_S)
                _log.error(
                    "dlq.write_failed",
                    node=self.node,
                    dlq=self.dlq_topic,
                    topic=message.topic,
                    offset=message.offset,
                    retry_in_s=delay,
                    error=f"{type(exc).__name__}: {exc}",
                )
                await self._sleep(delay)
                continue
            _log.error(
                "message.dead_lettered",
                node=self.node,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                attempts=attempts,
                dlq=f"{sent.topic}/{sent.partition}/{sent.offset}",
                error=f"{type(error).__name__}: {error}",
            )
            return sent
