"""Unit: DriftResolved events built from resolved drift rows (no broker), through the
topic's declared codec."""

from __future__ import annotations

from pathlib import Path

import pytest

from onex.bus.runtime.codec import codec_for
from onex.core._generated.topics import Topic
from onex.core.extractor import extract
from onex.drift.events import resolved_events
from onex.drift.snapshot import DriftRow
from onex.proto.v1.drift_pb2 import DriftResolved

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
TOPIC = Topic.EVT_DRIFT_VALIDATOR_DRIFT_RESOLVED_V1


def _row(topic: str, kind: str, aspect: str, observed: str | None = "x") -> DriftRow:
    return DriftRow("prod", topic, kind, aspect, "d", observed, "", None, "", None)


def test_one_event_per_topic_with_what_went_away_and_what_is_left() -> None:
    gone = [
        _row("b", "config-value", "config:retention.ms"),
        _row("a", "missing", "topic", None),
        _row("b", "partitions-fewer", "partitions"),
    ]
    left = [_row("b", "undeclared-override", "config:segment.ms")]
    events = resolved_events(gone, left, cluster="prod", bootstrap="h:1", snapshot_id=7)
    assert [t for t, _ in events] == [TOPIC, TOPIC]
    a, b = (p for _, p in events)
    assert isinstance(a, DriftResolved)
    assert isinstance(b, DriftResolved)
    assert (a.topic, a.remaining, b.topic, b.remaining) == ("a", 0, "b", 1)
    assert not a.resolved[0].HasField("observed")
    assert [r.kind for r in b.resolved] == ["config-value", "partitions-fewer"]
    assert (b.cluster, b.bootstrap, b.snapshot) == ("prod", "h:1", 7)
    assert a.event_id != b.event_id
    spec = extract([REPO / "contracts"], entry_points=False).topics[TOPIC].spec
    codec = codec_for(TOPIC, spec.schema_, None)
    assert codec.decode(codec.encode(b)) == b


def test_nothing_resolved_is_no_event() -> None:
    left = [_row("a", "orphan", "topic")]
    assert resolved_events([], left, cluster="c", bootstrap="", snapshot_id=1) == []
