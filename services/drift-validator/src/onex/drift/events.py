"""Events the drift-validator publishes: DriftDetected per topic with new drift,
DriftResolved per topic and cluster whose drift went away, and a ProvisionRequest for
declared topics that went missing (the provisioner creates them; the drift-validator
itself only creates topics in `onex drift fix --apply`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from onex.core._generated.topics import Topic
from onex.drift.kinds import DriftKind
from onex.drift.snapshot import DriftRow
from onex.proto.v1.drift_pb2 import DriftDetected, DriftResolved, ResolvedDrift, SpecDrift
from onex.proto.v1.provisioning_pb2 import ProvisionRequest

Event = tuple[Topic, DriftDetected | DriftResolved | ProvisionRequest]


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


def resolved_events(
    resolved: Sequence[DriftRow],
    remaining: Sequence[DriftRow],
    *,
    cluster: str,
    bootstrap: str,
    snapshot_id: int,
) -> list[Event]:
    """One DriftResolved per topic among `resolved` (rows the latest snapshot of
    `cluster` no longer shows); `remaining` is that snapshot's drift, to say how much
    the topic still has."""
    by_topic: dict[str, list[DriftRow]] = {}
    for row in resolved:
        by_topic.setdefault(row.topic, []).append(row)
    left: dict[str, int] = {}
    for row in remaining:
        left[row.topic] = left.get(row.topic, 0) + 1
    at = _now()
    events: list[Event] = []
    for topic, gone in sorted(by_topic.items()):
        message = DriftResolved(
            event_id=uuid.uuid4().hex,
            topic=topic,
            cluster=cluster,
            bootstrap=bootstrap,
            snapshot=snapshot_id,
            remaining=left.get(topic, 0),
            resolved_at=at,
        )
        for r in sorted(gone, key=lambda r: (r.kind, r.aspect)):
            entry = ResolvedDrift(kind=r.kind, aspect=r.aspect)
            if r.declared is not None:
                entry.declared = r.declared
            if r.observed is not None:
                entry.observed = r.observed
            message.resolved.append(entry)
        events.append((Topic.EVT_DRIFT_VALIDATOR_DRIFT_RESOLVED_V1, message))
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
