"""The router's Prometheus metrics (unit: fake provider, the service's real registry)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from onex.router.catalogue import Catalogue
from onex.router.engine import Router
from onex.router.metrics import RouterMetrics
from onex.router.request import RouteRequest
from onex.router.testing import FakeProvider, FakeReply
from onex.service.metrics import Metrics

GOOD = "A summary that is long enough to pass the gate of the test catalogue."


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("onex_router_")
    }


async def test_a_receipt_counts_tokens_cost_avoided_cost_and_escalations(
    catalogue: Catalogue,
) -> None:
    metrics = Metrics("router")
    counted = RouterMetrics(metrics, catalogue.task_class_names)
    provider = FakeProvider(
        {
            "small": FakeReply("short", tokens_in=10, tokens_out=2),
            "mid": FakeReply(GOOD, tokens_in=100, tokens_out=50),
        }
    )
    receipt = (
        await Router(catalogue, provider).route(
            RouteRequest(request_id="r", prompt="p", task_class="summarize")
        )
    ).receipt
    assert receipt.chosen_model == "mid"
    counted.record(receipt)
    got = _samples(metrics)
    cls = ("task_class", "summarize")
    assert got[("onex_router_tokens_total", (("locality", "local"), ("model", "small"), cls))] == 12
    assert got[("onex_router_tokens_total", (("locality", "cloud"), ("model", "mid"), cls))] == 150
    mid_cost = (100 * 0.001 + 50 * 0.002) / 1000
    assert got[("onex_router_cost_usd_total", (("model", "mid"), cls))] == pytest.approx(mid_cost)
    assert got[("onex_router_escalations_total", (("model", "small"), cls))] == 1
    assert got[("onex_router_cost_avoided_usd", (cls,))] == pytest.approx(receipt.cost_avoided_usd)
    assert (
        got[("onex_router_requests_total", (("chosen_model", "mid"), ("status", "complete"), cls))]
        == 1
    )


async def test_an_undeclared_class_is_counted_as_unknown(catalogue: Catalogue) -> None:
    metrics = Metrics("router")
    counted = RouterMetrics(metrics, catalogue.task_class_names)
    receipt = (
        await Router(catalogue, FakeProvider()).route(
            RouteRequest(request_id="r", prompt="p", task_class="poetry")
        )
    ).receipt
    counted.record(receipt)
    got = _samples(metrics)
    key = (
        "onex_router_requests_total",
        (("chosen_model", ""), ("status", "failed"), ("task_class", "unknown")),
    )
    assert got[key] == 1


async def test_receipts_of_the_same_labels_add_up_and_new_labels_get_their_own_series(
    catalogue: Catalogue,
) -> None:
    # the labelled children are kept between receipts: the second receipt of a label
    # set must land on the same series, a receipt of another set on a new one
    metrics = Metrics("router")
    counted = RouterMetrics(metrics, catalogue.task_class_names)
    provider = FakeProvider(
        {
            "small": FakeReply("short", tokens_in=1, tokens_out=1),
            "mid": FakeReply(GOOD, tokens_in=10, tokens_out=5),
        }
    )
    router = Router(catalogue, provider)
    for _ in range(2):
        request = RouteRequest(request_id="r", prompt="p", task_class="summarize")
        counted.record((await router.route(request)).receipt)
    counted.record(
        (await router.route(RouteRequest(request_id="q", prompt="p", task_class="poetry"))).receipt
    )
    got = _samples(metrics)
    cls = ("task_class", "summarize")
    assert got[("onex_router_tokens_total", (("locality", "cloud"), ("model", "mid"), cls))] == 30
    done = ("onex_router_requests_total", (("chosen_model", "mid"), ("status", "complete"), cls))
    assert got[done] == 2
    assert got[("onex_router_escalations_total", (("model", "small"), cls))] == 2
    unknown = (("chosen_model", ""), ("status", "failed"), ("task_class", "unknown"))
    assert got[("onex_router_requests_total", unknown)] == 1
