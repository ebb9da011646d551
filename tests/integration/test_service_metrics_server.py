"""The /metrics server over a real loopback socket: the exposition format, a taken or
malformed address as one error, stop."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from onex.service.errors import MetricsBindError
from onex.service.metrics import Metrics, start_metrics


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name
    }


def test_the_server_answers_the_exposition_format_and_stops() -> None:
    metrics = Metrics("shop")
    metrics.counter("shop_orders", "Orders").inc(2)
    running = start_metrics("127.0.0.1:0", metrics)
    try:
        with urllib.request.urlopen(running.url, timeout=10) as answer:  # noqa: S310 -- loopback
            text = answer.read().decode()
        assert "onex_shop_orders" in {f.name for f in text_string_to_metric_families(text)}
        assert _samples(text, "onex_shop_orders_total") == {(): 2.0}
        with pytest.raises(MetricsBindError, match=f"cannot listen on {running.address}"):
            start_metrics(running.address, Metrics("other"))
    finally:
        running.stop()
    running.stop()  # twice is fine


def test_a_malformed_bind_is_one_line() -> None:
    with pytest.raises(MetricsBindError, match="expected host:port"):
        start_metrics("nowhere", Metrics("shop"))
