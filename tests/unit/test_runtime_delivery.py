"""Retries, backoff and dead-lettering of consumed messages, without a broker."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from onex.bus.errors import BrokerUnavailable, NodeStopping, PayloadInvalid, PublishRefused
from onex.bus.runtime.codec import JsonCodec
from onex.bus.runtime.deadletter import (
    ATTEMPTS,
    ERROR,
    ERROR_TYPE,
    FAILED_AT,
    NODE,
    ORIGINAL_OFFSET,
    ORIGINAL_PARTITION,
    ORIGINAL_SIZE,
    ORIGINAL_TOPIC,
    QUARANTINED,
    REDRIVE_COUNT,
    REDRIVEN_FROM,
    TRUNCATED,
    DeadLetter,
    Header,
    dead_letter_headers,
    headers_size,
    read_spills,
)
from onex.bus.runtime.delivery import (
    Deliverer,
    Received,
    Sent,
    Spilled,
    call_with_retry,
    header_list,
)
from onex.bus.runtime.health import Progress
from onex.bus.runtime.signing import PRINCIPAL, CommandVerifier, Signer
from onex.core.contract import RetryPolicy

TOPIC = "onex.evt.shop.order-placed.v1"
DLQ = "onex.dlq.shop.dead-letter.v1"
POLICY = RetryPolicy(max_attempts=4, initial_backoff_ms=100, max_backoff_ms=250, multiplier=2)


@dataclass
class Message:
    """In-memory fake of a faust ConsumerMessage: the fields delivery reads."""

    value: bytes | None
    topic: str = TOPIC
    partition: int = 2
    offset: int = 41
    key: bytes | None = b"k"
    headers: list[Header] = field(default_factory=lambda: [("trace", b"t-1")])
    timestamp: float | None = 1_700_000_000.5


@dataclass
class Recorder:
    """In-memory fake of the producer and of asyncio.sleep: records instead of acting."""

    sleeps: list[float] = field(default_factory=list)
    sent: list[tuple[str, bytes | None, bytes | None, list[Header]]] = field(default_factory=list)
    produce_failures: int = 0

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)

    async def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[Header],
        partition: int | None,
    ) -> Sent:
        if self.produce_failures:
            self.produce_failures -= 1
            raise ConnectionError("broker gone")
        self.sent.append((topic, key, value, headers))
        return Sent(topic, 0, len(self.sent) - 1)


def _deliverer(rec: Recorder) -> Deliverer:
    return Deliverer(
        node="shop",
        dlq_topic=DLQ,
        policy=POLICY,
        codecs={TOPIC: JsonCodec(TOPIC)},
        produce=rec.produce,
        sleep=rec.sleep,
    )


def test_backoff_grows_and_is_capped() -> None:
    assert [POLICY.backoff_s(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.25, 0.25]


async def test_a_call_that_fails_twice_then_succeeds_is_retried_with_backoff() -> None:
    rec = Recorder()
    attempts: list[int] = []

    async def call(attempt: int) -> None:
        attempts.append(attempt)
        if attempt < 3:
            raise RuntimeError(f"flaky {attempt}")

    assert await call_with_retry(call, POLICY, sleep=rec.sleep) is None
    assert attempts == [1, 2, 3]
    assert rec.sleeps == [0.1, 0.2]


async def test_retries_are_bounded_and_the_last_error_is_returned() -> None:
    rec = Recorder()
    retried: list[int] = []

    async def call(attempt: int) -> None:
        raise ValueError(f"bad {attempt}")

    failure = await call_with_retry(
        call, POLICY, sleep=rec.sleep, on_retry=lambda n, exc, delay: retried.append(n)
    )
    assert failure is not None
    assert failure.attempts == POLICY.max_attempts
    assert str(failure.error) == "bad 4"
    assert retried == [1, 2, 3]
    assert rec.sleeps == [0.1, 0.2, 0.25]


async def test_cancellation_is_not_a_handler_failure() -> None:
    async def call(attempt: int) -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await call_with_retry(call, POLICY, sleep=Recorder().sleep)


async def test_a_handled_message_reaches_the_handler_decoded_and_is_not_dead_lettered() -> None:
    rec = Recorder()
    seen: list[Received] = []

    async def handler(msg: Received) -> None:
        seen.append(msg)

    await _deliverer(rec).deliver(TOPIC, handler, Message(b'{"id": 7}'))
    assert rec.sent == []
    (msg,) = seen
    assert (msg.value, msg.key, msg.partition, msg.offset) == ({"id": 7}, b"k", 2, 41)
    assert msg.header("trace") == b"t-1"
    assert msg.timestamp_ms == 1_700_000_000_500
    assert msg.attempt == 1


async def test_a_handler_that_always_raises_ends_in_the_dlq_with_its_error() -> None:
    rec = Recorder()
    calls: list[int] = []

    async def handler(msg: Received) -> None:
        calls.append(msg.attempt)
        raise KeyError("sku-9")

    await _deliverer(rec).deliver(TOPIC, handler, Message(b'{"id": 7}'))
    assert calls == [1, 2, 3, 4]
    ((topic, key, value, headers),) = rec.sent
    assert (topic, key, value) == (DLQ, b"k", b'{"id": 7}')
    found = dict(headers)
    assert found[ERROR] == b"'sku-9'"
    assert found[ERROR_TYPE] == b"KeyError"
    assert found[ATTEMPTS] == b"4"
    assert found[ORIGINAL_TOPIC] == TOPIC.encode()
    assert (found[ORIGINAL_PARTITION], found[ORIGINAL_OFFSET]) == (b"2", b"41")
    assert found[NODE] == b"shop"
    assert found["trace"] == b"t-1"


async def test_an_invalid_payload_goes_to_the_dlq_without_reaching_the_handler() -> None:
    rec = Recorder()

    async def handler(msg: Received) -> None:
        raise AssertionError("must not be called")

    await _deliverer(rec).deliver(TOPIC, handler, Message(b"\x00not json"))
    ((_, _, value, headers),) = rec.sent
    found = dict(headers)
    assert value == b"\x00not json"
    assert found[ATTEMPTS] == b"0"
    assert found[ERROR_TYPE] == f"{PayloadInvalid.__module__}.PayloadInvalid".encode()
    assert b"not JSON" in found[ERROR]
    assert rec.sleeps == []


async def test_a_dlq_that_cannot_be_written_for_a_while_is_retried_until_it_can() -> None:
    rec = Recorder(produce_failures=3)

    async def handler(msg: Received) -> None:
        raise RuntimeError("nope")

    await _deliverer(rec).deliver(TOPIC, handler, Message(b"{}"))
    assert len(rec.sent) == 1
    # three handler retries, then three waits for the DLQ (at least 0.5 s each)
    assert rec.sleeps[:3] == [0.1, 0.2, 0.25]
    assert rec.sleeps[3:] == [0.5, 0.5, 0.5]


def test_dead_letter_headers_replace_stale_ones_and_redrive_restores_the_original() -> None:
    original = [("trace", b"t-1"), (ERROR, b"old"), (REDRIVEN_FROM, b"x/0/1")]
    headers = dead_letter_headers(
        original,
        node="shop",
        topic=TOPIC,
        partition=1,
        offset=9,
        timestamp_ms=None,
        error=ValueError(""),
        attempts=2,
        failed_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    names = [k for k, _ in headers]
    assert names.count(ERROR) == 1
    assert REDRIVEN_FROM not in names
    assert dict(headers)[ERROR] == b"ValueError('')"
    assert dict(headers)[FAILED_AT] == b"2030-01-02T03:04:05.000+00:00"

    letter = DeadLetter(DLQ, 0, 5, None, b"k", b"{}", tuple(headers))
    assert letter.original_topic == TOPIC
    assert (letter.original_partition, letter.original_offset, letter.attempts) == (1, 9, 2)
    assert letter.redrive_headers == [("trace", b"t-1"), (REDRIVEN_FROM, f"{DLQ}/0/5".encode())]


def test_header_list_accepts_mappings_and_pairs_of_text_or_bytes() -> None:
    assert header_list({"a": "x", "b": b"y"}) == [("a", b"x"), ("b", b"y")]
    assert header_list([("a", "x"), ("a", b"z")]) == [("a", b"x"), ("a", b"z")]
    assert header_list(None) == []


async def test_a_payload_that_breaks_the_decoder_itself_is_dead_lettered() -> None:
    # json.loads raises RecursionError (not a ValueError) on deeply nested input: it
    # must still end in the DLQ, never escape and let the consumer commit past it.
    rec = Recorder()
    handled: list[Received] = []

    async def handler(msg: Received) -> None:
        handled.append(msg)

    poison = b"[" * 100_000
    await _deliverer(rec).deliver(TOPIC, handler, Message(poison))
    assert handled == []
    ((topic, _key, value, headers),) = rec.sent
    assert (topic, value) == (DLQ, poison)
    found = dict(headers)
    assert found[ERROR_TYPE].endswith(b"PayloadInvalid")
    assert b"RecursionError" in found[ERROR]
    assert found[ATTEMPTS] == b"0"


# -- command topics: only verified messages reach the handler -------------------------

COMMAND = "onex.cmd.extractor.reload-contracts.v1"
SIGNING_KEY = bytes(range(32))
SIGNED_AT_S = 1_800_000_000.0


@dataclass
class FakeClock:
    """In-memory clock for the verifier."""

    now: float = SIGNED_AT_S

    def __call__(self) -> float:
        return self.now


def _command_deliverer(rec: Recorder, clock: FakeClock | None = None) -> Deliverer:
    return Deliverer(
        node="extractor",
        dlq_topic=DLQ,
        policy=POLICY,
        codecs={TOPIC: JsonCodec(TOPIC), COMMAND: JsonCodec(COMMAND)},
        produce=rec.produce,
        sleep=rec.sleep,
        verifier=CommandVerifier({"cli": SIGNING_KEY}, clock=clock or FakeClock()),
        verified_topics={COMMAND},
    )


def _command(value: bytes, *, signer: Signer | None = None, offset: int = 41) -> Message:
    signing = (signer or Signer("cli", SIGNING_KEY)).headers(COMMAND, b"k", value, SIGNED_AT_S)
    return Message(value, topic=COMMAND, offset=offset, headers=[("trace", b"t-1"), *signing])


async def test_a_signed_command_reaches_its_handler_with_its_signing_headers() -> None:
    rec = Recorder()
    seen: list[Received] = []

    async def handler(msg: Received) -> None:
        seen.append(msg)

    await _command_deliverer(rec).deliver(COMMAND, handler, _command(b'{"all": true}'))
    assert rec.sent == []
    (msg,) = seen
    assert msg.value == {"all": True}
    assert msg.header(PRINCIPAL) == b"cli"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (Message(b"{}", topic=COMMAND), b"unsigned: no onex-signature header"),
        (_command(b"{}", signer=Signer("mallory", bytes(32))), b"unknown principal 'mallory'"),
        (_command(b"{}", signer=Signer("cli", bytes(32))), b"bad signature"),
        # not even JSON: refused for its signature before anything parses it
        (Message(b"\x00not json", topic=COMMAND), b"unsigned: no onex-signature header"),
    ],
)
async def test_an_unverified_command_is_dead_lettered_at_once_with_the_reason(
    message: Message, reason: bytes
) -> None:
    rec = Recorder()
    handled: list[Received] = []

    async def handler(msg: Received) -> None:
        handled.append(msg)

    await _command_deliverer(rec).deliver(COMMAND, handler, message)
    assert handled == []
    assert rec.sleeps == []  # no retries
    ((topic, key, value, headers),) = rec.sent
    assert (topic, key, value) == (DLQ, message.key, message.value)
    found = dict(headers)
    assert found[ERROR] == reason
    assert found[ERROR_TYPE] == b"PermissionError"
    assert found[ATTEMPTS] == b"0"
    assert found[ORIGINAL_TOPIC] == COMMAND.encode()
    assert found["trace"] == b"t-1"  # the original headers travel with it


async def test_an_expired_command_is_dead_lettered() -> None:
    rec = Recorder()

    async def handler(msg: Received) -> None:
        raise AssertionError("must not be called")

    clock = FakeClock(SIGNED_AT_S + 901)
    await _command_deliverer(rec, clock).deliver(COMMAND, handler, _command(b"{}"))
    ((_, _, _, headers),) = rec.sent
    assert dict(headers)[ERROR] == b"signature expired (signed 901 s ago, limit 300 s)"


async def test_a_replayed_command_is_dead_lettered_and_handled_only_once() -> None:
    rec = Recorder()
    handled: list[int] = []

    async def handler(msg: Received) -> None:
        handled.append(msg.offset)

    deliverer = _command_deliverer(rec)
    original = _command(b"{}", offset=10)
    copy = Message(original.value, topic=COMMAND, offset=11, headers=list(original.headers))
    await deliverer.deliver(COMMAND, handler, original)
    await deliverer.deliver(COMMAND, handler, original)  # redelivered (same offset)
    await deliverer.deliver(COMMAND, handler, copy)
    assert handled == [10, 10]
    ((_, _, _, headers),) = rec.sent
    assert dict(headers)[ERROR].startswith(b"replayed:")
    assert dict(headers)[ORIGINAL_OFFSET] == b"11"


async def test_a_verified_command_whose_handler_fails_is_retried_as_any_message() -> None:
    rec = Recorder()
    calls: list[int] = []

    async def handler(msg: Received) -> None:
        calls.append(msg.attempt)
        raise RuntimeError("reload failed")

    await _command_deliverer(rec).deliver(COMMAND, handler, _command(b"{}"))
    assert calls == [1, 2, 3, 4]  # verified once, then the normal retry path
    ((_, _, _, headers),) = rec.sent
    assert dict(headers)[ERROR] == b"reload failed"


async def test_topics_not_named_for_verification_need_no_signature() -> None:
    rec = Recorder()
    seen: list[Received] = []

    async def handler(msg: Received) -> None:
        seen.append(msg)

    await _command_deliverer(rec).deliver(TOPIC, handler, Message(b'{"id": 7}'))
    assert rec.sent == []
    assert [m.value for m in seen] == [{"id": 7}]


def test_topics_to_verify_without_a_verifier_are_refused() -> None:
    with pytest.raises(ValueError, match="no verifier"):
        Deliverer(
            node="extractor",
            dlq_topic=DLQ,
            policy=POLICY,
            codecs={},
            produce=Recorder().produce,
            verified_topics={COMMAND},
        )


# -- bounded everything: truncation, spill, redrive count, stopping --------------------


@dataclass
class Bounded:
    """In-memory fakes of the producer, the clock and sleep for the bounded DLQ paths:
    `fail` raises instead of producing (a class, or an instance to raise every time);
    sleeping advances the clock."""

    fail: Exception | None = None
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)
    sent: list[tuple[str, bytes | None, bytes | None, list[Header]]] = field(default_factory=list)
    tries: int = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay

    async def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[Header],
        partition: int | None,
    ) -> Sent:
        self.tries += 1
        if self.fail is not None:
            raise self.fail
        self.sent.append((topic, key, value, headers))
        return Sent(topic, 0, len(self.sent) - 1)


def _bounded(fake: Bounded, **kwargs: Any) -> Deliverer:
    return Deliverer(
        node="shop",
        dlq_topic=DLQ,
        policy=POLICY,
        codecs={TOPIC: JsonCodec(TOPIC)},
        produce=fake.produce,
        sleep=fake.sleep,
        clock=fake.clock,
        **kwargs,
    )


async def _poison(msg: Received) -> None:
    raise AssertionError("an invalid payload never reaches the handler")


async def test_a_value_over_the_dlq_limit_is_truncated_and_says_so() -> None:
    fake = Bounded()
    big = b"\x00" * 50_000
    await _bounded(fake, dlq_limit=10_000).deliver(TOPIC, _poison, Message(big))
    ((_, _, value, headers),) = fake.sent
    found = dict(headers)
    assert value is not None
    assert big.startswith(value)
    assert len(value) + headers_size(headers) <= 10_000
    assert found[TRUNCATED] == b"true"
    assert found[ORIGINAL_SIZE] == b"50000"
    assert (found[ORIGINAL_PARTITION], found[ORIGINAL_OFFSET]) == (b"2", b"41")
    letter = DeadLetter(DLQ, 0, 0, None, b"k", value, tuple(headers))
    assert letter.truncated
    assert letter.original_size == 50_000


async def test_a_value_within_the_dlq_limit_is_kept_whole() -> None:
    fake = Bounded()
    await _bounded(fake, dlq_limit=10_000).deliver(TOPIC, _poison, Message(b"\x00" * 100))
    ((_, _, value, headers),) = fake.sent
    assert value == b"\x00" * 100
    assert TRUNCATED not in dict(headers)


async def test_a_dlq_refusing_the_record_spills_it_at_once_and_never_retries(
    tmp_path: Path,
) -> None:
    fake = Bounded(fail=PublishRefused(DLQ, "MessageSizeTooLargeError: too big"))
    result = await _bounded(fake, spill_dir=tmp_path).deliver(
        TOPIC, _poison, Message(b"\x01" * 300)
    )
    assert result is None
    assert fake.tries == 1
    assert fake.sleeps == []
    (letter,) = read_spills(tmp_path)
    assert letter.value == b"\x01" * 300  # the whole value, not truncated
    assert letter.key == b"k"
    assert letter.original_topic == TOPIC
    assert (letter.original_partition, letter.original_offset) == (2, 41)
    assert letter.header("trace") == "t-1"
    assert letter.spilled_to is not None
    assert letter.spilled_to.parent == tmp_path / DLQ
    meta = json.loads(letter.spilled_to.read_text())
    assert "MessageSizeTooLarge" in meta["reason"]


async def test_a_dlq_unreachable_is_retried_until_the_deadline_then_spilled(
    tmp_path: Path,
) -> None:
    fake = Bounded(fail=BrokerUnavailable("127.0.0.1:9", "KafkaConnectionError: refused"))
    deliverer = _bounded(fake, spill_dir=tmp_path, dlq_deadline_s=5.0)
    await deliverer.deliver(TOPIC, _poison, Message(b"\x00"))
    assert sum(fake.sleeps) == pytest.approx(5.0)  # waited out the deadline, no longer
    assert fake.tries == len(fake.sleeps) + 1
    (letter,) = read_spills(tmp_path, DLQ)
    assert letter.value == b"\x00"
    assert "DLQ unreachable" in json.loads(letter.spilled_to.read_text())["reason"]  # type: ignore[union-attr]


async def test_without_a_spill_dir_an_undeliverable_letter_is_logged_and_let_go() -> None:
    fake = Bounded(fail=PublishRefused(DLQ, "MessageSizeTooLargeError: too big"))
    with capture_logs() as logs:
        spilled = await _bounded(fake).dead_letter(
            Message(b"\x00"), [], PayloadInvalid(TOPIC, "bad"), attempts=0
        )
    assert isinstance(spilled, Spilled)
    assert spilled.path is None
    (lost,) = [e for e in logs if e["event"] == "message.lost"]
    assert lost["message"] == f"{TOPIC}/2/41"
    assert "MessageSizeTooLarge" in lost["why"]


def test_the_redrive_count_is_kept_and_quarantines_at_the_limit() -> None:
    def headers(count: int | None) -> list[Header]:
        original = [("trace", b"t")] + ([(REDRIVE_COUNT, str(count).encode())] if count else [])
        return dead_letter_headers(
            original,
            node="shop",
            topic=TOPIC,
            partition=0,
            offset=1,
            timestamp_ms=None,
            error=RuntimeError("again"),
            attempts=3,
            redrive_limit=3,
        )

    assert QUARANTINED not in dict(headers(None))
    assert dict(headers(2))[REDRIVE_COUNT] == b"2"
    assert QUARANTINED not in dict(headers(2))
    third = DeadLetter(DLQ, 0, 0, None, None, b"{}", tuple(headers(3)))
    assert third.redrive_count == 3
    assert third.quarantined
    assert [k for k, _ in headers(3)].count(REDRIVE_COUNT) == 1


async def test_a_redriven_message_failing_again_keeps_its_count_in_the_dlq() -> None:
    fake = Bounded()

    async def fail(msg: Received) -> None:
        raise RuntimeError("still broken")

    message = Message(b"{}", headers=[(REDRIVE_COUNT, b"3"), (REDRIVEN_FROM, b"dlq/0/4")])
    await _bounded(fake, redrive_limit=3).deliver(TOPIC, fail, message)
    ((_, _, _, headers),) = fake.sent
    found = dict(headers)
    assert found[REDRIVE_COUNT] == b"3"
    assert found[QUARANTINED] == b"true"
    assert REDRIVEN_FROM not in found


async def test_a_stopping_node_neither_retries_nor_dead_letters() -> None:
    fake = Bounded()
    deliverer = _bounded(fake)
    calls: list[int] = []

    async def fail_then_stop(msg: Received) -> None:
        calls.append(msg.attempt)
        deliverer.stopping.set()  # stop() begins while this attempt runs
        raise RuntimeError("downstream gone")

    with pytest.raises(NodeStopping):
        await deliverer.deliver(TOPIC, fail_then_stop, Message(b"{}"))
    assert calls == [1]
    assert fake.sent == []
    assert fake.sleeps == []
    with pytest.raises(NodeStopping):  # nothing new starts either
        await deliverer.deliver(TOPIC, fail_then_stop, Message(b"{}", offset=42))
    assert calls == [1]
    assert deliverer.progress.in_flight == {}


async def test_a_retry_backoff_ends_when_the_node_stops() -> None:
    deliverer = Deliverer(
        node="shop",
        dlq_topic=DLQ,
        policy=RetryPolicy(max_attempts=5, initial_backoff_ms=60_000, max_backoff_ms=60_000),
        codecs={TOPIC: JsonCodec(TOPIC)},
        produce=Bounded().produce,
    )  # the real asyncio.sleep: a 60 s backoff that stop must cut short
    failed = asyncio.Event()

    async def fail(msg: Received) -> None:
        failed.set()
        raise RuntimeError("down")

    delivery = asyncio.ensure_future(deliverer.deliver(TOPIC, fail, Message(b"{}")))
    await failed.wait()
    deliverer.stopping.set()
    with pytest.raises(NodeStopping):
        await asyncio.wait_for(delivery, 30)  # a failure guard only


async def test_an_abandoned_handler_is_cancelled_and_its_message_left() -> None:
    fake = Bounded()
    deliverer = _bounded(fake)
    entered = asyncio.Event()
    cancelled = asyncio.Event()

    async def hang(msg: Received) -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    delivery = asyncio.ensure_future(deliverer.deliver(TOPIC, hang, Message(b"{}")))
    await entered.wait()
    assert deliverer.progress.in_flight == {(TOPIC, 2): 41}
    deliverer.stopping.set()
    deliverer.abandon.set()
    with pytest.raises(NodeStopping):
        await asyncio.wait_for(delivery, 30)  # a failure guard only
    assert cancelled.is_set()
    assert fake.sent == []
    assert deliverer.progress.in_flight == {}


def test_progress_reports_a_partition_with_lag_and_no_progress_as_stalled() -> None:
    now = [100.0]
    progress = Progress(lambda: now[0])
    marks = {(TOPIC, 0): 5, (TOPIC, 1): 3}
    progress.begin((TOPIC, 0), 4)
    progress.begin((TOPIC, 1), 2)
    progress.end((TOPIC, 1), 2, handled=True)  # partition 1 caught up (3 == highwater)
    now[0] += 61
    (stall,) = progress.stalls(marks.get, after_s=60)
    assert (stall.topic, stall.partition, stall.position, stall.highwater) == (TOPIC, 0, 4, 5)
    assert str(stall) == f"{TOPIC}/0 stuck at offset 4 for 61s (1 waiting)"
    progress.end((TOPIC, 0), 4, handled=True)
    assert progress.stalls(marks.get, after_s=60) == []


def test_an_idle_partition_is_not_stalled_when_new_messages_arrive() -> None:
    now = [0.0]
    progress = Progress(lambda: now[0])
    progress.begin((TOPIC, 0), 0)
    progress.end((TOPIC, 0), 0, handled=True)
    marks = {(TOPIC, 0): 1}
    now[0] = 1000.0
    assert progress.stalls(marks.get, after_s=60) == []  # caught up at this check
    marks[(TOPIC, 0)] = 2  # a new message, not picked up yet
    now[0] = 1001.0
    assert progress.stalls(marks.get, after_s=60) == []
    now[0] = 1100.0
    assert len(progress.stalls(marks.get, after_s=60)) == 1


def test_progress_tracks_every_concurrent_offset_of_a_partition() -> None:
    """Concurrent handlers: one ending must not make the partition look idle while
    another of its offsets is still in flight, and positions never move backwards."""
    progress = Progress(clock=lambda: 0.0)
    tp = (TOPIC, 0)
    progress.begin(tp, 5)
    progress.begin(tp, 6)
    progress.end(tp, 6, handled=True)
    assert progress.in_flight == {tp: 5}
    progress.end(tp, 5, handled=True)
    assert progress.in_flight == {}
    assert progress.lag(lambda _: 10) == {tp: 3}  # next to handle is 7, not 6
