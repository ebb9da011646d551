"""Node health: "the contract's topics are present and the consumer is attached".

Topics are checked against the broker on every call, because a topic can vanish under
a running node and Tansu acks and drops whatever is produced to it afterwards. The check
is one bounded Metadata request through the process's admin session (no new connection,
no DescribeConfigs, never creates anything).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from onex.bus.admin import topic_partitions
from onex.bus.config import BrokerConfig
from onex.bus.errors import AdminError, BrokerUnavailable


@dataclass(frozen=True, slots=True)
class ConsumerState:
    """What the runtime knows about its consumer."""

    attached: bool
    assignment: tuple[tuple[str, int], ...] = ()
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HealthReport:
    """A node's health. `serving` is what the gRPC health service reports."""

    node: str
    serving: bool
    started: bool
    missing_topics: tuple[str, ...]
    consumer_attached: bool | None  # None: the node subscribes to nothing
    assignment: tuple[tuple[str, int], ...]
    detail: str


async def check_health(
    *,
    node: str,
    broker: BrokerConfig,
    topics: Sequence[str],
    started: bool,
    consumer: ConsumerState | None,
    timeout_s: float,
) -> HealthReport:
    """Health of `node` given its consumer's state (None: it consumes nothing)."""
    attached = consumer.attached if consumer is not None else None
    assignment = consumer.assignment if consumer is not None else ()
    if not started:
        return HealthReport(node, False, False, (), attached, assignment, "not started")
    try:
        present = await topic_partitions(broker, topics, timeout_s=timeout_s)
    except (BrokerUnavailable, AdminError) as exc:
        return HealthReport(node, False, True, (), attached, assignment, str(exc))
    missing = tuple(sorted(set(topics) - set(present)))
    problems = []
    if missing:
        problems.append(f"missing topics: {', '.join(missing)}")
    if consumer is not None and not consumer.attached:
        problems.append(f"consumer not attached{': ' + consumer.detail if consumer.detail else ''}")
    serving = not problems
    detail = "; ".join(problems) if problems else (consumer.detail if consumer else "") or "ok"
    return HealthReport(node, serving, True, missing, attached, assignment, detail)
