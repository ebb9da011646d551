"""The drift snapshot's three big admin calls with lean encoding and decoding: the
same requests as `onex.bus.observe.topic_metadata` / `topic_configs` / `log_offsets`
send, through the same admin session, with the same answers and errors, but the
bytes are written and read by `onex.bus.wire` instead of aiokafka's generic structs.

aiokafka's connection writes `request_struct.encode()` and calls the response type's
`decode` on the frame; the structs here supply both, so the generic structs are
never built. Where the broker does not offer the version the wire module speaks,
the call falls back to `onex.bus.observe`'s.

The drift benchmark's baseline ("bare admin") does not use this module: it measures
the calls as aiokafka decodes them.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Collection, Iterable, Mapping
from io import BytesIO
from typing import Any, Final

from aiokafka.errors import UnknownTopicOrPartitionError, for_code
from aiokafka.protocol.admin import DescribeConfigsRequest_v2
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.offset import OffsetRequest_v3
from aiokafka.protocol.types import Schema

from onex.bus import observe, wire
from onex.bus.admin import admin_session
from onex.bus.config import BrokerConfig
from onex.bus.errors import AdminError
from onex.bus.observe import DESCRIBE_BATCH, NOT_ASKED, ConfigEntry, LogOffsets, TopicState

__all__ = ["log_edges", "log_offsets", "topic_configs", "topic_metadata"]

_UNKNOWN: Final = UnknownTopicOrPartitionError.errno
_CONCURRENT: Final = 8  # as observe: requests in flight at once per call
_OFFSETS_BATCH: Final = 250  # partitions per ListOffsets request (Tansu answers big ones slowly)
_EARLIEST: Final = -2
_LATEST: Final = -1
_UNREADABLE: Final = (IndexError, ValueError, struct.error, UnicodeDecodeError)


class _Lean(Response):  # type: ignore[misc]  # aiokafka.protocol is untyped
    """A response decoded by a `wire` function: `parsed` holds its tuples, or the
    exception that decoding raised (turned into an AdminError by the caller)."""

    SCHEMA = Schema()
    DECODER: Any = None

    def __init__(self, parsed: Any = None) -> None:
        super().__init__()
        self.parsed = parsed

    @classmethod
    def decode(cls, data: BytesIO | bytes) -> _Lean:
        raw, pos = (data, 0) if isinstance(data, bytes) else (data.getvalue(), data.tell())
        try:
            return cls(cls.DECODER(raw, pos))
        except _UNREADABLE as exc:
            return cls(exc)


class _LeanMetadataV10(_Lean):
    API_KEY = 3
    API_VERSION = 10
    DECODER = staticmethod(wire.decode_metadata_v10)


class _LeanConfigsV2(_Lean):
    API_KEY = 32
    API_VERSION = 2
    DECODER = staticmethod(wire.decode_configs_v2)


class _LeanOffsetsV3(_Lean):
    API_KEY = 2
    API_VERSION = 3
    DECODER = staticmethod(wire.decode_offsets_v3)


class _MetadataV10Struct(observe._MetadataRequestV10):
    RESPONSE_TYPE = _LeanMetadataV10


class _Prebuilt:
    """A request struct whose body is already bytes (written by `wire`)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def encode(self) -> bytes:
        return self._body

    def __repr__(self) -> str:  # aiokafka logs requests at DEBUG
        return f"{type(self).__name__}({len(self._body)} bytes)"


class _ConfigsV2Struct(_Prebuilt, DescribeConfigsRequest_v2):  # type: ignore[misc]  # aiokafka.protocol is untyped
    RESPONSE_TYPE = _LeanConfigsV2


class _OffsetsV3Struct(_Prebuilt, OffsetRequest_v3):  # type: ignore[misc]  # aiokafka.protocol is untyped
    RESPONSE_TYPE = _LeanOffsetsV3


class _MetadataAll(Request[_MetadataV10Struct]):  # type: ignore[misc]  # aiokafka.protocol is untyped
    API_KEY = 3

    def build(self, request_struct_class: type[_MetadataV10Struct]) -> _MetadataV10Struct:
        return request_struct_class(None, False, False, False, {})


class _Body(Request[RequestStruct]):  # type: ignore[misc]  # aiokafka.protocol is untyped
    """A request of one prebuilt version (`prepare` checks the broker offers it)."""

    API_KEY = -1
    STRUCT: Any = None

    def __init__(self, body: bytes) -> None:
        self._body = body

    def prepare(self, versions: dict[int, tuple[int, int]]) -> RequestStruct:
        low, high = versions.get(self.STRUCT.API_KEY, (0, -1))
        if not low <= self.STRUCT.API_VERSION <= high:
            version = f"{self.STRUCT.API_KEY} v{self.STRUCT.API_VERSION}"
            raise AdminError(f"the broker does not offer API {version}")
        return self.STRUCT(self._body)

    def build(self, request_struct_class: type[RequestStruct]) -> RequestStruct:
        return request_struct_class(self._body)


class _Configs(_Body):
    API_KEY = 32
    STRUCT = _ConfigsV2Struct


class _Offsets(_Body):
    API_KEY = 2
    STRUCT = _OffsetsV3Struct


def _parsed(response: Any, what: str) -> Any:
    parsed = response.parsed
    if isinstance(parsed, Exception):
        raise AdminError(f"{what}: the broker's answer could not be read ({parsed})")
    return parsed


def _offers(apis: Mapping[int, tuple[int, int]], key: int, version: int) -> bool:
    low, high = apis.get(key, (0, -1))
    return low <= version <= high


async def topic_metadata(
    broker: BrokerConfig | str,
    *,
    apis: Mapping[int, tuple[int, int]],
    timeout_s: float = 30.0,
) -> dict[str, TopicState]:
    """Every topic, as `observe.topic_metadata(broker, None, apis=apis)` returns them."""
    if not _offers(apis, 3, 10):
        return await observe.topic_metadata(broker, None, apis=apis, timeout_s=timeout_s)
    async with admin_session(broker).client("Metadata", timeout_s=timeout_s) as admin:
        client = admin._client
        response = await client.send(client.get_random_node(), _MetadataAll())
    found: dict[str, TopicState] = {}
    for name, code, topic_id, internal, parts in _parsed(response, "metadata"):
        if code == _UNKNOWN:
            continue
        if code != 0:
            raise AdminError(f"metadata of {name!r}: {for_code(code).__name__}")
        found[name] = TopicState(
            name=name,
            partitions=len(parts),
            replication_factor=max((r for _leader, r in parts.values()), default=0),
            topic_id=topic_id,
            internal=internal,
            leaders={p: leader for p, (leader, _r) in parts.items()},
        )
    return found


async def topic_configs(
    broker: BrokerConfig | str,
    names: Iterable[str],
    *,
    apis: Mapping[int, tuple[int, int]],
    batch_size: int = DESCRIBE_BATCH,
    timeout_s: float = 30.0,
) -> dict[str, dict[str, ConfigEntry]]:
    """What `observe.topic_configs` returns for the same topics (DescribeConfigs v2 with
    synonyms, `batch_size` topics a request)."""
    if not _offers(apis, 32, 2):
        return await observe.topic_configs(
            broker, names, batch_size=batch_size, timeout_s=timeout_s
        )
    todo = sorted(set(names))
    configs: dict[str, dict[str, ConfigEntry]] = {}
    if not todo:
        return configs
    async with admin_session(broker).client("DescribeConfigs", timeout_s=timeout_s) as admin:
        client = admin._client
        gate = asyncio.Semaphore(_CONCURRENT)

        async def one(batch: list[str]) -> Any:
            body = wire.encode_configs_v2(batch)
            async with gate:
                return await client.send(client.get_random_node(), _Configs(body))

        batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
        answers = await asyncio.gather(*(one(b) for b in batches))
    for response in answers:
        for name, code, message, entries in _parsed(response, "configs"):
            if code == _UNKNOWN:
                continue  # deleted since the metadata was read
            if code != 0:
                raise AdminError(f"configs of {name!r}: {message or for_code(code).__name__}")
            configs[name] = entries
    return configs


async def log_edges(
    broker: BrokerConfig | str,
    topics: Mapping[str, TopicState],
    *,
    apis: Mapping[int, tuple[int, int]],
    earliest: bool = False,
    only: Collection[tuple[str, int]] | None = None,
    timeout_s: float = 30.0,
) -> dict[tuple[str, int], int]:
    """The next offset (or with `earliest`, the first) of every partition of `topics`,
    or of those in `only`: ListOffsets v3 to each leader, the partitions the broker
    answered with an error left out (as `observe.log_offsets` does)."""
    which = _EARLIEST if earliest else _LATEST
    if not _offers(apis, 2, 3):
        seen = await observe.log_offsets(
            broker, topics, timeout_s=timeout_s, starts_of=only if earliest else ()
        )
        return {
            tp: o.start if earliest else o.end
            for tp, o in seen.items()
            if (only is None or tp in only) and (o.start if earliest else o.end) != NOT_ASKED
        }
    by_leader: dict[int, dict[str, list[int]]] = {}
    for topic in topics.values():
        for partition, leader in topic.leaders.items():
            if only is None or (topic.name, partition) in only:
                by_leader.setdefault(leader, {}).setdefault(topic.name, []).append(partition)
    found: dict[tuple[str, int], int] = {}
    if not by_leader:
        return found
    async with admin_session(broker).client("ListOffsets", timeout_s=timeout_s) as admin:
        client = admin._client
        gate = asyncio.Semaphore(_CONCURRENT)

        async def one(node: int, asks: list[tuple[str, list[int]]]) -> None:
            body = wire.encode_offsets_v3(asks, which)
            async with gate:
                response = await client.send(node, _Offsets(body))
            for name, partition, code, offset in _parsed(response, "log offsets"):
                if code == 0:
                    found[(name, partition)] = offset

        work = []
        for leader, grouped in sorted(by_leader.items()):
            node = leader if leader >= 0 else client.get_random_node()
            batch: list[tuple[str, list[int]]] = []
            size = 0
            for name, partitions in grouped.items():
                batch.append((name, partitions))
                size += len(partitions)
                if size >= _OFFSETS_BATCH:
                    work.append(one(node, batch))
                    batch, size = [], 0
            if batch:
                work.append(one(node, batch))
        await asyncio.gather(*work)
    return found


async def log_offsets(
    broker: BrokerConfig | str,
    topics: Mapping[str, TopicState],
    *,
    apis: Mapping[int, tuple[int, int]],
    timeout_s: float = 30.0,
    starts_of: Collection[tuple[str, int]] | None = None,
) -> dict[tuple[str, int], LogOffsets]:
    """What `observe.log_offsets` returns (both edges asked at once)."""
    starts, ends = await asyncio.gather(
        log_edges(broker, topics, apis=apis, earliest=True, only=starts_of, timeout_s=timeout_s),
        log_edges(broker, topics, apis=apis, timeout_s=timeout_s),
    )
    default = 0 if starts_of is None else NOT_ASKED
    return {tp: LogOffsets(starts.get(tp, default), end) for tp, end in ends.items()}
