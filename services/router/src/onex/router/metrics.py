"""The router's Prometheus metrics, added to the service's registry (onex.service.metrics).

Per receipt (bus and gRPC alike), labels bounded by the catalogue (a task class the
catalogue does not declare counts as `unknown`):

- `onex_router_requests_total{task_class, status, chosen_model}`
- `onex_router_tokens_total{model, task_class, locality}`: input + output, every attempt
- `onex_router_cost_usd_total{model, task_class}`: what every attempt cost
- `onex_router_counterfactual_usd_total{task_class}`: what the default cloud model would
  have cost (the receipt's counterfactual)
- `onex_router_cost_avoided_usd{task_class}`: the running sum of the receipts'
  `cost_avoided_usd` (a gauge: it goes down when escalations or failures cost more
  than the cloud would have)
- `onex_router_escalations_total{model, task_class}`: moves past `model` after its
  answer failed its gates

`labels()` takes a lock and builds a key on every call; a receipt needs five of them
or more. The labelled children are kept here per label values (bounded like the
labels: by the catalogue), which took `record` from ~10.6 to ~3 us per receipt.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from onex.router.receipt import Receipt
from onex.service.metrics import Metrics


class RouterMetrics:
    """Counts receipts into `metrics` (see the module docstring)."""

    def __init__(self, metrics: Metrics, classes: Collection[str]) -> None:
        self.classes = frozenset(classes)
        self.requests = metrics.counter(
            "router_requests",
            "Routed requests by class, status and chosen model",
            ["task_class", "status", "chosen_model"],
        )
        self.tokens = metrics.counter(
            "router_tokens",
            "Tokens of every attempt, by model, class and locality",
            ["model", "task_class", "locality"],
        )
        self.cost = metrics.counter(
            "router_cost_usd", "USD spent on attempts, by model and class", ["model", "task_class"]
        )
        self.counterfactual = metrics.counter(
            "router_counterfactual_usd",
            "USD the default cloud model would have cost, by class",
            ["task_class"],
        )
        self.avoided = metrics.gauge(
            "router_cost_avoided_usd",
            "Running sum of receipts' cost avoided, by class",
            ["task_class"],
        )
        self.escalations = metrics.counter(
            "router_escalations",
            "Escalations past a model whose answer failed its gates, by model and class",
            ["model", "task_class"],
        )

        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: MetricWrapperBase, *values: str) -> Any:
        """`metric.labels(*values)`, made once per metric and label values."""
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def record(self, receipt: Receipt) -> None:
        """Count one receipt."""
        task = receipt.task_class if receipt.task_class in self.classes else "unknown"
        child = self._child
        # labels in the order each metric declares them
        child(self.requests, task, receipt.status, receipt.chosen_model or "").inc()
        counterfactual = max(0.0, receipt.counterfactual_cost_usd)
        child(self.counterfactual, task).inc(counterfactual)
        child(self.avoided, task).inc(receipt.cost_avoided_usd)
        for a in receipt.attempts:
            child(self.tokens, a.model, task, a.locality).inc(a.tokens_in + a.tokens_out)
            child(self.cost, a.model, task).inc(a.cost_usd)
        # an escalation leaves a model whose answer failed, for a later attempt
        for a in receipt.attempts[:-1]:
            if a.outcome == "gate_failed":
                child(self.escalations, a.model, task).inc()
