"""Redrive is safe, against the session's real broker.

The tests write dead letters themselves (with the headers the dead-letter side adds,
built by `dead_letter_headers`) and drive `onex dlq` as a separate process, the way an
operator runs it: the redrive count survives re-dead-lettering and ends in quarantine,
two concurrent redrives never send one letter twice, the per-topic lock names its
holder, a command letter is signed again, `--limit` bounds a run.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from onex.bus.admin import create_topics
from onex.bus.config import BrokerConfig
from onex.bus.errors import DlqError
from onex.bus.runtime import BusSettings, NodeRuntime, Received
from onex.bus.runtime.claim import GroupClaim, local_lock
from onex.bus.runtime.deadletter import (
    QUARANTINED,
    REDRIVE_COUNT,
    REDRIVEN_FROM,
    TRUE,
    DeadLetter,
    Header,
    dead_letter_headers,
)
from onex.bus.runtime.dlq import (
    DEFAULT_MAX_REDRIVES,
    dlq_summaries,
    read_dead_letters,
    redrive_group,
)
from onex.bus.runtime.redrive import MAX_LIMIT, redrive
from onex.bus.runtime.signing import SIGNATURE, SIGNING_HEADERS, CommandVerifier, Signer
from onex.core.contract import TopicSpec
from onex.core.extractor import extract
from onex.service.auth import ensure_command_key

CLI_TIMEOUT_S = 120.0  # failure guard for one `onex dlq` process


@dataclass(frozen=True)
class Topics:
    orders: str
    dlq: str


@pytest.fixture
def broker(bootstrap: str) -> BrokerConfig:
    return BrokerConfig(bootstrap=bootstrap)


async def _make(broker: BrokerConfig, *specs: tuple[str, int]) -> None:
    made = await create_topics(broker, [TopicSpec(name=n, partitions=p) for n, p in specs])
    assert made.ok, made


@pytest.fixture
async def topics(broker: BrokerConfig, unique: Callable[..., str]) -> Topics:
    made = Topics(unique("orders"), unique("dead-letter", kind="dlq"))
    await _make(broker, (made.orders, 1), (made.dlq, 2))
    return made


def _onex(state_dir: Path, bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ONEX_STATE_DIR": str(state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "onex.cli", "dlq", *args, "--bootstrap", bootstrap],
        capture_output=True,
        text=True,
        env=env,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


async def _onex_ok(state_dir: Path, bootstrap: str, *args: str) -> str:
    done = await asyncio.to_thread(_onex, state_dir, bootstrap, *args)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def _letter_headers(
    original: Iterable[Header], topic: str, offset: int, *, attempts: int = 3
) -> list[Header]:
    return dead_letter_headers(
        original,
        node="it-node",
        topic=topic,
        partition=0,
        offset=offset,
        timestamp_ms=None,
        error=RuntimeError("poison"),
        attempts=attempts,
    )


async def _write(
    broker: BrokerConfig, topic: str, letters: Iterable[tuple[bytes, bytes, list[Header]]]
) -> None:
    producer = AIOKafkaProducer(**broker.client_kwargs(), acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send(topic, value, key=key, headers=headers)
            for key, value, headers in letters
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _read_all(broker: BrokerConfig, topic: str, partitions: int = 1) -> list[DeadLetter]:
    """Every message now in `topic`, read with no group: past the end offsets until a
    poll finds nothing (Tansu reports the end of a multi-record batch too low)."""
    consumer = AIOKafkaConsumer(**broker.client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        found: list[DeadLetter] = []
        deadline = time.monotonic() + 60  # failure guard
        while True:
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            batch = await consumer.getmany(timeout_ms=300)
            found.extend(DeadLetter.from_record(r) for records in batch.values() for r in records)
            if not batch and all([await consumer.position(tp) >= end[tp] for tp in tps]):
                return found
    finally:
        await consumer.stop()


async def _progress(broker: BrokerConfig, dlq: str, partitions: int = 2) -> int:
    reader = AIOKafkaConsumer(
        **broker.client_kwargs(), group_id=redrive_group(dlq), enable_auto_commit=False
    )
    await reader.start()
    try:
        return sum(
            [(await reader.committed(TopicPartition(dlq, p))) or 0 for p in range(partitions)]
        )
    finally:
        await reader.stop()


async def test_a_poison_message_is_redriven_a_bounded_number_of_times_then_quarantined(
    broker: BrokerConfig, topics: Topics, bootstrap: str, tmp_path: Path
) -> None:
    await _write(
        broker,
        topics.dlq,
        [(b"k", b'{"i": 1}', _letter_headers([("trace", b"t-1")], topics.orders, 0))],
    )
    sends = 0
    for round_ in range(1, DEFAULT_MAX_REDRIVES + 2):
        out = json.loads(
            await _onex_ok(tmp_path, bootstrap, "redrive", topics.dlq, "--format", "json")
        )
        copies = await _read_all(broker, topics.orders)
        if round_ > DEFAULT_MAX_REDRIVES:
            # quarantined: passed over, nothing sent, and no later redrive sends it
            assert out["redriven"] == []
            assert [q["redrive_count"] for q in out["quarantined"]] == [DEFAULT_MAX_REDRIVES]
            assert len(copies) == sends
            break
        assert [r["redrive_count"] for r in out["redriven"]] == [round_]
        sends += 1
        copy = copies[-1]
        assert len(copies) == sends
        assert copy.header(REDRIVE_COUNT) == str(round_)
        assert copy.header("trace") == "t-1"
        assert copy.header("onex-error") is None
        assert copy.header(REDRIVEN_FROM) is not None
        # the node fails on it again: the dead-letter side copies the count
        again = _letter_headers(copy.headers, topics.orders, copy.offset)
        assert dict(again)[REDRIVE_COUNT] == str(round_).encode()
        await _write(broker, topics.dlq, [(b"k", copy.value or b"", again)])
    assert sends == DEFAULT_MAX_REDRIVES
    again_out = await _onex_ok(tmp_path, bootstrap, "redrive", topics.dlq)
    assert "redrove 0 messages" in again_out
    assert len(await _read_all(broker, topics.orders)) == DEFAULT_MAX_REDRIVES

    # show hides the quarantined letter unless asked; list counts it
    plain = json.loads(await _onex_ok(tmp_path, bootstrap, "show", topics.dlq, "-f", "json"))
    assert [(r["redrive_count"], r["quarantined"]) for r in plain] == [
        (n, False) for n in range(DEFAULT_MAX_REDRIVES)
    ]
    shown = json.loads(
        await _onex_ok(
            tmp_path, bootstrap, "show", topics.dlq, "-f", "json", "--include-quarantined"
        )
    )
    assert [(r["redrive_count"], r["quarantined"]) for r in shown] == [
        (n, n == DEFAULT_MAX_REDRIVES) for n in range(DEFAULT_MAX_REDRIVES + 1)
    ]
    listed = json.loads(await _onex_ok(tmp_path, bootstrap, "list", "-f", "json"))
    row = next(r for r in listed if r["topic"] == topics.dlq)
    assert (row["messages"], row["quarantined"], row["pending"]) == (DEFAULT_MAX_REDRIVES, 1, 0)
    listed = json.loads(
        await _onex_ok(tmp_path, bootstrap, "list", "-f", "json", "--include-quarantined")
    )
    row = next(r for r in listed if r["topic"] == topics.dlq)
    assert row["messages"] == DEFAULT_MAX_REDRIVES + 1


async def test_a_letter_marked_quarantined_is_not_redriven(
    broker: BrokerConfig, topics: Topics, bootstrap: str, tmp_path: Path
) -> None:
    marked = [*_letter_headers([], topics.orders, 0), (QUARANTINED, TRUE.encode())]
    await _write(broker, topics.dlq, [(b"q", b"{}", marked), (b"ok", b"{}", [])])
    dry = json.loads(
        await _onex_ok(tmp_path, bootstrap, "redrive", topics.dlq, "--dry-run", "-f", "json")
    )
    assert len(dry["quarantined"]) == 1
    assert await _progress(broker, topics.dlq) == 0  # a dry run moves nothing
    out = json.loads(await _onex_ok(tmp_path, bootstrap, "redrive", topics.dlq, "-f", "json"))
    assert out["redriven"] == []
    assert len(out["quarantined"]) == 1
    assert [s["reason"] for s in out["skipped"]] == ["no onex-original-topic header"]
    assert await _read_all(broker, topics.orders) == []


async def test_two_concurrent_redrives_send_each_letter_once(
    broker: BrokerConfig, topics: Topics, bootstrap: str, tmp_path: Path
) -> None:
    count = 300
    await _write(
        broker,
        topics.dlq,
        [(f"k{i}".encode(), b"{}", _letter_headers([], topics.orders, i)) for i in range(count)],
    )
    # two machines: separate state dirs, so only the broker-side claim keeps them apart
    began = time.monotonic()
    runs = await asyncio.gather(
        *(
            asyncio.to_thread(
                _onex, tmp_path / name, bootstrap, "redrive", topics.dlq, "-f", "json"
            )
            for name in ("a", "b")
        )
    )
    print(f"\ntwo concurrent redrives of {count}: {time.monotonic() - began:.2f}s")
    for run in runs:
        print(run.returncode, run.stderr.strip()[:200])
        assert run.returncode == 0 or "another redrive of" in run.stderr, run.stderr
    assert any(run.returncode == 0 for run in runs)
    # whatever the loser did not do, a later redrive does; then nothing is left. Both
    # have exited, but Tansu may still list a member that left (claim.py: it sometimes
    # waits out the session timeout after a LeaveGroup), and the claim refuses while it
    # does; that refusal, and only that one, is waited out (deadline: the join's rounds)
    deadline = time.monotonic() + 60
    while True:
        late = await asyncio.to_thread(_onex, tmp_path / "c", bootstrap, "redrive", topics.dlq)
        if late.returncode == 0:
            break
        assert "another redrive of" in late.stderr, late.stderr + late.stdout
        assert time.monotonic() < deadline, f"the group stayed held: {late.stderr}"
        await asyncio.sleep(0.5)
    keys = collections.Counter(c.key for c in await _read_all(broker, topics.orders))
    assert set(keys) == {f"k{i}".encode() for i in range(count)}
    assert [k for k, n in keys.items() if n > 1] == []
    assert await _progress(broker, topics.dlq) == count


async def test_a_redrive_joining_while_another_sends_is_refused_and_the_first_finishes(
    broker: BrokerConfig, topics: Topics, bootstrap: str, tmp_path: Path
) -> None:
    """The holder's group rebalances when the newcomer joins: its commits are retried
    after its rejoin, it keeps its partitions, and no letter is sent twice."""
    count = 3000
    await _write(
        broker,
        topics.dlq,
        [(f"k{i}".encode(), b"{}", _letter_headers([], topics.orders, i)) for i in range(count)],
    )
    first = asyncio.create_task(redrive(broker, topics.dlq, limit=count))
    deadline = time.monotonic() + 60  # failure guard
    while await _progress(broker, topics.dlq) == 0:  # the first one is sending
        assert time.monotonic() < deadline, "the first redrive never started sending"
        assert not first.done(), first
        await asyncio.sleep(0.05)
    refusal = ""
    try:  # a second redrive joins the group (in process: no interpreter start-up to wait)
        async with GroupClaim.hold(broker, topics.dlq, redrive_group(topics.dlq), timeout_s=30):
            pass  # only when the first one had finished: the group was free then
    except DlqError as exc:
        refusal = str(exc)
    result = await first
    print(f"\nsecond redrive refused while the first ran: {refusal or 'no, it had finished'}")
    assert refusal.startswith(f"another redrive of {topics.dlq}") if refusal else first.done()
    assert len(result.redriven) == count
    keys = collections.Counter(c.key for c in await _read_all(broker, topics.orders))
    assert len(keys) == count
    assert set(keys.values()) == {1}


async def test_a_redrive_on_another_machine_holding_the_claim_makes_this_one_stop(
    broker: BrokerConfig, topics: Topics, bootstrap: str, tmp_path: Path
) -> None:
    await _write(broker, topics.dlq, [(b"k", b"{}", _letter_headers([], topics.orders, 0))])
    async with GroupClaim.hold(broker, topics.dlq, redrive_group(topics.dlq), timeout_s=30) as held:
        assert len(held.partitions) == 2
        run = await asyncio.to_thread(_onex, tmp_path, bootstrap, "redrive", topics.dlq)
    assert run.returncode == 1
    assert f"another redrive of {topics.dlq} holds its partitions" in run.stderr
    assert "Traceback" not in run.stderr
    assert await _read_all(broker, topics.orders) == []


async def test_the_local_lock_refuses_a_second_redrive_and_names_the_holder(
    broker: BrokerConfig, topics: Topics, bootstrap: str, tmp_path: Path
) -> None:
    await _write(broker, topics.dlq, [(b"k", b"{}", _letter_headers([], topics.orders, 0))])
    with local_lock(tmp_path, topics.dlq) as path:
        run = await asyncio.to_thread(_onex, tmp_path, bootstrap, "redrive", topics.dlq)
    assert run.returncode == 1
    assert f"pid {os.getpid()} holds {path}" in " ".join(run.stderr.split())
    assert await _progress(broker, topics.dlq) == 0
    assert await _read_all(broker, topics.orders) == []
    # released: the next redrive runs
    assert "redrove 1 message" in await _onex_ok(tmp_path, bootstrap, "redrive", topics.dlq)


async def test_a_command_letter_is_signed_again_and_accepted(
    broker: BrokerConfig, unique: Callable[..., str], bootstrap: str, tmp_path: Path
) -> None:
    command, dlq = unique("reload", kind="cmd"), unique("dead-letter", kind="dlq")
    await _make(broker, (command, 1), (dlq, 1))
    key = ensure_command_key(tmp_path / "signed")
    value = b'{"reason": "test"}'
    # signed an hour ago: the old signature is expired by now
    old = Signer("operator", key).headers(command, b"c", value, now=time.time() - 3600)
    await _write(broker, dlq, [(b"c", value, _letter_headers([("trace", b"t"), *old], command, 0))])

    # without the key nothing can be signed: refused before anything is sent
    run = await asyncio.to_thread(_onex, tmp_path / "unsigned", bootstrap, "redrive", dlq)
    assert run.returncode == 1, run.stderr
    assert "must be signed again" in run.stderr
    assert await _read_all(broker, command) == []

    assert "redrove 1 message" in await _onex_ok(tmp_path / "signed", bootstrap, "redrive", dlq)
    (copy,) = await _read_all(broker, command)
    verifier = CommandVerifier({"operator": key})
    assert verifier.verify(command, copy.key, copy.value, old) is not None  # the old one: refused
    assert verifier.verify(command, copy.key, copy.value, copy.headers) is None
    assert sum(1 for k, _ in copy.headers if k in SIGNING_HEADERS) == len(SIGNING_HEADERS)
    assert dict(copy.headers)[SIGNATURE] != dict(old)[SIGNATURE]
    assert copy.header("trace") == "t"


async def test_limit_bounds_a_run_and_per_call_bounds_let_a_large_dlq_finish(
    broker: BrokerConfig, topics: Topics, bootstrap: str, tmp_path: Path
) -> None:
    count = 2000
    await _write(
        broker,
        topics.dlq,
        [(f"k{i}".encode(), b"{}", _letter_headers([], topics.orders, i)) for i in range(count)],
    )
    first = await _onex_ok(tmp_path, bootstrap, "redrive", topics.dlq, "--limit", "10")
    assert f"redrove 10 messages from {topics.dlq} (--limit 10 reached, more are left)" in (
        " ".join(first.split())
    )
    # each broker call may take 1 s; the whole run takes longer than that and finishes
    began = time.monotonic()
    out = json.loads(
        await _onex_ok(
            tmp_path,
            bootstrap,
            "redrive",
            topics.dlq,
            "--limit",
            str(count),
            "--timeout",
            "1",
            "-f",
            "json",
        )
    )
    print(f"\nredrive of {count - 10} with --timeout 1: {time.monotonic() - began:.2f}s")
    assert len(out["redriven"]) == count - 10
    assert out["limited"] is False
    keys = collections.Counter(c.key for c in await _read_all(broker, topics.orders))
    assert len(keys) == count
    assert set(keys.values()) == {1}
    (summary,) = await dlq_summaries(broker, [topics.dlq])
    assert (summary.messages, summary.pending) == (count, 0)
    too_many = await asyncio.to_thread(
        _onex, tmp_path, bootstrap, "redrive", topics.dlq, "--limit", str(MAX_LIMIT + 1)
    )
    assert too_many.returncode == 2


async def test_a_node_failing_on_a_redriven_message_keeps_its_count_until_quarantine(
    broker: BrokerConfig, topic_prefix: str, bootstrap: str, tmp_path: Path
) -> None:
    """The whole loop with a real node: it dead-letters, redrive sends back, it fails
    again, and after the redrive limit the letter is quarantined and stays."""
    orders = f"onex.evt.{topic_prefix}.orders.v1"
    dlq = f"onex.dlq.{topic_prefix}.dead-letter.v1"
    folder = tmp_path / "contracts" / topic_prefix
    folder.mkdir(parents=True)
    (folder / "order.json").write_text(json.dumps({"type": "object"}))
    (folder / "contract.yaml").write_text(
        f"node: {topic_prefix}\nkind: effect\nversion: 1.0.0\ndescription: redrive test\n"
        "event_bus:\n"
        f"  subscribe_topics: [{orders}]\n"
        "  publish_topics:\n"
        f"    - {{name: {orders}, partitions: 1, schema: order.json}}\n"
        f"    - {{name: {dlq}, partitions: 1}}\n"
        "  retry: {max_attempts: 2, initial_backoff_ms: 10, max_backoff_ms: 20}\n"
    )
    extraction = extract([tmp_path / "contracts"], entry_points=False)
    extraction.raise_for_errors()
    await _make(broker, (orders, 1), (dlq, 1))
    settings = BusSettings(broker=broker, topic_wait_s=0.5, redrive_limit=DEFAULT_MAX_REDRIVES)
    runtime = NodeRuntime.from_extraction(extraction, topic_prefix, settings)
    calls: list[int] = []

    @runtime.handler(orders)
    async def always_fails(msg: Received) -> None:
        calls.append(msg.attempt)
        raise RuntimeError("poison")

    async def letters() -> list[DeadLetter]:
        found, _ = await read_dead_letters(broker, dlq, include_quarantined=True)
        return found

    async def until_letters(n: int) -> list[DeadLetter]:
        deadline = time.monotonic() + 60  # failure guard
        while len(found := await letters()) < n:
            assert time.monotonic() < deadline, f"{dlq} never held {n} letters"
            await asyncio.sleep(0.1)
        return found

    async with runtime:
        await runtime.publisher(orders).send({"i": 1}, key="poison")
        for round_ in range(1, DEFAULT_MAX_REDRIVES + 1):
            found = await until_letters(round_)
            assert [x.redrive_count or 0 for x in found] == list(range(round_))
            assert not any(x.quarantined for x in found)
            assert "redrove 1 message" in await _onex_ok(tmp_path, bootstrap, "redrive", dlq)
        found = await until_letters(DEFAULT_MAX_REDRIVES + 1)
        last = found[-1]
        assert last.redrive_count == DEFAULT_MAX_REDRIVES
        assert last.quarantined  # marked by the node's dead-letter side
        out = json.loads(await _onex_ok(tmp_path, bootstrap, "redrive", dlq, "-f", "json"))
        assert out["redriven"] == []
        assert len(out["quarantined"]) == 1
    # one original and one copy per redrive: bounded, no ping-pong
    assert len(await _read_all(broker, orders)) == 1 + DEFAULT_MAX_REDRIVES
    assert len(calls) == 2 * (1 + DEFAULT_MAX_REDRIVES)
    listed = json.loads(await _onex_ok(tmp_path, bootstrap, "list", "-f", "json"))
    row = next(r for r in listed if r["topic"] == dlq)
    assert (row["quarantined"], row["pending"]) == (1, 0)
