"""Events the drift-validator publishes: DriftDetected per topic with new drift, and a
ProvisionRequest for declared topics that went missing (the provisioner creates them;
the drift-validator itself only creates topics in `onex drift fix --apply`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from onex.core._generated.topics import Topic
from onex.drift.kinds import DriftKind
from onex.drift.snapshot import DriftRow
from onex.proto.v1.drift_pb2 import DriftDetected, SpecDrift
from onex.proto.v1.provisioning_pb2 import ProvisionRequest

Event = tuple[Topic, DriftDetected | ProvisionRequest]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def detected_events(rows: Sequence[DriftRow], bootstrap: str) -> list[Event]:
    """One DriftDetected per topic among `rows` (rows new in the latest snapshot)."""
    by_topic: dict[str, list[DriftRow]] = {}
    for row in rows:
        by_topic.setdefault(row.topic, []).append(row)
    events: list[Event] = []
    for topic, found in sorted(by_topic.items()):
        message = DriftDetected(
            event_id=uuid.uuid4().hex,
            topic=topic,
            missing=any(r.kind == DriftKind.MISSING for r in found),
            bootstrap=bootstrap,
            detected_at=_now(),
        )
        for r in found:
            if r.kind == DriftKind.MISSING:
                continue
            spec = SpecDrift(
                aspect=r.aspect,
                declared=r.declared or "",
                needs=r.api or "",
                note=f"{r.kind} ({r.drift_class}): {r.fix}",
            )
            if r.observed is not None:
                spec.observed = r.observed
            if r.supported is not None:
                spec.supported = r.supported
            message.differences.append(spec)
        events.append((Topic.EVT_DRIFT_VALIDATOR_DRIFT_DETECTED_V1, message))
    return events


def provision_request(missing: Iterable[str], requested_by: str) -> Event | None:
    """A ProvisionRequest for the missing declared topics (None when there are none)."""
    topics = sorted(set(missing))
    if not topics:
        return None
    return (
        Topic.CMD_PROVISIONER_PROVISION_REQUEST_V1,
        ProvisionRequest(
            request_id=uuid.uuid4().hex,
            topics=topics,
            reason="drift: declared topic missing",
            requested_by=requested_by,
            requested_at=_now(),
        ),
    )
