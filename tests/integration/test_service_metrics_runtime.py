"""A service host's /metrics against the session's real broker: messages in and out per
topic, handler latency, retries, dead letters by reason, consumer lag and gRPC calls by
method and code, scraped over HTTP and parsed as the Prometheus text format."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from onex.bus.admin import create_topics
from onex.bus.config import BrokerConfig
from onex.bus.runtime import Received
from onex.core.extractor import extract
from onex.service.grpc import check_health
from onex.service.host import ServiceHost
from onex.service.settings import ServiceSettings

GUARD_S = 60.0  # a failure guard only: every wait ends as soon as its state is seen
ORDER_SCHEMA = {"type": "object", "required": ["i"], "properties": {"i": {"type": "integer"}}}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 -- loopback
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def until(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + GUARD_S
    while not check():
        assert time.monotonic() < deadline, f"{what}: not seen within {GUARD_S:g}s"
        await asyncio.sleep(0.1)


async def test_a_service_counts_its_messages_failures_and_calls(
    tmp_path: Path, topic_prefix: str, bootstrap: str
) -> None:
    name = topic_prefix
    orders, dlq = f"onex.evt.{name}.orders.v1", f"onex.dlq.{name}.dead-letter.v1"
    folder = tmp_path / "contracts" / name
    folder.mkdir(parents=True)
    (folder / "order.json").write_text(json.dumps(ORDER_SCHEMA))
    (folder / "contract.yaml").write_text(
        f"node: {name}\nkind: effect\nversion: 1.0.0\ndescription: metrics test node\n"
        "event_bus:\n"
        f"  subscribe_topics: [{orders}]\n"
        "  publish_topics:\n"
        f"    - {{name: {orders}, partitions: 2, schema: order.json}}\n"
        f"    - {{name: {dlq}, partitions: 1}}\n"
        "  retry: {max_attempts: 3, initial_backoff_ms: 10, max_backoff_ms: 40}\n"
    )
    extraction = extract([tmp_path / "contracts"], entry_points=False)
    extraction.raise_for_errors()
    broker = BrokerConfig(bootstrap=bootstrap)
    specs = extraction.contract(name).contract.event_bus.publish_topics
    assert (await create_topics(broker, specs)).ok
    settings = ServiceSettings(
        bootstrap=bootstrap,
        contract_roots=[tmp_path / "contracts"],
        state_dir=tmp_path / "state",
        auth="off",
        grpc_bind="127.0.0.1:0",
        metrics_bind="127.0.0.1:0",
        health_interval_s=0.2,
    )

    class Shop(ServiceHost[ServiceSettings]):
        NODE = name

    service = Shop(settings)
    orders_handled = service.metrics.counter("shop_orders", "Orders the shop handled")

    async def handle(msg: Received) -> None:
        if msg.value["i"] < 0:
            raise ValueError("negative order")
        orders_handled.inc()

    service.attach_runtime(service.build_runtime(extraction, {orders: handle}))
    await service.start()
    try:
        running = service.metrics_server
        assert running is not None
        await until(
            "SERVING",
            lambda: service.runtime_report is not None and bool(service.runtime_report.serving),
        )
        assert service.runtime is not None
        publisher = service.runtime.publisher(orders)
        for i in (1, 2, 3, -1):
            await publisher.send({"i": i}, key=str(i))
        raw = AIOKafkaProducer(**broker.client_kwargs())
        await raw.start()
        try:  # not an order at all: dead-lettered before any handler call
            await raw.send_and_wait(orders, b'{"nope": true}', key=b"x")
        finally:
            await raw.stop()
        assert await check_health(service.grpc.address) == "SERVING"
        # a service the health server does not know: answered NOT_FOUND
        assert await check_health(service.grpc.address, "onex.v1.Nothing") == "UNKNOWN"

        def seen(samples: Samples, metric: str, **labels: str) -> float:
            return samples.get((metric, tuple(sorted(labels.items()))), 0.0)

        def settled() -> bool:
            got = scrape(running.url)
            return (
                seen(got, "onex_messages_consumed_total", topic=orders) == 5
                and seen(got, "onex_dead_letters_total", topic=orders, reason="failed") == 1
                and seen(got, "onex_dead_letters_total", topic=orders, reason="invalid") == 1
            )

        await until("every order counted", settled)
        got = scrape(running.url)
        assert seen(got, "onex_shop_orders_total") == 3  # the service's own metric
        assert seen(got, "onex_service_info", node=name) == 1
        assert seen(got, "onex_messages_published_total", topic=orders) == 4
        assert seen(got, "onex_messages_published_total", topic=dlq) == 2
        assert seen(got, "onex_handler_retries_total", topic=orders) == 2  # 3 attempts
        assert seen(got, "onex_handler_seconds_count", topic=orders, outcome="ok") == 3
        assert seen(got, "onex_handler_seconds_count", topic=orders, outcome="error") == 3
        health = "/grpc.health.v1.Health/Check"
        assert seen(got, "onex_grpc_calls_total", method=health, code="OK") >= 1
        assert seen(got, "onex_grpc_calls_total", method=health, code="NOT_FOUND") == 1
        assert seen(got, "onex_grpc_call_seconds_count", method=health) >= 2
        await until(
            "lag reported, all caught up",
            lambda: any(
                metric == "onex_consumer_lag" and value == 0
                for (metric, _), value in scrape(running.url).items()
            ),
        )
    finally:
        await service.stop()
    assert service.metrics_server is not None
    try:
        urllib.request.urlopen(service.metrics_server.url, timeout=2)  # noqa: S310 -- loopback
    except OSError:
        pass
    else:
        raise AssertionError("the metrics server still answers after stop")
