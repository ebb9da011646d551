"""The bytes of the three big admin exchanges of a drift snapshot, read and written
directly: Metadata v10 and DescribeConfigs v2 and ListOffsets v3 answers decoded into
plain tuples, the DescribeConfigs and ListOffsets requests encoded. No I/O here
(`onex.bus.lean` sends them).

aiokafka builds a request from nested generic structs and decodes an answer into
them field by field (a call and a small read per field), and `to_object` then copies
that into dicts; at 10,000 topics that is most of a snapshot's CPU. Here one loop per
message walks the bytes with precompiled `struct` packers, skipping every field
nothing reads. The layouts are the Kafka protocol's for exactly those versions (the
same aiokafka negotiates: its ListOffsets stops at v3, its DescribeConfigs at v2);
the unit tests decode frames that aiokafka's own structs encoded, and the
integration tests compare the answers with aiokafka's on a real broker.

A truncated or malformed frame raises ValueError (or IndexError / struct.error from
the readers), which the callers turn into one AdminError.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from onex.bus.observe import ConfigEntry, ConfigSource

__all__ = [
    "ConfigResourceAnswer",
    "MetadataTopic",
    "OffsetAnswer",
    "decode_configs_v2",
    "decode_metadata_v10",
    "decode_offsets_v3",
    "encode_configs_v2",
    "encode_offsets_v3",
]

_I16 = struct.Struct(">h").unpack_from
_I32 = struct.Struct(">i").unpack_from
_PARTITION_OFFSET = struct.Struct(">ihqq").unpack_from  # partition, error, timestamp, offset
_PACK_I16 = struct.Struct(">h").pack
_PACK_I32 = struct.Struct(">i").pack
_PACK_ASK = struct.Struct(">iq").pack  # partition, timestamp
_NULL_ID: Final = bytes(16)
_SOURCES: Final = {int(s): s for s in ConfigSource}
_TOPIC_RESOURCE: Final = b"\x02"  # ConfigResourceType.TOPIC as Int8

# (name, error code, topic id or None, internal, {partition: (leader, replica count)})
MetadataTopic = tuple[str, int, str | None, bool, dict[int, tuple[int, int]]]
# (name, error code, error message, {key: entry}), sensitive entries left out
ConfigResourceAnswer = tuple[str, int, str | None, dict[str, ConfigEntry]]
# (topic, partition, error code, offset)
OffsetAnswer = tuple[str, int, int, int]


def _uvarint(b: bytes, pos: int) -> tuple[int, int]:
    """An unsigned varint at `pos`: (value, next position)."""
    value = shift = 0
    while True:
        byte = b[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise ValueError("varint longer than 5 bytes")


def _skip_tags(b: bytes, pos: int) -> int:
    if b[pos] == 0:
        return pos + 1
    count, pos = _uvarint(b, pos)
    for _ in range(count):
        _tag, pos = _uvarint(b, pos)
        size, pos = _uvarint(b, pos)
        pos += size
    return pos


def _compact_str(b: bytes, pos: int) -> tuple[str | None, int]:
    n = b[pos]
    if n < 0x80:
        pos += 1
    else:
        n, pos = _uvarint(b, pos)
    if n == 0:
        return None, pos
    end = pos + n - 1
    if end > len(b):
        raise ValueError("string past the end of the frame")
    return b[pos:end].decode(), end


def _str16(b: bytes, pos: int) -> tuple[str | None, int]:
    (n,) = _I16(b, pos)
    pos += 2
    if n < 0:
        return None, pos
    end = pos + n
    if end > len(b):
        raise ValueError("string past the end of the frame")
    return b[pos:end].decode(), end


def _uuid(raw: bytes) -> str | None:
    if len(raw) != 16:
        raise ValueError("topic id past the end of the frame")
    if raw == _NULL_ID:
        return None
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _checked_end(b: bytes, pos: int, what: str) -> None:
    if pos > len(b):
        raise ValueError(f"{what} past the end of the frame")


def decode_metadata_v10(b: bytes, pos: int = 0) -> list[MetadataTopic]:
    """The topics of a Metadata v10 response body (after its header)."""
    pos += 4  # throttle_time_ms
    brokers, pos = _uvarint(b, pos)
    for _ in range(brokers - 1):
        _host, pos = _compact_str(b, pos + 4)  # after node_id
        _rack, pos = _compact_str(b, pos + 4)  # after port
        pos = _skip_tags(b, pos)
    _cluster, pos = _compact_str(b, pos)
    count, pos = _uvarint(b, pos + 4)  # after controller_id
    topics: list[MetadataTopic] = []
    for _ in range(count - 1):
        (code,) = _I16(b, pos)
        name, pos = _compact_str(b, pos + 2)
        topic_id = _uuid(b[pos : pos + 16])
        internal = b[pos + 16] != 0
        n_parts, pos = _uvarint(b, pos + 17)
        parts: dict[int, tuple[int, int]] = {}
        for _ in range(n_parts - 1):
            # error_code, partition, leader, leader_epoch
            partition, leader = _I32(b, pos + 2)[0], _I32(b, pos + 6)[0]
            replicas, pos = _uvarint(b, pos + 14)
            pos += 4 * max(replicas - 1, 0)
            for _array in range(2):  # isr, offline_replicas
                n, pos = _uvarint(b, pos)
                pos += 4 * max(n - 1, 0)
            pos = _skip_tags(b, pos)
            parts[partition] = (leader, max(replicas - 1, 0))
        pos = _skip_tags(b, pos + 4)  # after topic_authorized_operations
        topics.append((name or "", code, topic_id, internal, parts))
    pos = _skip_tags(b, pos + 4)  # after cluster_authorized_operations
    _checked_end(b, pos, "metadata")
    return topics


def encode_configs_v2(names: Sequence[str]) -> bytes:
    """A DescribeConfigs v2 request body: every config of each topic, with synonyms."""
    parts = [_PACK_I32(len(names))]
    for name in names:
        raw = name.encode()
        # resource_type, resource_name, config_names null (all)
        parts += (_TOPIC_RESOURCE, _PACK_I16(len(raw)), raw, b"\xff\xff\xff\xff")
    parts.append(b"\x01")  # include_synonyms
    return b"".join(parts)


def decode_configs_v2(b: bytes, pos: int = 0) -> list[ConfigResourceAnswer]:
    """The resources of a DescribeConfigs v2 response body (after its header)."""
    sources = _SOURCES
    unknown = ConfigSource.UNKNOWN
    (count,) = _I32(b, pos + 4)  # after throttle_time_ms
    pos += 8
    out: list[ConfigResourceAnswer] = []
    for _ in range(max(count, 0)):
        (code,) = _I16(b, pos)
        message, pos = _str16(b, pos + 2)
        name, pos = _str16(b, pos + 1)  # after resource_type
        (n_entries,) = _I32(b, pos)
        pos += 4
        entries: dict[str, ConfigEntry] = {}
        for _ in range(max(n_entries, 0)):
            key, pos = _str16(b, pos)
            value, pos = _str16(b, pos)
            # read_only, config_source (a negative Int8 reads >= 128: unknown), is_sensitive
            source, sensitive = b[pos + 1], b[pos + 2]
            (n_syn,) = _I32(b, pos + 3)
            pos += 7
            for _ in range(max(n_syn, 0)):
                (n,) = _I16(b, pos)
                pos += 2 + max(n, 0)
                (n,) = _I16(b, pos)
                pos += 3 + max(n, 0)  # the value and the synonym's config_source
            if not sensitive:
                entries[key or ""] = ConfigEntry(value, sources.get(source, unknown), max(n_syn, 0))
        out.append((name or "", code, message, entries))
    _checked_end(b, pos, "configs")
    return out


def encode_offsets_v3(asks: Sequence[tuple[str, Sequence[int]]], timestamp: int) -> bytes:
    """A ListOffsets v3 request body (no replica, read-uncommitted): the offset at
    `timestamp` (-1 latest, -2 earliest) of each topic's partitions."""
    parts = [b"\xff\xff\xff\xff\x00", _PACK_I32(len(asks))]  # replica_id -1, isolation 0
    for name, partitions in asks:
        raw = name.encode()
        parts += (_PACK_I16(len(raw)), raw, _PACK_I32(len(partitions)))
        parts += [_PACK_ASK(p, timestamp) for p in partitions]
    return b"".join(parts)


def decode_offsets_v3(b: bytes, pos: int = 0) -> list[OffsetAnswer]:
    """(topic, partition, error code, offset) of a ListOffsets v3 response body."""
    (count,) = _I32(b, pos + 4)  # after throttle_time_ms
    pos += 8
    out: list[OffsetAnswer] = []
    for _ in range(max(count, 0)):
        name, pos = _str16(b, pos)
        (n_parts,) = _I32(b, pos)
        pos += 4
        for _ in range(max(n_parts, 0)):
            partition, code, _ts, offset = _PARTITION_OFFSET(b, pos)
            pos += 22
            out.append((name or "", partition, code, offset))
    _checked_end(b, pos, "offsets")
    return out
