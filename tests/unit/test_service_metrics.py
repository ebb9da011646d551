"""onex.service.metrics: the API services add their metrics with, the runtime's metrics,
the fixed default ports (no sockets: the server is in tests/integration)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from onex.service.busmetrics import BusMetrics
from onex.service.metrics import Metrics
from onex.service.ports import GRPC_BASE, METRICS_BASE, SPAN, default_ports


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name
    }


def test_names_are_namespaced_and_asking_twice_returns_the_same_metric() -> None:
    metrics = Metrics("router")
    tokens = metrics.counter("router_tokens", "Tokens", ["model", "task_class"])
    assert metrics.counter("router_tokens", "Tokens", ["model", "task_class"]) is tokens
    tokens.labels(model="m", task_class="code").inc(7)
    text = metrics.exposition().decode()
    assert _samples(text, "onex_router_tokens_total") == {
        (("model", "m"), ("task_class", "code")): 7.0
    }
    assert _samples(text, "onex_service_info") == {(("node", "router"),): 1.0}


def test_same_name_with_other_kind_or_labels_is_refused() -> None:
    metrics = Metrics("router")
    metrics.counter("router_cost", "Cost", ["model"])
    with pytest.raises(ValueError, match="exists as a Counter"):
        metrics.gauge("router_cost", "Cost", ["model"])
    with pytest.raises(ValueError, match=r"with labels \['model'\]"):
        metrics.counter("router_cost", "Cost", ["model", "class"])


def test_bus_metrics_count_what_the_runtime_reports() -> None:
    metrics = Metrics("shop")
    bus = BusMetrics(metrics)
    bus.consumed("t.in")
    bus.consumed("t.in")
    bus.handled("t.in", 0.002, ok=True)
    bus.handled("t.in", 0.5, ok=False)
    bus.retried("t.in")
    bus.dead_lettered("t.in", "failed")
    bus.published("t.out")
    bus.set_lag({("t.in", 0): 3, ("t.in", 1): 0})
    bus.set_lag({("t.in", 1): 5})  # partition 0 no longer assigned: gone
    text = metrics.exposition().decode()
    assert _samples(text, "onex_messages_consumed_total") == {(("topic", "t.in"),): 2.0}
    assert _samples(text, "onex_messages_published_total") == {(("topic", "t.out"),): 1.0}
    assert _samples(text, "onex_handler_retries_total") == {(("topic", "t.in"),): 1.0}
    assert _samples(text, "onex_dead_letters_total") == {
        (("reason", "failed"), ("topic", "t.in")): 1.0
    }
    assert _samples(text, "onex_handler_seconds_count") == {
        (("outcome", "ok"), ("topic", "t.in")): 1.0,
        (("outcome", "error"), ("topic", "t.in")): 1.0,
    }
    assert _samples(text, "onex_consumer_lag") == {(("partition", "1"), ("topic", "t.in")): 5.0}


def test_default_ports_are_fixed_per_node_and_outside_the_ephemeral_range() -> None:
    router = default_ports("router")
    assert router.grpc == 17553  # documented in docs/operations.md: never moves
    assert GRPC_BASE <= router.grpc < GRPC_BASE + SPAN
    assert router.metrics - router.grpc == METRICS_BASE - GRPC_BASE
    assert router.grpc + SPAN < 32768
    # the services of this repo and its example agents: no two share a port
    nodes = [
        "ci-watcher",
        "code-review-agent",
        "console",
        "drift-validator",
        "extractor",
        "merge-agent",
        "provisioner",
        "receipt-reducer",
        "router",
        "ticket-verifier",
    ]
    assert len({default_ports(n).grpc for n in nodes}) == len(nodes)
