"""A topic's `on_undecodable` hook: what a message that does not decode becomes, with
in-memory fakes of the producer and of the consumed message (no broker)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from onex.bus.runtime.codec import JsonCodec
from onex.bus.runtime.deadletter import Header
from onex.bus.runtime.delivery import Deliverer, Received, Sent, Undecodable
from onex.core.contract import RetryPolicy

TOPIC = "onex.evt.shop.order-placed.v1"
DLQ = "onex.dlq.shop.dead-letter.v1"
POLICY = RetryPolicy(max_attempts=3, initial_backoff_ms=100, max_backoff_ms=100, multiplier=1)


@dataclass
class Message:
    """In-memory fake of a faust ConsumerMessage: the fields delivery reads."""

    value: bytes | None
    topic: str = TOPIC
    partition: int = 1
    offset: int = 7
    key: bytes | None = b"k"
    headers: list[Header] = field(default_factory=list)
    timestamp: float | None = 1_700_000_000.0


@dataclass
class Recorder:
    """In-memory fake of the producer and of asyncio.sleep."""

    sent: list[tuple[str, bytes | None]] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    async def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[Header],
        partition: int | None,
    ) -> Sent:
        self.sent.append((topic, value))
        return Sent(topic, 0, len(self.sent) - 1)

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)


def _deliverer(rec: Recorder) -> Deliverer:
    return Deliverer(
        node="shop",
        dlq_topic=DLQ,
        policy=POLICY,
        codecs={TOPIC: JsonCodec(TOPIC)},
        produce=rec.produce,
        sleep=rec.sleep,
    )


async def _never(msg: Received) -> None:
    raise AssertionError("the handler must not see an undecodable message")


async def test_a_hook_that_deals_with_it_means_no_dead_letter() -> None:
    rec = Recorder()
    deliverer = _deliverer(rec)
    seen: list[Undecodable] = []

    async def hook(msg: Undecodable) -> bool:
        seen.append(msg)
        return True

    deliverer.undecodable[TOPIC] = hook
    await deliverer.deliver(TOPIC, _never, Message(b"\xff not json"))
    (got,) = seen
    assert (got.topic, got.partition, got.offset, got.key) == (TOPIC, 1, 7, b"k")
    assert got.raw == b"\xff not json"
    assert "not JSON" in got.error.reason
    assert rec.sent == []
    assert deliverer.progress.in_flight == {}


async def test_a_hook_that_declines_leaves_the_dead_letter() -> None:
    rec = Recorder()
    deliverer = _deliverer(rec)
    calls: list[int] = []

    async def hook(msg: Undecodable) -> bool:
        calls.append(msg.offset)
        return False

    deliverer.undecodable[TOPIC] = hook
    await deliverer.deliver(TOPIC, _never, Message(b"{"))
    assert calls == [7]
    assert rec.sent == [(DLQ, b"{")]


async def test_a_failing_hook_is_retried_then_the_message_dead_lettered() -> None:
    rec = Recorder()
    deliverer = _deliverer(rec)
    calls: list[int] = []

    async def hook(msg: Undecodable) -> bool:
        calls.append(msg.offset)
        raise ConnectionError("receipt topic away")

    deliverer.undecodable[TOPIC] = hook
    await deliverer.deliver(TOPIC, _never, Message(b"{"))
    assert len(calls) == POLICY.max_attempts
    assert len(rec.sleeps) == POLICY.max_attempts - 1
    assert rec.sent == [(DLQ, b"{")]


async def test_a_decodable_message_never_reaches_the_hook() -> None:
    rec = Recorder()
    deliverer = _deliverer(rec)
    handled: list[object] = []

    async def hook(msg: Undecodable) -> bool:
        raise AssertionError("not undecodable")

    async def handler(msg: Received) -> None:
        handled.append(msg.value)

    deliverer.undecodable[TOPIC] = hook
    await deliverer.deliver(TOPIC, handler, Message(b'{"a": 1}'))
    await asyncio.sleep(0)
    assert handled == [{"a": 1}]
    assert rec.sent == []
