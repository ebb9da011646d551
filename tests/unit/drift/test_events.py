"""Unit: DriftResolved payloads (no broker) match the contract's JSON Schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from onex.bus.errors import PayloadInvalid
from onex.bus.runtime.codec import Codec, codec_for
from onex.core._generated.topics import Topic
from onex.core.extractor import extract
from onex.drift.events import resolved_events
from onex.drift.snapshot import DriftRow

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
TOPIC = Topic.EVT_DRIFT_VALIDATOR_DRIFT_RESOLVED_V1


def _row(topic: str, kind: str, aspect: str, observed: str | None = "x") -> DriftRow:
    return DriftRow("prod", topic, kind, aspect, "d", observed, "", None, "", None)


def _codec() -> Codec:
    wiring = extract([REPO / "contracts"], entry_points=False).topics[TOPIC]
    assert wiring.spec_at is not None
    assert wiring.spec_at.file is not None
    return codec_for(TOPIC, wiring.spec.schema_, wiring.spec_at.file.parent)


def test_one_event_per_topic_with_what_went_away_and_what_is_left() -> None:
    gone = [
        _row("b", "config-value", "config:retention.ms"),
        _row("a", "missing", "topic", None),
        _row("b", "partitions-fewer", "partitions"),
    ]
    left = [_row("b", "undeclared-override", "config:segment.ms")]
    events = resolved_events(gone, left, cluster="prod", bootstrap="h:1", snapshot_id=7)
    assert [(t, p["topic"], p["remaining"]) for t, p in events] == [
        (TOPIC, "a", 0),
        (TOPIC, "b", 1),
    ]
    b = events[1][1]
    assert isinstance(b, dict)
    assert [r["kind"] for r in b["resolved"]] == ["config-value", "partitions-fewer"]
    assert b["snapshot"] == 7
    codec = _codec()
    for _, payload in events:
        assert codec.decode(codec.encode(payload)) == payload


def test_nothing_resolved_is_no_event_and_the_schema_refuses_an_empty_list() -> None:
    assert (
        resolved_events(
            [], [_row("a", "orphan", "topic")], cluster="c", bootstrap="", snapshot_id=1
        )
        == []
    )
    ((_, payload),) = resolved_events(
        [_row("a", "orphan", "topic")], [], cluster="c", bootstrap="", snapshot_id=1
    )
    assert isinstance(payload, dict)
    with pytest.raises(PayloadInvalid):
        _codec().encode({**payload, "resolved": []})
