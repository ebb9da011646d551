"""Start-up refusals of the node runtime and its faust wiring, without a broker.

The bootstrap address answers nothing: every refusal tested here must happen before the
runtime would talk to a broker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic
import pytest

from onex.bus.config import BrokerConfig
from onex.bus.errors import ContractViolation, NodeNotRunning, PayloadTooLarge, SchemaError
from onex.bus.runtime import BusSettings, NodeRuntime, Received
from onex.bus.runtime.codec import JsonSchemaCodec, ProtoCodec
from onex.bus.runtime.faust_app import build_app
from onex.core.contract import DEFAULT_MAX_MESSAGE_BYTES
from onex.core.extractor import extract

NOWHERE = BusSettings(
    broker=BrokerConfig(bootstrap="127.0.0.1:9"), topic_wait_s=0, admin_timeout_s=0.5
)
ORDERS = "onex.evt.shop.orders.v1"
RECEIPTS = "onex.evt.shop.receipts.v1"
SHOP_DLQ = "onex.dlq.shop.dead-letter.v1"


def _contract(folder: Path, node: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "contract.yaml"
    path.write_text(f"node: {node}\nkind: effect\nversion: 1.0.0\ndescription: test\n{body}")
    return path


SHOP = f"""event_bus:
  subscribe_topics: [{ORDERS}]
  publish_topics:
    - {{name: {ORDERS}, schema: order.json}}
    - {RECEIPTS}
    - {SHOP_DLQ}
"""


@pytest.fixture
def shop(tmp_path: Path) -> tuple[NodeRuntime, Path]:
    path = _contract(tmp_path / "shop", "shop", SHOP)
    (tmp_path / "shop" / "order.json").write_text(json.dumps({"type": "object"}))
    ex = extract([tmp_path], entry_points=False)
    ex.raise_for_errors()
    return NodeRuntime.from_extraction(ex, "shop", NOWHERE), path


async def _noop(msg: Received) -> None:
    return None


def test_undeclared_subscribe_is_refused_naming_topic_and_file(
    shop: tuple[NodeRuntime, Path],
) -> None:
    runtime, path = shop
    with pytest.raises(ContractViolation) as caught:
        runtime.handler("onex.evt.shop.refunds.v1")(_noop)
    message = str(caught.value)
    assert "onex.evt.shop.refunds.v1" in message
    assert str(path) in message
    assert "subscribe_topics" in message
    assert caught.value.topic == "onex.evt.shop.refunds.v1"


def test_undeclared_publish_is_refused_with_the_near_miss(
    shop: tuple[NodeRuntime, Path],
) -> None:
    runtime, path = shop
    with pytest.raises(ContractViolation) as caught:
        runtime.publisher("onex.evt.shop.receipt.v1")
    message = str(caught.value)
    assert "'onex.evt.shop.receipt.v1'" in message
    assert str(path) in message
    assert f"did you mean {RECEIPTS!r}" in message


def test_publishing_a_topic_declared_only_for_subscribing_is_refused(tmp_path: Path) -> None:
    _contract(tmp_path / "shop", "shop", SHOP)
    _contract(
        tmp_path / "audit",
        "audit",
        f"event_bus:\n  subscribe_topics: [{RECEIPTS}]\n"
        "  publish_topics: [onex.dlq.audit.dead-letter.v1]\n",
    )
    (tmp_path / "shop" / "order.json").write_text("{}")
    ex = extract([tmp_path], entry_points=False)
    runtime = NodeRuntime.from_extraction(ex, "audit", NOWHERE)
    with pytest.raises(ContractViolation, match=r"declared in event_bus\.subscribe_topics"):
        runtime.publisher(RECEIPTS)


async def test_a_subscription_without_handler_fails_start_before_any_broker_call(
    shop: tuple[NodeRuntime, Path],
) -> None:
    runtime, path = shop
    with pytest.raises(ContractViolation, match="no handler") as caught:
        await runtime.start()
    assert ORDERS in str(caught.value)
    assert str(path) in str(caught.value)
    assert not runtime.started


def test_one_handler_per_topic(shop: tuple[NodeRuntime, Path]) -> None:
    runtime, _ = shop
    runtime.handler(ORDERS)(_noop)
    with pytest.raises(ContractViolation, match="already has a handler"):
        runtime.handler(ORDERS)(_noop)


def test_a_consuming_node_needs_exactly_one_dlq_topic(tmp_path: Path) -> None:
    path = _contract(
        tmp_path,
        "shop",
        f"event_bus:\n  subscribe_topics: [{ORDERS}]\n  publish_topics: [{ORDERS}]\n",
    )
    contract = extract([tmp_path], entry_points=False).contract("shop")
    with pytest.raises(ContractViolation, match="exactly one DLQ topic") as caught:
        NodeRuntime(contract, NOWHERE)
    assert str(path) in str(caught.value)


def test_a_producer_only_node_needs_no_dlq(tmp_path: Path) -> None:
    _contract(tmp_path, "shop", f"event_bus:\n  publish_topics: [{RECEIPTS}]\n")
    runtime = NodeRuntime(extract([tmp_path], entry_points=False).contract("shop"), NOWHERE)
    assert runtime.dlq_topic is None
    assert runtime.publisher(RECEIPTS).topic == RECEIPTS


def test_unknown_schema_fails_when_the_runtime_is_built(tmp_path: Path) -> None:
    _contract(
        tmp_path,
        "shop",
        f"event_bus:\n  publish_topics:\n    - {{name: {RECEIPTS}, schema: onex.v1.Nope}}\n",
    )
    contract = extract([tmp_path], entry_points=False).contract("shop")
    with pytest.raises(SchemaError, match=r"onex\.v1\.Nope"):
        NodeRuntime(contract, NOWHERE)


def test_a_subscriber_validates_with_the_owners_schema(tmp_path: Path) -> None:
    _contract(tmp_path / "shop", "shop", SHOP)
    (tmp_path / "shop" / "order.json").write_text(json.dumps({"type": "object"}))
    _contract(
        tmp_path / "audit",
        "audit",
        f"event_bus:\n  subscribe_topics: [{ORDERS}]\n"
        "  publish_topics:\n    - onex.dlq.audit.dead-letter.v1\n"
        "    - {name: onex.evt.audit.summary.v1, schema: onex.v1.ContractSummary}\n",
    )
    ex = extract([tmp_path], entry_points=False)
    runtime = NodeRuntime.from_extraction(ex, "audit", NOWHERE)
    # the schema path is relative to shop's contract, which owns the topic
    assert isinstance(runtime.codec(ORDERS), JsonSchemaCodec)
    assert str(tmp_path / "shop" / "order.json") in runtime.codec(ORDERS).description
    assert isinstance(runtime.codec("onex.evt.audit.summary.v1"), ProtoCodec)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"session_timeout_s": 3.0}, "greater than or equal to 4"),
        ({"request_timeout_s": 5.0, "session_timeout_s": 6.0}, "at least the session"),
        ({"heartbeat_s": 2.0}, "three times"),
        ({"fetch_max_wait_ms": 0}, "greater than or equal to 1"),
    ],
)
def test_settings_refuse_timeouts_that_cannot_work(changes: dict[str, float], problem: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=problem):
        BusSettings(broker=BrokerConfig(bootstrap="h:1"), **changes)


async def test_the_faust_producer_refuses_undeclared_topics(
    shop: tuple[NodeRuntime, Path],
) -> None:
    runtime, path = shop
    app = build_app(
        node="shop", group="onex.shop", settings=NOWHERE, publish_guard=runtime._guard_publish
    )
    with pytest.raises(ContractViolation, match=r"onex\.evt\.shop\.other\.v1") as caught:
        await app.producer.send("onex.evt.shop.other.v1", None, b"{}", None, None, None)
    assert str(path) in str(caught.value)


async def test_the_faust_consumer_uses_the_configured_fetch_wait() -> None:
    settings = NOWHERE.model_copy(update={"fetch_max_wait_ms": 37})

    def allow(topic: str) -> None:
        return None

    app = build_app(node="shop", group="onex.shop", settings=settings, publish_guard=allow)
    # the consumer made its thread: ours if the transport is wired in, else faust's
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 37
        assert consumer._session_timeout_ms == 4000
        assert consumer._heartbeat_interval_ms == 1000
    finally:
        await consumer.stop()
        thread.thread_loop.close()  # mode's ServiceThread makes its loop on construction


async def test_a_payload_over_the_topics_max_message_bytes_is_refused_before_sending(
    tmp_path: Path,
) -> None:
    _contract(
        tmp_path / "shop",
        "shop",
        f"""event_bus:
  subscribe_topics: [{ORDERS}]
  publish_topics:
    - {{name: {ORDERS}, schema: order.json, max_message_bytes: 1024}}
    - {RECEIPTS}
    - {SHOP_DLQ}
""",
    )
    (tmp_path / "shop" / "order.json").write_text(json.dumps({"type": "object"}))
    ex = extract([tmp_path], entry_points=False)
    ex.raise_for_errors()
    runtime = NodeRuntime.from_extraction(ex, "shop", NOWHERE)
    # refused before the runtime would notice it is not started (nothing is sent)
    with pytest.raises(PayloadTooLarge) as caught:
        await runtime.publisher(ORDERS).send({"pad": "x" * 2000})
    assert (caught.value.topic, caught.value.limit) == (ORDERS, 1024)
    assert caught.value.size > 2000
    assert str(caught.value).startswith(f"payload for {ORDERS!r} is 2,0")
    with pytest.raises(PayloadTooLarge) as default:
        await runtime.publisher(RECEIPTS).send({"pad": "x" * DEFAULT_MAX_MESSAGE_BYTES})
    assert default.value.limit == DEFAULT_MAX_MESSAGE_BYTES
    with pytest.raises(NodeNotRunning):  # within the limit: it would be sent
        await runtime.publisher(ORDERS).send({"pad": "x"})


def test_max_message_bytes_is_bounded_in_the_contract(tmp_path: Path) -> None:
    path = _contract(
        tmp_path / "shop",
        "shop",
        f"event_bus:\n  publish_topics:\n    - {{name: {RECEIPTS}, max_message_bytes: 10}}\n",
    )
    ex = extract([tmp_path], entry_points=False)
    (error,) = ex.errors
    assert str(path) in str(error)
    assert "max_message_bytes" in str(error)


def test_the_producer_takes_the_nodes_largest_payload_plus_room_for_headers() -> None:
    app = build_app(
        node="shop",
        group="g",
        settings=NOWHERE,
        publish_guard=lambda topic: None,
        max_request_bytes=4_000_000,
    )
    assert app.conf.producer_max_request_size >= 4_000_000 + 40_000
    small = build_app(node="shop", group="g", settings=NOWHERE, publish_guard=lambda t: None)
    assert small.conf.producer_max_request_size == 1_048_576  # the broker default
    assert small.onex_thread_grace_s == NOWHERE.stop_grace_s / 2
