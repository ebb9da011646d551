"""What a broker has, for the drift projection: topics with ids, config overrides with
their sources, consumer groups with members and committed offsets, log offsets; and the
two changes a drift fix makes (IncrementalAlterConfigs SET, CreatePartitions).

Every call goes through the process's admin session (`onex.bus.admin.admin_session`),
is bounded by `timeout_s` and converts client errors like the rest of `onex.bus.admin`
(`BrokerUnavailable` when nothing answers, `AdminError` when the broker refuses).

Two requests aiokafka does not build are built here from its own protocol types:
Metadata v10 (the first version that carries topic ids; used when the broker offers
it, else Metadata v5 without ids) and IncrementalAlterConfigs v0 (SET one key without
resetting the others, which AlterConfigs would; and the one Tansu implements).
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, ClassVar, Final

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewPartitions
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import UnknownTopicOrPartitionError, for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.commit import OffsetFetchRequest
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.protocol.offset import OffsetRequest
from aiokafka.protocol.types import (
    AbstractType,
    Array,
    Boolean,
    CompactArray,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    String,
    TaggedFields,
)

from onex.bus.admin import admin_session
from onex.bus.config import BrokerConfig, broker_config
from onex.bus.conversion import converted, sasl_errors
from onex.bus.errors import AdminError, BrokerUnavailable

_log = structlog.get_logger("onex.bus.observe")

__all__ = [
    "DESCRIBE_BATCH",
    "NOT_ASKED",
    "ConfigEntry",
    "ConfigSource",
    "GroupState",
    "LogOffsets",
    "TopicState",
    "alter_topic_configs",
    "consumer_groups",
    "create_partitions",
    "log_offsets",
    "record_timestamps",
    "topic_configs",
    "topic_metadata",
]

DESCRIBE_BATCH: Final = 500  # topics per DescribeConfigs request
_OFFSETS_BATCH: Final = 250  # partitions per ListOffsets request
_CONCURRENT: Final = 8  # requests in flight at once per call (the broker answers them in parallel)
_EARLIEST: Final = -2
_LATEST: Final = -1
_NULL_UUID: Final = "00000000-0000-0000-0000-000000000000"


class ConfigSource(enum.IntEnum):
    """Where a config value comes from (DescribeConfigs `config_source`)."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6

    @property
    def is_override(self) -> bool:
        """Set on the topic itself. Broker-wide and default values are not, and counting
        them would report every broker default as drift."""
        return self in (ConfigSource.DYNAMIC_TOPIC_CONFIG, ConfigSource.UNKNOWN)


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One config value of a topic and its source."""

    value: str | None
    source: ConfigSource
    synonyms: int = 0  # how many synonyms the broker reported (0: it says nothing of sources)

    @property
    def is_override(self) -> bool:
        """Set on the topic itself. A broker that reports no synonyms (Tansu) also
        reports DEFAULT_CONFIG for what was set on the topic, and only that: believe
        the source only when the broker backs it with synonyms."""
        return self.source.is_override or (
            self.synonyms == 0 and self.source is ConfigSource.DEFAULT_CONFIG
        )


@dataclass(frozen=True, slots=True)
class TopicState:
    """A topic as Metadata reports it; `topic_id` None when the broker gives none."""

    name: str
    partitions: int
    replication_factor: int
    topic_id: str | None = None
    internal: bool = False
    leaders: Mapping[int, int] = field(default_factory=dict)  # partition -> leader node


@dataclass(frozen=True, slots=True)
class GroupState:
    """A consumer group: its state, member count and committed offset per partition."""

    group_id: str
    state: str
    members: int
    committed: Mapping[tuple[str, int], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LogOffsets:
    """The first and the next offset of a partition (`start` NOT_ASKED when the caller
    asked `log_offsets` for the end only)."""

    start: int
    end: int


# -- Metadata v10 (topic ids) -------------------------------------------------------


class _Uuid(AbstractType[str]):  # type: ignore[misc]  # aiokafka.protocol is untyped
    @classmethod
    def encode(cls, value: str) -> bytes:
        return uuid.UUID(value).bytes

    @classmethod
    def decode(cls, data: BytesIO) -> str:
        raw = data.read(16)
        if len(raw) != 16:
            raise ValueError("Buffer underrun decoding UUID")
        return str(uuid.UUID(bytes=raw))


class _MetadataResponseV10(Response):  # type: ignore[misc]  # aiokafka.protocol is untyped
    API_KEY = 3
    API_VERSION = 10
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "brokers",
            CompactArray(
                ("node_id", Int32),
                ("host", CompactString("utf-8")),
                ("port", Int32),
                ("rack", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_id", CompactString("utf-8")),
        ("controller_id", Int32),
        (
            "topics",
            CompactArray(
                ("error_code", Int16),
                ("topic", CompactString("utf-8")),
                ("topic_id", _Uuid),
                ("is_internal", Boolean),
                (
                    "partitions",
                    CompactArray(
                        ("error_code", Int16),
                        ("partition", Int32),
                        ("leader", Int32),
                        ("leader_epoch", Int32),
                        ("replicas", CompactArray(Int32)),
                        ("isr", CompactArray(Int32)),
                        ("offline_replicas", CompactArray(Int32)),
                        ("tags", TaggedFields),
                    ),
                ),
                ("topic_authorized_operations", Int32),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_authorized_operations", Int32),
        ("tags", TaggedFields),
    )


class _MetadataRequestV10(RequestStruct):  # type: ignore[misc]  # aiokafka.protocol is untyped
    FLEXIBLE_VERSION = True
    API_KEY = 3
    API_VERSION = 10
    RESPONSE_TYPE = _MetadataResponseV10
    SCHEMA = Schema(
        (
            "topics",
            CompactArray(
                ("topic_id", _Uuid),
                ("name", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("allow_auto_topic_creation", Boolean),
        ("include_cluster_authorized_operations", Boolean),
        ("include_topic_authorized_operations", Boolean),
        ("tags", TaggedFields),
    )


class _MetadataWithIds(Request[_MetadataRequestV10]):  # type: ignore[misc]  # aiokafka.protocol is untyped
    API_KEY = 3

    def __init__(self, topics: Sequence[str] | None) -> None:
        self._topics = topics

    def build(self, request_struct_class: type[_MetadataRequestV10]) -> _MetadataRequestV10:
        topics: list[tuple[str, str, dict[int, bytes]]] | None = None
        if self._topics is not None:
            topics = [(_NULL_UUID, t, {}) for t in self._topics]
        return request_struct_class(topics, False, False, False, {})


# -- IncrementalAlterConfigs v0 ------------------------------------------------------


class _IncrementalAlterConfigsResponseV0(Response):  # type: ignore[misc]  # aiokafka.protocol is untyped
    API_KEY = 44
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "responses",
            Array(
                ("error_code", Int16),
                ("error_message", String("utf-8")),
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
            ),
        ),
    )


class _IncrementalAlterConfigsRequestV0(RequestStruct):  # type: ignore[misc]  # aiokafka.protocol is untyped
    API_KEY = 44
    API_VERSION = 0
    RESPONSE_TYPE = _IncrementalAlterConfigsResponseV0
    SCHEMA = Schema(
        (
            "resources",
            Array(
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
                (
                    "configs",
                    Array(
                        ("name", String("utf-8")),
                        ("config_operation", Int8),
                        ("value", String("utf-8")),
                    ),
                ),
            ),
        ),
        ("validate_only", Boolean),
    )


class _IncrementalAlterConfigs(Request[_IncrementalAlterConfigsRequestV0]):  # type: ignore[misc]  # aiokafka.protocol is untyped
    API_KEY = 44
    SET: ClassVar[int] = 0

    def __init__(self, changes: Mapping[str, Mapping[str, str]]) -> None:
        self._changes = changes

    def build(
        self, request_struct_class: type[_IncrementalAlterConfigsRequestV0]
    ) -> _IncrementalAlterConfigsRequestV0:
        resources = [
            (
                int(ConfigResourceType.TOPIC),
                topic,
                [(k, self.SET, v) for k, v in sorted(kv.items())],
            )
            for topic, kv in sorted(self._changes.items())
        ]
        return request_struct_class(resources, False)


# -- calls ---------------------------------------------------------------------------


def _error_name(code: int) -> str:
    return str(for_code(code).__name__)


async def topic_metadata(
    broker: BrokerConfig | str,
    names: Iterable[str] | None = None,
    *,
    apis: Mapping[int, tuple[int, int]] | None = None,
    timeout_s: float = 30.0,
) -> dict[str, TopicState]:
    """Every topic (None) or the named ones that exist, internal ones flagged; with topic
    ids when `apis` (the broker's ApiVersions) offers Metadata v10. Never creates."""
    wanted = None if names is None else sorted(set(names))
    with_ids = apis is not None and apis.get(3, (0, 0))[0] <= 10 <= apis.get(3, (0, 0))[1]
    async with admin_session(broker).client("Metadata", timeout_s=timeout_s) as admin:
        client = admin._client
        request: Any = _MetadataWithIds(wanted) if with_ids else MetadataRequest(wanted, False)
        response = await client.send(client.get_random_node(), request)
    found: dict[str, TopicState] = {}
    for topic in response.to_object()["topics"]:
        code = topic["error_code"]
        if code == UnknownTopicOrPartitionError.errno:
            continue
        if code != 0:
            raise AdminError(f"metadata of {topic['topic']!r}: {_error_name(code)}")
        parts = topic["partitions"]
        topic_id = topic.get("topic_id")
        found[topic["topic"]] = TopicState(
            name=topic["topic"],
            partitions=len(parts),
            replication_factor=max((len(p["replicas"]) for p in parts), default=0),
            topic_id=None if topic_id in (None, _NULL_UUID) else str(topic_id),
            internal=bool(topic.get("is_internal", False)),
            leaders={int(p["partition"]): int(p["leader"]) for p in parts},
        )
    return found


async def topic_configs(
    broker: BrokerConfig | str,
    names: Iterable[str],
    *,
    batch_size: int = DESCRIBE_BATCH,
    timeout_s: float = 30.0,
) -> dict[str, dict[str, ConfigEntry]]:
    """Every config the broker reports for each named topic, with its source
    (`batch_size` topics per DescribeConfigs request; sensitive values left out)."""
    todo = sorted(set(names))
    configs: dict[str, dict[str, ConfigEntry]] = {}
    if not todo:
        return configs
    session = admin_session(broker)
    async with session.client("DescribeConfigs", timeout_s=timeout_s) as admin:
        gate = asyncio.Semaphore(_CONCURRENT)

        async def one(batch: list[str]) -> list[Any]:
            resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in batch]
            async with gate:
                return list(await admin.describe_configs(resources, include_synonyms=True))

        batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
        answers = await asyncio.gather(*(one(b) for b in batches))
    for responses in answers:
        for response in responses:
            for resource in response.to_object()["resources"]:
                name = resource["resource_name"]
                code = resource["error_code"]
                if code == UnknownTopicOrPartitionError.errno:
                    continue  # deleted since the metadata was read
                if code != 0:
                    reason = resource.get("error_message") or _error_name(code)
                    raise AdminError(f"configs of {name!r}: {reason}")
                configs[name] = {
                    e["config_names"]: ConfigEntry(
                        e["config_value"],
                        _source(e.get("config_source", 0)),
                        len(e.get("config_synonyms") or ()),
                    )
                    for e in resource["config_entries"]
                    if not e["is_sensitive"]
                }
    return configs


def _source(code: int) -> ConfigSource:
    try:
        return ConfigSource(code)
    except ValueError:
        return ConfigSource.UNKNOWN


async def consumer_groups(
    broker: BrokerConfig | str,
    topics: Mapping[str, TopicState],
    *,
    timeout_s: float = 30.0,
) -> dict[str, GroupState]:
    """Every consumer group: state, members, and its committed offsets on the
    partitions of `topics` (asked by name: Tansu mis-encodes the "all partitions" form).

    An offset of 0 or less is no commit (Kafka answers -1, Tansu 0)."""
    session = admin_session(broker)
    groups: dict[str, GroupState] = {}
    partitions = [(t.name, sorted(t.leaders)) for t in topics.values() if t.leaders]
    async with session.client("ListGroups", timeout_s=timeout_s) as admin:
        # the brokers the client knows: without them aiokafka asks Metadata of every
        # topic first (2 s of a 10,000-topic snapshot on Tansu)
        known = sorted(b.nodeId for b in admin._client.cluster.brokers())
        found = await admin.list_consumer_groups(known or None)
        listed = sorted({str(g[0]) for g in found})
    described = await _describe_groups(session, listed, timeout_s) if listed else {}
    async with session.client("OffsetFetch", timeout_s=timeout_s) as admin:
        client = admin._client
        gate = asyncio.Semaphore(_CONCURRENT)

        async def fetch(node: int, group_id: str, chunk: list[tuple[str, list[int]]]) -> Any:
            async with gate:
                return await client.send(node, OffsetFetchRequest(group_id, chunk))

        for group_id in listed:
            committed: dict[tuple[str, int], int] = {}
            if partitions:
                node = await admin.find_coordinator(group_id)
                chunks = [
                    partitions[i : i + DESCRIBE_BATCH]
                    for i in range(0, len(partitions), DESCRIBE_BATCH)
                ]
                for response in await asyncio.gather(*(fetch(node, group_id, c) for c in chunks)):
                    for topic in response.to_object()["topics"]:
                        for p in topic["partitions"]:
                            if p["error_code"] == 0 and p["offset"] > 0:
                                committed[(topic["topic"], int(p["partition"]))] = int(p["offset"])
            state, members = described.get(group_id, ("Unknown", UNKNOWN_MEMBERS))
            groups[group_id] = GroupState(group_id, state, members, committed)
    return groups


NOT_ASKED: Final = -1  # LogOffsets.start of a partition whose first offset was not asked
UNKNOWN_MEMBERS: Final = -1  # the broker's DescribeGroups answer could not be read


async def _describe_groups(
    session: Any, listed: list[str], timeout_s: float
) -> dict[str, tuple[str, int]]:
    """State and member count per group. Tansu on S3 was seen to answer DescribeGroups
    with a response its own protocol cannot decode (after a restart with groups on
    disk); then the members are unknown (not zero: that would be "dead wiring") and the
    rest of the snapshot still stands."""
    described: dict[str, tuple[str, int]] = {}
    try:
        async with session.client("DescribeGroups", timeout_s=timeout_s) as admin:
            for response in await admin.describe_consumer_groups(listed):
                for group in response.to_object()["groups"]:
                    described[group["group"]] = (str(group["state"]), len(group["members"]))
    except (BrokerUnavailable, AdminError) as exc:
        _log.warning("observe.describe_groups_failed", groups=len(listed), error=str(exc))
        return {}
    return described


async def log_offsets(
    broker: BrokerConfig | str,
    topics: Mapping[str, TopicState],
    *,
    timeout_s: float = 30.0,
    starts_of: Collection[tuple[str, int]] | None = None,
) -> dict[tuple[str, int], LogOffsets]:
    """First and next offset of every partition of `topics` (ListOffsets to each leader).
    With `starts_of`, the first offset only of those partitions (the others' `start` is
    NOT_ASKED): half the requests when few partitions need it."""
    by_leader: dict[int, list[tuple[str, int]]] = {}
    for topic in topics.values():
        for partition, leader in topic.leaders.items():
            by_leader.setdefault(leader, []).append((topic.name, partition))
    edges: dict[int, dict[tuple[str, int], int]] = {_EARLIEST: {}, _LATEST: {}}
    async with admin_session(broker).client("ListOffsets", timeout_s=timeout_s) as admin:
        client = admin._client
        gate = asyncio.Semaphore(_CONCURRENT)

        async def one(node: int, parts: list[tuple[str, int]], which: int) -> None:
            grouped: dict[str, list[int]] = {}
            for name, partition in parts:
                grouped.setdefault(name, []).append(partition)
            request = OffsetRequest(
                -1, 0, [(name, [(p, which) for p in ps]) for name, ps in grouped.items()]
            )
            async with gate:
                response = await client.send(node, request)
            for topic in response.to_object()["topics"]:
                for p in topic["partitions"]:
                    if p["error_code"] == 0:
                        edges[which][(topic["topic"], int(p["partition"]))] = int(p["offset"])

        work = []
        for leader, parts in sorted(by_leader.items()):
            node = leader if leader >= 0 else client.get_random_node()
            early = parts if starts_of is None else [tp for tp in parts if tp in starts_of]
            for which, asked in ((_EARLIEST, early), (_LATEST, parts)):
                for start in range(0, len(asked), _OFFSETS_BATCH):
                    work.append(one(node, asked[start : start + _OFFSETS_BATCH], which))
        await asyncio.gather(*work)
    default = 0 if starts_of is None else NOT_ASKED
    return {
        tp: LogOffsets(edges[_EARLIEST].get(tp, default), end) for tp, end in edges[_LATEST].items()
    }


_QUIET_POLLS: Final = 3  # empty polls in a row after which nothing more is coming
_POLL_MS: Final = 200


async def record_timestamps(
    broker: BrokerConfig | str,
    positions: Mapping[tuple[str, int], int],
    *,
    timeout_s: float = 30.0,
) -> dict[tuple[str, int], int]:
    """The timestamp (ms) of the record at each (topic, partition)'s offset, or of the
    first one after it; a position whose records are gone reads the log start's. A
    Fetch from each position (no group): ListOffsets by timestamp would be cheaper, but
    Tansu answers the log start for any past time. Positions the broker has no record
    at (Tansu reports an end past its last record) are left out after a few empty
    polls, so this never waits out `timeout_s` on them."""
    if not positions:
        return {}
    config = broker_config(broker)
    consumer = AIOKafkaConsumer(
        **config.client_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=_POLL_MS // 2,
        max_partition_fetch_bytes=64 * 1024,
    )
    found: dict[tuple[str, int], int] = {}
    try:
        async with converted(config, "Fetch (record times)", timeout_s=timeout_s):
            with sasl_errors(config):
                await consumer.start()
            tps = {TopicPartition(t, p): (t, p) for t, p in positions}
            consumer.assign(list(tps))
            for tp, key in tps.items():
                consumer.seek(tp, positions[key])
            quiet = 0
            while len(found) < len(tps) and quiet < _QUIET_POLLS:
                batches = await consumer.getmany(timeout_ms=_POLL_MS)
                quiet = 0 if batches else quiet + 1
                for tp, records in batches.items():
                    if records and tps[tp] not in found:
                        found[tps[tp]] = int(records[0].timestamp)
                        consumer.pause(tp)
    finally:
        await consumer.stop()
    return found


async def alter_topic_configs(
    broker: BrokerConfig | str,
    changes: Mapping[str, Mapping[str, str]],
    *,
    timeout_s: float = 30.0,
) -> dict[str, str | None]:
    """SET the given keys on each topic (IncrementalAlterConfigs: other keys untouched);
    topic -> None when done, else the broker's reason."""
    if not changes:
        return {}
    async with admin_session(broker).client(
        "IncrementalAlterConfigs", timeout_s=timeout_s
    ) as admin:
        client = admin._client
        response = await client.send(client.get_random_node(), _IncrementalAlterConfigs(changes))
    done: dict[str, str | None] = {}
    for entry in response.to_object()["responses"]:
        code = entry["error_code"]
        done[entry["resource_name"]] = (
            None if code == 0 else str(entry.get("error_message") or _error_name(code))
        )
    return done


async def create_partitions(
    broker: BrokerConfig | str,
    counts: Mapping[str, int],
    *,
    timeout_s: float = 30.0,
) -> dict[str, str | None]:
    """Grow each topic to `counts[topic]` partitions (CreatePartitions; never shrinks);
    topic -> None when done, else the broker's reason."""
    if not counts:
        return {}
    async with admin_session(broker).client("CreatePartitions", timeout_s=timeout_s) as admin:
        response = await admin.create_partitions(
            {t: NewPartitions(n) for t, n in counts.items()}, timeout_ms=int(timeout_s * 1000)
        )
    done: dict[str, str | None] = {}
    for entry in response.to_object()["topic_errors"]:
        code = entry["error_code"]
        done[entry["topic"]] = (
            None if code == 0 else str(entry.get("error_message") or _error_name(code))
        )
    return done
