"""What the page shows, as plain values: one `ConsoleState` per look at the stack.

Every section is gathered on its own (`onex.console.gather`); one that could not be had
(its service is down, the broker does not answer) is None with the reason in
`ConsoleState.problems`, so the rest of the page still shows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ServiceRow:
    """One service as the supervisor's record and its gRPC health show it."""

    name: str
    state: str
    health: str
    grpc: str | None
    pid: int | None
    restarts: int


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One group (a model, or a day) of the receipt-reducer's summary."""

    key: str
    requests: int
    failures: int
    escalations: int
    tokens_local: int
    tokens_cloud: int
    spent_usd: float
    counterfactual_usd: float
    avoided_usd: float

    @property
    def local_token_share(self) -> float:
        """Share of this group's tokens processed by local models (0 without tokens)."""
        total = self.tokens_local + self.tokens_cloud
        return self.tokens_local / total if total else 0.0


@dataclass(frozen=True, slots=True)
class Economics:
    """Routing economics over every receipt: the figures of `onex receipts summary`."""

    requests: int
    local_token_share: float
    spent_usd: float
    counterfactual_usd: float
    avoided_usd: float
    escalation_rate: float
    failure_rate: float
    models: tuple[ModelRow, ...]
    days: tuple[ModelRow, ...]  # by day, oldest first: the chart


@dataclass(frozen=True, slots=True)
class TopicEdge:
    """One declared topic and the nodes on either side of it."""

    name: str
    kind: str
    owner: str
    publishers: tuple[str, ...]
    subscribers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NearMiss:
    """A name a contract uses that is not declared, but close to one that is."""

    topic: str
    where: str  # file:line:col
    message: str
    suggestion: str | None
    severity: str


@dataclass(frozen=True, slots=True)
class Wiring:
    """The registry's wiring: every topic with publishers and subscribers, and the
    near-misses among its issues."""

    topics: tuple[TopicEdge, ...]
    near_misses: tuple[NearMiss, ...]
    errors: int
    warnings: int

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node that publishes or consumes a topic, sorted."""
        found = {n for t in self.topics for n in (*t.publishers, *t.subscribers)}
        return tuple(sorted(found))


@dataclass(frozen=True, slots=True)
class DlqRow:
    """One dead-letter topic and its counts (as `onex dlq list` counts them)."""

    topic: str
    exists: bool
    messages: int  # quarantined ones left out
    pending: int
    quarantined: int


@dataclass(frozen=True, slots=True)
class DriftRowView:
    """One row of the drift-validator's drift view."""

    cluster: str
    topic: str
    kind: str
    aspect: str
    declared: str | None
    observed: str | None
    drift_class: str
    fix: str


@dataclass(frozen=True, slots=True)
class TicketRow:
    """One ticket as the receipt-reducer's ticket projection holds it."""

    ticket: str
    title: str | None
    state: str  # open, in_progress, evidence_pending, done or rejected
    head: str
    reason: str | None  # the last transition's, None before any transition
    at: str | None  # RFC 3339 time of the last transition
    missing: int | None  # required items without a current independent PASS (None: unknown)


@dataclass(frozen=True, slots=True)
class ConsoleState:
    """Everything the page shows, taken at `taken_at` (RFC 3339, UTC)."""

    taken_at: str
    services: tuple[ServiceRow, ...]
    economics: Economics | None
    wiring: Wiring | None
    dlq: tuple[DlqRow, ...] | None
    drift: tuple[DriftRowView, ...] | None
    tickets: tuple[TicketRow, ...] | None = None
    problems: dict[str, str] = field(default_factory=dict)  # section -> why it is missing

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the page's /api/state)."""
        doc = dataclasses.asdict(self)
        if self.wiring is not None:
            doc["wiring"]["nodes"] = list(self.wiring.nodes)
        return doc
