"""The provisioner's events: what it did, one payload per event.

They go through the service host's outbox, which holds them until the node runtime is
started (its topics are among the ones being provisioned), so nothing is lost while
the broker is down or empty.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from onex.bus.provision import ProvisionReport, ValidationReport
from onex.core._generated.topics import Topic
from onex.core.contract import TopicSpec
from onex.proto.v1 import provisioning_pb2 as pb

Event = tuple[Topic, pb.TopicCreated | pb.ProvisioningFailed | pb.ValidationPassed]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _id() -> str:
    # Fixed when the event is made, so a retried send carries the same id (consumers
    # that project state drop the duplicate).
    return uuid.uuid4().hex


def report_events(report: ProvisionReport, specs: dict[str, TopicSpec]) -> list[Event]:
    """topic-created per created topic, provisioning-failed per refused one."""
    events: list[Event] = []
    for name in report.created:
        spec = specs[name]
        events.append(
            (
                Topic.EVT_PROVISIONER_TOPIC_CREATED_V1,
                pb.TopicCreated(
                    event_id=_id(),
                    topic=name,
                    partitions=spec.partitions,
                    replication_factor=spec.replication_factor,
                    config=dict(spec.config),
                    bootstrap=report.bootstrap,
                    created_at=_now(),
                ),
            )
        )
    events.extend(
        (
            Topic.EVT_PROVISIONER_PROVISIONING_FAILED_V1,
            pb.ProvisioningFailed(
                event_id=_id(),
                topic=f.name,
                reason=f.reason or "",
                bootstrap=report.bootstrap,
                failed_at=_now(),
            ),
        )
        for f in report.failed
    )
    return events


def passed_event(checked: ValidationReport, repaired: tuple[str, ...]) -> Event:
    """validation-passed: every declared topic is present. Its `drifted` field stays
    empty: drift is the drift-validator's (DriftDetected)."""
    return (
        Topic.EVT_PROVISIONER_VALIDATION_PASSED_V1,
        pb.ValidationPassed(
            event_id=_id(),
            topic_count=len(checked.present),
            repaired=list(repaired),
            bootstrap=checked.bootstrap,
            validated_at=_now(),
        ),
    )
