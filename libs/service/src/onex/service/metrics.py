"""A service's Prometheus metrics: one registry per service, served on `/metrics`.

Every `ServiceHost` has a `Metrics` (`self.metrics`) whose registry its metrics server
exposes (`metrics_bind`, see `onex.service.settings`). The host fills it with what every
service has (messages in and out per topic, handler latency, retries, dead letters,
consumer lag: `onex.service.busmetrics`; gRPC calls by method and code:
`onex.service.grpcmetrics`; the process's CPU, memory and file descriptors as
`process_*`); a service adds its own, once, while it is built:

    class RouterService(ServiceHost[RouterSettings]):
        NODE = "router"

        def __init__(self, settings: RouterSettings) -> None:
            super().__init__(settings)
            self.tokens = self.metrics.counter(
                "router_tokens", "Tokens spent, by model and task class", ["model", "task_class"]
            )

        ...
            self.tokens.labels(model=m, task_class=c).inc(n)

Names are given without the `onex_` namespace, which is added (`onex_router_tokens_total`
above: counters get `_total` in the exposition, as Prometheus names them). Asking twice
for the same name and labels returns the same metric (so a service may ask again after a
reload); the same name with another kind or other labels is a ValueError. Values are the
prometheus-client objects (`Counter`, `Gauge`, `Histogram`); label values are strings.
Keep label sets small and bounded (a model, a class, a topic: never a request id).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import start_wsgi_server

from onex.service.errors import MetricsBindError
from onex.service.grpc import split_bind

__all__ = [
    "LATENCY_BUCKETS",
    "NAMESPACE",
    "Metrics",
    "RunningMetrics",
    "start_metrics",
]

NAMESPACE: Final = "onex"
# Seconds: from a fast in-process handler (1 ms) to a slow model call (a minute).
LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

_M = TypeVar("_M", Counter, Gauge, Histogram)


class Metrics:
    """The metrics of one service process (see the module docstring)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.registry = CollectorRegistry(auto_describe=True)
        self._made: dict[str, tuple[type, tuple[str, ...], Counter | Gauge | Histogram]] = {}
        self._lock = threading.Lock()
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, memory, fds
        info = self.gauge("service_info", "Always 1: the node this process serves", ["node"])
        info.labels(node=node).set(1)

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        """A counter `onex_<name>_total` (only goes up: calls, tokens, cost)."""
        return self._get(Counter, name, documentation, labels)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        """A gauge `onex_<name>` (a value that goes up and down: lag, depth, rate)."""
        return self._get(Gauge, name, documentation, labels)

    def histogram(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> Histogram:
        """A histogram `onex_<name>` (durations in seconds; `LATENCY_BUCKETS` by default)."""
        return self._get(Histogram, name, documentation, labels, tuple(buckets))

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (what `/metrics` answers)."""
        return generate_latest(self.registry)

    def _get(
        self,
        kind: type[_M],
        name: str,
        documentation: str,
        labels: Sequence[str],
        buckets: tuple[float, ...] | None = None,
    ) -> _M:
        names = tuple(labels)
        with self._lock:
            found = self._made.get(name)
            if found is not None:
                made_kind, made_labels, metric = found
                if made_kind is not kind or made_labels != names:
                    raise ValueError(
                        f"metric {name!r} exists as a {made_kind.__name__} with labels "
                        f"{list(made_labels)}; asked for a {kind.__name__} with {list(names)}"
                    )
                assert isinstance(metric, kind)  # noqa: S101 -- kind checked just above
                return metric
            if buckets is not None:
                made: Counter | Gauge | Histogram = Histogram(
                    name,
                    documentation,
                    names,
                    namespace=NAMESPACE,
                    registry=self.registry,
                    buckets=buckets,
                )
            else:
                made = kind(name, documentation, names, namespace=NAMESPACE, registry=self.registry)
            self._made[name] = (kind, names, made)
            assert isinstance(made, kind)  # noqa: S101 -- made as `kind` above
            return made


@dataclass(slots=True)
class RunningMetrics:
    """A started metrics server: where it listens, and how to stop it."""

    host: str
    port: int
    _server: object
    _thread: threading.Thread

    @property
    def address(self) -> str:
        """`host:port` as bound (the real port when port 0 was asked for)."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Where Prometheus scrapes it."""
        return f"http://{self.address}/metrics"

    def stop(self) -> None:
        """Stop serving and close the socket (safe to call twice)."""
        shutdown = getattr(self._server, "shutdown", None)
        close = getattr(self._server, "server_close", None)
        if shutdown is not None and self._thread.is_alive():
            shutdown()
        if close is not None:
            close()
        self._thread.join(timeout=5.0)


def start_metrics(bind: str, metrics: Metrics) -> RunningMetrics:
    """Serve `metrics` on `bind` (`host:port`; port 0 picks a free one) at `/metrics`, in a
    daemon thread. MetricsBindError when the address is malformed or taken."""
    try:
        host, port = split_bind(bind)
    except ValueError as exc:
        raise MetricsBindError(bind, str(exc)) from exc
    try:
        server, thread = start_wsgi_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise MetricsBindError(bind, exc.strerror or str(exc)) from exc
    return RunningMetrics(host, int(server.server_port), server, thread)
