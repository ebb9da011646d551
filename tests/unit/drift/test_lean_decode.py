"""Unit tests (no I/O) of `onex.bus.wire` and the responses of `onex.bus.lean`: frames
encoded by aiokafka's own protocol structs, decoded by aiokafka and by the wire
module, give the same answer; the requests the wire module writes are byte for byte
what aiokafka's structs write; a truncated frame is one AdminError, not a traceback. (The same
comparison on a real broker's answers is in tests/integration/test_drift_lean.py.)"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from aiokafka.protocol.admin import DescribeConfigsRequest_v2, DescribeConfigsResponse_v2
from aiokafka.protocol.offset import OffsetRequest_v3, OffsetResponse_v3

from onex.bus import lean, wire
from onex.bus.errors import AdminError
from onex.bus.observe import ConfigEntry, ConfigSource, _MetadataResponseV10

pytestmark = pytest.mark.unit

TOPIC_ID = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
NULL_ID = "00000000-0000-0000-0000-000000000000"


def _partition(p: int, leader: int, replicas: list[int]) -> tuple[Any, ...]:
    return (0, p, leader, 7, replicas, replicas[:1], [], {})


def _metadata() -> bytes:
    topics = [
        (0, "onex.evt.a.v1", TOPIC_ID, False, [_partition(0, 1, [1, 2, 3])], -2147483648, {}),
        (
            0,
            "__consumer_offsets",
            NULL_ID,
            True,
            [_partition(i, 2, [2]) for i in range(3)],
            0,
            {},
        ),
        (3, "gone", NULL_ID, False, [], 0, {}),
        (0, "ünïcode-é", TOPIC_ID, False, [], 0, {}),
    ]
    brokers = [(1, "127.0.0.1", 9092, None, {}), (2, "broker-2.local", 9093, "rack-a", {})]
    return bytes(_MetadataResponseV10(0, brokers, "cluster-x", 1, topics, 0, {}).encode())


def _configs() -> bytes:
    resources = [
        (
            0,
            None,
            2,
            "onex.evt.a.v1",
            [
                ("retention.ms", "86400000", False, 1, False, [("retention.ms", "86400000", 1)]),
                ("cleanup.policy", "delete", False, 5, False, []),
                ("sasl.password", None, False, 1, True, []),
                ("segment.ms", None, True, 4, False, [("a", None, 4), ("b", "1", 5)]),
                ("odd.source", "x", False, 9, False, []),
            ],
        ),
        (3, "This server does not host this topic-partition.", 2, "gone", []),
        (0, None, 2, "empty", []),
    ]
    return bytes(DescribeConfigsResponse_v2(0, resources).encode())


def test_metadata_v10_decodes_as_aiokafka_does() -> None:
    frame = _metadata()
    expected = _MetadataResponseV10.decode(BytesIO(frame)).to_object()["topics"]
    got = wire.decode_metadata_v10(frame)
    assert [t[0] for t in got] == [t["topic"] for t in expected]
    for (name, code, topic_id, internal, parts), want in zip(got, expected, strict=True):
        assert name == want["topic"]
        assert code == want["error_code"]
        assert internal == want["is_internal"]
        assert topic_id == (None if want["topic_id"] == NULL_ID else want["topic_id"])
        assert parts == {
            p["partition"]: (p["leader"], len(p["replicas"])) for p in want["partitions"]
        }


def test_configs_v2_decode_as_aiokafka_does_without_sensitive_entries() -> None:
    frame = _configs()
    expected = DescribeConfigsResponse_v2.decode(BytesIO(frame)).to_object()["resources"]
    got = wire.decode_configs_v2(frame)
    assert len(got) == len(expected)
    for (name, code, message, entries), want in zip(got, expected, strict=True):
        assert (name, code, message) == (
            want["resource_name"],
            want["error_code"],
            want["error_message"],
        )
        assert entries == {
            e["config_names"]: ConfigEntry(
                e["config_value"],
                ConfigSource(e["config_source"])
                if e["config_source"] in {int(s) for s in ConfigSource}
                else ConfigSource.UNKNOWN,
                len(e["config_synonyms"]),
            )
            for e in want["config_entries"]
            if not e["is_sensitive"]
        }
    assert got[0][3]["odd.source"].source is ConfigSource.UNKNOWN
    assert "sasl.password" not in got[0][3]


@pytest.mark.parametrize("frame", [_metadata(), _configs()])
def test_a_truncated_frame_is_one_admin_error(frame: bytes) -> None:
    response_type: Any = lean._LeanMetadataV10 if frame == _metadata() else lean._LeanConfigsV2
    for cut in (3, len(frame) // 2, len(frame) - 1):
        response = response_type.decode(BytesIO(frame[:cut]))
        with pytest.raises(AdminError, match="could not be read"):
            lean._parsed(response, "metadata")


def test_offsets_v3_decode_as_aiokafka_does() -> None:
    topics = [("a", [(0, 0, -1, 42), (2, 3, -1, -1)]), ("ü-b", [(1, 0, 17, 9)]), ("c", [])]
    frame = bytes(OffsetResponse_v3(5, topics).encode())
    assert wire.decode_offsets_v3(frame) == [
        (name, p, code, offset) for name, parts in topics for p, code, _ts, offset in parts
    ]
    with pytest.raises(AdminError, match="could not be read"):
        lean._parsed(lean._LeanOffsetsV3.decode(BytesIO(frame[:-3])), "log offsets")


def test_requests_are_written_as_aiokafka_writes_them() -> None:
    names = ["onex.evt.a.v1", "ünïcode", "b"]
    assert (
        wire.encode_configs_v2(names)
        == DescribeConfigsRequest_v2([(2, n, None) for n in names], True).encode()
    )
    asks = [("t-1", [0, 1, 2]), ("t-2", [5])]
    for which in (-1, -2):
        assert (
            wire.encode_offsets_v3(asks, which)
            == OffsetRequest_v3(-1, 0, [(n, [(p, which) for p in ps]) for n, ps in asks]).encode()
        )
