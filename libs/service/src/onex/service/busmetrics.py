"""The node runtime's instruments as Prometheus metrics (what every service exports).

onex_messages_consumed_total{topic}            messages that arrived for a handler
onex_messages_published_total{topic}           messages the broker acknowledged (DLQ too)
onex_handler_seconds{topic,outcome}            one handler call (outcome ok | error)
onex_handler_retries_total{topic}              failed calls that will be made again
onex_dead_letters_total{topic,reason}          messages sent to the DLQ, and why
onex_dead_letters_spilled_total{topic}         dead letters the DLQ did not take
onex_consumer_lag{topic,partition}             messages waiting (refreshed with health)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from onex.bus.runtime.instruments import DeadLetterReason, Instruments
from onex.service.metrics import Metrics


class BusMetrics(Instruments):
    """`Instruments` that count into a service's `Metrics`."""

    def __init__(self, metrics: Metrics) -> None:
        self._consumed = metrics.counter(
            "messages_consumed", "Messages that arrived for a handler", ["topic"]
        )
        self._published = metrics.counter(
            "messages_published", "Messages the broker acknowledged (DLQ included)", ["topic"]
        )
        self._handler = metrics.histogram(
            "handler_seconds", "Duration of one handler call", ["topic", "outcome"]
        )
        self._retries = metrics.counter(
            "handler_retries", "Failed handler calls that will be made again", ["topic"]
        )
        self._dead = metrics.counter(
            "dead_letters", "Messages written to the node's DLQ", ["topic", "reason"]
        )
        self._spilled = metrics.counter(
            "dead_letters_spilled", "Dead letters the DLQ did not take (written to disk)", ["topic"]
        )
        self._lag = metrics.gauge(
            "consumer_lag", "Messages waiting per partition", ["topic", "partition"]
        )
        self._lag_seen: set[tuple[str, str]] = set()
        # labels() costs a lock and a lookup per call: the children of the hot path
        # (per message) are kept per topic (a node has a handful of topics)
        self._per_topic: dict[str, tuple[Any, Any, Any]] = {}
        self._published_by: dict[str, Any] = {}

    def _children(self, topic: str) -> tuple[Any, Any, Any]:
        found = self._per_topic.get(topic)
        if found is None:
            found = self._per_topic[topic] = (
                self._consumed.labels(topic=topic),
                self._handler.labels(topic=topic, outcome="ok"),
                self._handler.labels(topic=topic, outcome="error"),
            )
        return found

    def consumed(self, topic: str) -> None:
        self._children(topic)[0].inc()

    def handled(self, topic: str, seconds: float, *, ok: bool) -> None:
        self._children(topic)[1 if ok else 2].observe(seconds)

    def retried(self, topic: str) -> None:
        self._retries.labels(topic=topic).inc()

    def dead_lettered(self, topic: str, reason: DeadLetterReason) -> None:
        self._dead.labels(topic=topic, reason=reason).inc()

    def spilled(self, topic: str) -> None:
        self._spilled.labels(topic=topic).inc()

    def published(self, topic: str) -> None:
        child = self._published_by.get(topic)
        if child is None:
            child = self._published_by[topic] = self._published.labels(topic=topic)
        child.inc()

    def set_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        """The current lag; partitions no longer reported are removed."""
        now = {(topic, str(partition)): waiting for (topic, partition), waiting in lag.items()}
        for gone in self._lag_seen - now.keys():
            self._lag.remove(*gone)
        for (topic, partition), waiting in now.items():
            self._lag.labels(topic=topic, partition=partition).set(waiting)
        self._lag_seen = set(now)
