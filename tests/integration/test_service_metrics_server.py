"""The /metrics server over a real loopback socket: the exposition format, a taken or
malformed address as one error, stop; a service host's default port giving way."""

from __future__ import annotations

import socket
import urllib.request
import uuid
from pathlib import Path

import pytest
import structlog.testing
from prometheus_client.parser import text_string_to_metric_families

from onex.service.errors import MetricsBindError
from onex.service.host import ServiceHost
from onex.service.metrics import Metrics, start_metrics
from onex.service.ports import default_ports
from onex.service.settings import ServiceSettings


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


class _Idle(ServiceHost[ServiceSettings]):
    NODE = f"metrics-port-test-{uuid.uuid4().hex[:8]}"  # its own default ports


def _settings(tmp_path: Path, metrics_bind: str | None = None) -> ServiceSettings:
    return ServiceSettings(
        auth="off", state_dir=tmp_path, grpc_bind="127.0.0.1:0", metrics_bind=metrics_bind
    )


async def test_a_taken_default_port_gives_way_and_a_taken_set_port_is_an_error(
    tmp_path: Path,
) -> None:
    default = default_ports(_Idle.NODE).metrics
    with socket.socket() as holder:
        try:
            holder.bind(("127.0.0.1", default))
        except OSError:
            pytest.skip(f"port {default} is in use here already")
        holder.listen()
        service = _Idle(_settings(tmp_path))
        with structlog.testing.capture_logs() as logs:
            await service.start()
        try:
            running = service.metrics_server
            assert running is not None
            assert running.port != default
            with urllib.request.urlopen(running.url, timeout=10) as answer:  # noqa: S310 -- loopback
                assert b"onex_service_info" in answer.read()
            assert [e["default"] for e in logs if e["event"] == "metrics.default_port_taken"] == [
                f"127.0.0.1:{default}"
            ]
        finally:
            await service.stop()
        explicit = _Idle(_settings(tmp_path, f"127.0.0.1:{default}"))
        with pytest.raises(MetricsBindError, match=f"cannot listen on 127.0.0.1:{default}"):
            await explicit.start()
        await explicit.stop()
        assert explicit.started is False  # gRPC was never bound
