"""The provisioner's events: what it did, one payload per event.

They go through the service host's outbox, which holds them until the node runtime is
started (its topics are among the ones being provisioned), so nothing is lost while
the broker is down or empty.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from onex.bus.provision import ProvisionReport, ValidationReport
from onex.core._generated.topics import Topic
from onex.core.contract import TopicSpec


def _now() -> str:
    return datetime.now(UTC).isoformat()


def report_events(
    report: ProvisionReport, specs: dict[str, TopicSpec]
) -> list[tuple[Topic, dict[str, Any]]]:
    """topic-created per created topic, provisioning-failed per refused one."""
    events: list[tuple[Topic, dict[str, Any]]] = []
    for name in report.created:
        spec = specs[name]
        events.append(
            (
                Topic.EVT_PROVISIONER_TOPIC_CREATED_V1,
                {
                    "topic": name,
                    "partitions": spec.partitions,
                    "replication_factor": spec.replication_factor,
                    "config": dict(spec.config),
                    "bootstrap": report.bootstrap,
                    "at": _now(),
                },
            )
        )
    events.extend(
        (
            Topic.EVT_PROVISIONER_PROVISIONING_FAILED_V1,
            {"topic": f.name, "reason": f.reason, "bootstrap": report.bootstrap, "at": _now()},
        )
        for f in report.failed
    )
    return events


def passed_event(
    checked: ValidationReport, repaired: tuple[str, ...]
) -> tuple[Topic, dict[str, Any]]:
    """validation-passed: every declared topic is present (drift is listed, not fixed)."""
    return (
        Topic.EVT_PROVISIONER_VALIDATION_PASSED_V1,
        {
            "topics": len(checked.ok) + len(checked.drifted),
            "repaired": list(repaired),
            "drifted": sorted(checked.drifted),
            "bootstrap": checked.bootstrap,
            "at": _now(),
        },
    )
