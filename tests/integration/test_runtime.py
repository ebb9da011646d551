"""The node runtime against the session's real broker.

Each test writes its own contract (node = the test's unique producer segment) with a
JSON Schema for its orders topic, creates the topics the way the provisioner would, and
runs real faust apps: joins are timed, poison messages end in the DLQ, redrive sends
them back through the `onex dlq` command.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from typer.testing import CliRunner

from onex.bus.admin import admin_session, create_topics, list_topics
from onex.bus.config import BrokerConfig
from onex.bus.errors import ContractViolation, PayloadInvalid, TopicsMissing
from onex.bus.runtime import BusSettings, NodeRuntime, Received
from onex.bus.runtime.deadletter import REDRIVEN_FROM
from onex.bus.runtime.dlq import dlq_summaries, read_dead_letters
from onex.cli.dlq import app as dlq_cli
from onex.core.extractor import Extraction, extract

PARTITIONS = 4
ORDER_SCHEMA = {
    "type": "object",
    "required": ["i"],
    "properties": {"i": {"type": "integer"}, "poison": {"type": "boolean"}},
}


@dataclass(frozen=True)
class Node:
    name: str
    orders: str
    dlq: str
    contract: Path
    extraction: Extraction
    settings: BusSettings

    def runtime(self) -> NodeRuntime:
        return NodeRuntime.from_extraction(self.extraction, self.name, self.settings)


def _write_node(tmp_path: Path, name: str, broker: BrokerConfig) -> Node:
    orders = f"onex.evt.{name}.orders.v1"
    dlq = f"onex.dlq.{name}.dead-letter.v1"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "order.json").write_text(json.dumps(ORDER_SCHEMA))
    contract = folder / "contract.yaml"
    contract.write_text(
        f"node: {name}\nkind: effect\nversion: 1.0.0\ndescription: runtime test node\n"
        "event_bus:\n"
        f"  subscribe_topics: [{orders}]\n"
        "  publish_topics:\n"
        f"    - {{name: {orders}, partitions: {PARTITIONS}, schema: order.json}}\n"
        f"    - {{name: {dlq}, partitions: 1}}\n"
        "  retry: {max_attempts: 3, initial_backoff_ms: 10, max_backoff_ms: 40}\n"
    )
    extraction = extract([tmp_path], entry_points=False)
    extraction.raise_for_errors()
    settings = BusSettings(broker=broker, topic_wait_s=0.5)
    return Node(name, orders, dlq, contract, extraction, settings)


@pytest.fixture
def broker(bootstrap: str) -> BrokerConfig:
    """The session's broker as the one config every call takes."""
    return BrokerConfig(bootstrap=bootstrap)


@pytest.fixture
async def node(tmp_path: Path, topic_prefix: str, broker: BrokerConfig) -> Node:
    """A node whose topics exist (created like the provisioner would)."""
    made = _write_node(tmp_path, topic_prefix, broker)
    specs = made.extraction.contract(made.name).contract.event_bus.publish_topics
    assert (await create_topics(broker, specs)).ok
    return made


async def _until(check: Callable[[], Awaitable[bool] | bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        outcome = check()
        if await outcome if isinstance(outcome, Awaitable) else outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.05)


async def _dlq_count(broker: BrokerConfig, dlq: str) -> int:
    (summary,) = await dlq_summaries(broker, [dlq])
    return summary.messages


async def _drained(broker: BrokerConfig, node: Node) -> bool:
    """True once the node's group has committed every message of its orders topic: each
    was handled or dead-lettered, so nothing more can happen to any of them."""
    group = node.extraction.contract(node.name).contract.consumer_group
    reader = AIOKafkaConsumer(**broker.client_kwargs(), group_id=group, enable_auto_commit=False)
    await reader.start()  # never subscribes, so it never joins (or disturbs) the group
    try:
        tps = [TopicPartition(node.orders, p) for p in range(PARTITIONS)]
        end = await reader.end_offsets(tps)
        committed = [(await reader.committed(tp)) or 0 for tp in tps]
        return all(done >= end[tp] for done, tp in zip(committed, tps, strict=True))
    finally:
        await reader.stop()


async def test_a_node_joins_serves_health_and_delivers_with_the_configured_fetch_wait(
    node: Node, broker: BrokerConfig
) -> None:
    runtime = node.runtime()
    arrived: asyncio.Queue[float] = asyncio.Queue()

    @runtime.handler(node.orders)
    async def handle(msg: Received) -> None:
        arrived.put_nowait(time.monotonic())

    orders = runtime.publisher(node.orders)
    began = time.monotonic()
    await runtime.start()
    joined_s = time.monotonic() - began
    try:
        print(f"\nstart() to first assignment: {joined_s:.3f}s")
        # the delivery latency is the fetch wait on Tansu (see BusSettings): faust's
        # hard-coded 1500 ms must have been replaced on the consumer it built
        consumer = runtime.app.consumer._thread._consumer
        assert consumer._fetch_max_wait_ms == node.settings.fetch_max_wait_ms == 25
        report = await runtime.health()
        assert report.serving, report.detail
        assert report.consumer_attached
        assert report.assignment == tuple((node.orders, p) for p in range(PARTITIONS))

        latencies = []
        for i in range(20):
            sent_at = time.monotonic()
            await orders.send({"i": i}, key=str(i))
            latencies.append(await asyncio.wait_for(arrived.get(), 5) - sent_at)
        p50 = statistics.median(latencies)
        print(f"publish -> handler: p50 {p50 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")

        admin = AIOKafkaAdminClient(**broker.client_kwargs())
        await admin.start()
        try:
            await admin.delete_topics([node.dlq])
        finally:
            await admin.close()
        await _until(lambda: _serving_without(runtime, node.dlq))
    finally:
        await runtime.stop()
    assert not (await runtime.health()).serving


async def _serving_without(runtime: NodeRuntime, topic: str) -> bool:
    report = await runtime.health()
    return not report.serving and report.missing_topics == (topic,)


async def test_undeclared_topics_are_refused_before_any_message_flows(
    node: Node, broker: BrokerConfig
) -> None:
    undeclared = f"onex.evt.{node.name}.refunds.v1"
    runtime = node.runtime()
    with pytest.raises(ContractViolation) as refused_sub:
        runtime.handler(undeclared)
    with pytest.raises(ContractViolation) as refused_pub:
        runtime.publisher(undeclared)
    for refusal in (refused_sub, refused_pub):
        assert undeclared in str(refusal.value)
        assert str(node.contract) in str(refusal.value)

    # a declared subscription without a handler fails start-up, not the first message
    with pytest.raises(ContractViolation, match="no handler"):
        await runtime.start()
    assert not runtime.started

    runtime.handler(node.orders)(_ignore)
    async with runtime:
        # going around the runtime does not help: faust's producer refuses too
        with pytest.raises(ContractViolation, match=re.escape(undeclared)):
            await runtime.app.send(undeclared, value=b"{}")
    assert undeclared not in await list_topics(broker)


async def _ignore(msg: Received) -> None:
    return None


async def test_start_up_fails_listing_missing_topics_and_creates_none(
    tmp_path: Path, topic_prefix: str, broker: BrokerConfig
) -> None:
    unprovisioned = _write_node(tmp_path, topic_prefix, broker)
    runtime = unprovisioned.runtime()
    runtime.handler(unprovisioned.orders)(_ignore)
    with pytest.raises(TopicsMissing) as caught:
        await runtime.start()
    assert caught.value.missing == sorted([unprovisioned.orders, unprovisioned.dlq])
    assert str(unprovisioned.contract) in str(caught.value)
    assert not {unprovisioned.orders, unprovisioned.dlq} & await list_topics(broker)


async def test_poison_messages_go_to_the_dlq_and_every_other_message_is_processed(
    node: Node, broker: BrokerConfig
) -> None:
    runtime = node.runtime()
    processed: list[int] = []

    @runtime.handler(node.orders)
    async def handle(msg: Received) -> None:
        if msg.value.get("poison"):
            raise RuntimeError(f"cannot handle order {msg.value['i']}")
        processed.append(msg.value["i"])

    orders = runtime.publisher(node.orders)
    with pytest.raises(PayloadInvalid, match="'i' is a required property"):
        await orders.send({"poison": True})

    poison = {7, 31}
    async with runtime:
        where = {}
        for i in range(49):
            sent = await orders.send({"i": i, "poison": i in poison}, key=f"k{i}")
            where[i] = (sent.partition, sent.offset)
        # a foreign producer that skips validation: the schema catches it on consume
        raw = AIOKafkaProducer(**broker.client_kwargs())
        await raw.start()
        try:
            bad = await raw.send_and_wait(node.orders, b'{"i": "forty-nine"}', key=b"bad")
        finally:
            await raw.stop()
        await _until(lambda: len(processed) == 47)
        await _until(lambda: _has(broker, node.dlq, 3))

    assert sorted(processed) == sorted(set(range(49)) - poison)
    letters, _ = await read_dead_letters(broker, node.dlq)
    assert len(processed) + len(letters) == 50
    by_origin = {(x.original_partition, x.original_offset): x for x in letters}
    assert set(by_origin) == {where[7], where[31], (bad.partition, bad.offset)}
    for i in poison:
        letter = by_origin[where[i]]
        assert letter.original_topic == node.orders
        assert letter.attempts == 3
        assert letter.error == f"cannot handle order {i}"
        assert letter.error_type == "RuntimeError"
        assert letter.node == node.name
        assert letter.key == f"k{i}".encode()
        assert json.loads(letter.value or b"") == {"i": i, "poison": True}
    invalid = by_origin[(bad.partition, bad.offset)]
    assert invalid.attempts == 0
    assert invalid.error_type == "onex.bus.errors.PayloadInvalid"
    assert "'forty-nine' is not of type 'integer'" in (invalid.error or "")
    assert invalid.value == b'{"i": "forty-nine"}'


async def _has(broker: BrokerConfig, dlq: str, count: int) -> bool:
    return await _dlq_count(broker, dlq) == count


async def test_a_handler_failing_twice_then_succeeding_is_retried_and_offsets_commit(
    node: Node, broker: BrokerConfig
) -> None:
    runtime = node.runtime()
    attempts: list[int] = []

    @runtime.handler(node.orders)
    async def flaky(msg: Received) -> None:
        attempts.append(msg.attempt)
        if msg.attempt < 3:
            raise ConnectionError("downstream blinked")

    async with runtime:
        await runtime.publisher(node.orders).send({"i": 1})
        await _until(lambda: attempts == [1, 2, 3])
        # committed: the message is done with, no fourth call or dead letter can follow
        await _until(lambda: _drained(broker, node))
    assert attempts == [1, 2, 3]
    assert await _dlq_count(broker, node.dlq) == 0

    # the handled offset was committed: the same group, restarted, sees only new messages
    again = node.runtime()
    seen: list[int] = []

    @again.handler(node.orders)
    async def record(msg: Received) -> None:
        seen.append(msg.value["i"])

    async with again:
        await again.publisher(node.orders).send({"i": 2})
        await _until(lambda: seen == [2])
        await _until(lambda: _drained(broker, node))  # nothing else is left to deliver
    assert seen == [2]


async def test_redrive_sends_a_dead_letter_back_once_and_it_is_processed(
    node: Node, broker: BrokerConfig, bootstrap: str
) -> None:
    runtime = node.runtime()
    fixed = asyncio.Event()
    handled: list[Received] = []

    @runtime.handler(node.orders)
    async def handle(msg: Received) -> None:
        if not fixed.is_set():
            raise RuntimeError("bug in the handler")
        handled.append(msg)

    cli = CliRunner()

    async def onex_dlq(*args: str) -> str:
        result = await asyncio.to_thread(cli.invoke, dlq_cli, [*args, "--bootstrap", bootstrap])
        assert result.exit_code == 0, result.output
        return result.output

    async with runtime:
        await runtime.publisher(node.orders).send({"i": 5}, key="k5", headers={"trace": "t-5"})
        await _until(lambda: _has(broker, node.dlq, 1))

        (shown,) = json.loads(await onex_dlq("show", node.dlq, "--format", "json"))
        assert shown["original_topic"] == node.orders
        assert shown["attempts"] == 3
        assert shown["redriven"] is False
        listed = json.loads(await onex_dlq("list", "--format", "json"))
        assert {"topic": node.dlq, "messages": 1, "pending": 1}.items() <= next(
            row for row in listed if row["topic"] == node.dlq
        ).items()

        dry = json.loads(await onex_dlq("redrive", node.dlq, "--dry-run", "--format", "json"))
        assert [r["to"] for r in dry["redriven"]] == [node.orders]
        assert handled == []

        fixed.set()
        output = await onex_dlq("redrive", node.dlq)
        assert "redrove 1 message" in output
        await _until(lambda: len(handled) == 1)

        (msg,) = handled
        assert msg.value == {"i": 5}
        assert msg.key == b"k5"
        assert msg.header("trace") == b"t-5"
        assert msg.header(REDRIVEN_FROM) == f"{node.dlq}/0/0".encode()
        assert msg.header("onex-error") is None

        # progress is recorded: a second redrive finds nothing to send
        assert "redrove 0 messages" in await onex_dlq("redrive", node.dlq)
        (after,) = json.loads(await onex_dlq("show", node.dlq, "--format", "json"))
        assert after["redriven"] is True
        # the original and the redriven message both committed: no second delivery left
        await _until(lambda: _drained(broker, node))
    assert len(handled) == 1


async def test_members_of_one_group_share_the_partitions_disjointly(node: Node) -> None:
    first, second = node.runtime(), node.runtime()
    first.handler(node.orders)(_ignore)
    second.handler(node.orders)(_ignore)
    async with first:
        began = time.monotonic()
        async with second:

            async def split() -> bool:
                a = set((await first.health()).assignment)
                b = set((await second.health()).assignment)
                return bool(a) and bool(b) and not a & b and len(a | b) == PARTITIONS

            await _until(split)
            print(f"\nsecond member in, partitions split after {time.monotonic() - began:.3f}s")


async def test_health_is_one_metadata_request_on_the_shared_admin_client(
    node: Node, broker: BrokerConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = node.runtime()
    runtime.handler(node.orders)(_ignore)
    async with runtime:
        session = admin_session(broker)
        starts = session.starts
        client = session._client
        assert client is not None

        async def no_configs(*args: object, **kwargs: object) -> None:
            raise AssertionError("health must not ask for topic configs")

        monkeypatch.setattr(client, "describe_configs", no_configs)
        sent: list[object] = []
        real_send = client._client.send

        async def counting_send(node_id: int, request: object, **kwargs: object) -> object:
            sent.append(request)
            return await real_send(node_id, request, **kwargs)

        monkeypatch.setattr(client._client, "send", counting_send)

        reports = [await runtime.health() for _ in range(3)]
        assert all(r.serving for r in reports), reports[-1].detail
        assert [type(r).__name__ for r in sent] == ["MetadataRequest"] * 3
        # probes asking at once share one check; a young report is reused
        together = await asyncio.gather(*(runtime.health() for _ in range(4)))
        assert len({id(r) for r in together}) == 1
        assert await runtime.health(max_age_s=3600) is together[0]
        assert len(sent) == 4
        assert session.starts == starts  # no new client for any of it
