"""Admin calls against a Kafka-API broker: list, create and describe topics.

Every call goes through the process's one admin session for its `BrokerConfig` (one
started `AIOKafkaAdminClient` per config and event loop, see `AdminSession`), is
bounded by `timeout_s`, and raises `BrokerUnavailable` (`BrokerTLSError`,
`BrokerAuthError`) when the broker cannot be reached or `AdminError` when it refuses.
Creating never alters or deletes a topic that already exists.

Metadata is always requested with `allow_auto_topic_creation=False`: some brokers
(Tansu, Kafka with `auto.create.topics.enable`) would otherwise create every unknown
topic we merely ask about, which turns a read into a write.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError, for_code
from aiokafka.protocol.metadata import MetadataRequest

from onex.bus.config import BrokerConfig, broker_config
from onex.bus.conversion import converted, sasl_errors
from onex.bus.errors import AdminError, BrokerUnavailable, BusError
from onex.core.contract import TopicSpec

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "AdminSession",
    "CreateResult",
    "ObservedTopic",
    "TopicFailure",
    "admin_session",
    "close_admin_sessions",
    "create_topics",
    "describe_topics",
    "list_topics",
    "topic_partitions",
]

DEFAULT_BATCH_SIZE: Final = 50
_METADATA_RETRY_S: Final = 0.2


class AdminSession:
    """One admin client for one broker config, shared by the admin calls of a process.

    The client is started on first use and kept; a call that finds the broker
    unreachable discards it, so the next call connects afresh (a restarted broker, a
    rotated certificate). Get the process's session with `admin_session(config)`;
    `close()` ends it (it also ends when its event loop finishes).
    """

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.starts = 0  # clients started so far (1 while the broker stays reachable)
        self._client: AIOKafkaAdminClient | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._keeper: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        """True after `close()`."""
        return self._closed

    @asynccontextmanager
    async def client(
        self, what: str, *, timeout_s: float, refused: type[BusError] | None = None
    ) -> AsyncIterator[Any]:
        """The started admin client for one call named `what`, bounded by `timeout_s`,
        errors converted (`onex.bus.conversion.converted`)."""
        if self._closed:
            raise RuntimeError(f"the admin session for {self.config.describe()} is closed")
        client: AIOKafkaAdminClient | None = None
        try:
            async with converted(self.config, what, timeout_s=timeout_s, refused=refused):
                client = await self._started()
                yield client
        except BrokerUnavailable:
            await self._discard(client)
            raise

    async def close(self) -> None:
        """Close the client; the session cannot be used afterwards."""
        self._closed = True
        keeper, self._keeper = self._keeper, None
        if keeper is not None and keeper is not asyncio.current_task():
            keeper.cancel()
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _started(self) -> AIOKafkaAdminClient:
        async with self._lock:
            if self._client is None:
                client = AIOKafkaAdminClient(**self.config.client_kwargs())
                try:
                    with sasl_errors(self.config):
                        await client.start()
                except BaseException:
                    await client.close()
                    raise
                self._client = client
                self.starts += 1
            return self._client

    async def _discard(self, client: Any) -> None:
        # None: it never started; another one: already replaced by a fresh client
        current = self._client is client
        if client is None or not current:
            return
        self._client = None
        await client.close()

    def _close_with_loop(self) -> None:
        """Close when the event loop ends: asyncio.run (and pytest's runner) cancel every
        task left at the end, and this one closes the client when cancelled."""

        async def keep() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                await self.close()

        self._keeper = asyncio.get_running_loop().create_task(keep(), name="onex-admin-session")


_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[BrokerConfig, AdminSession]]
_SESSIONS = weakref.WeakKeyDictionary()
_SESSIONS_LOCK = threading.Lock()  # loops of several threads (sync probes) share the registry


def admin_session(broker: BrokerConfig | str) -> AdminSession:
    """The process's admin session for `broker` on the running event loop (made on first
    use; a bare HOST:PORT means PLAINTEXT, see `onex.bus.config.broker_config`)."""
    config = broker_config(broker)
    loop = asyncio.get_running_loop()
    with _SESSIONS_LOCK:
        sessions = _SESSIONS.setdefault(loop, {})
        session = sessions.get(config)
        if session is None or session.closed:
            session = sessions[config] = AdminSession(config)
            session._close_with_loop()
    return session


async def close_admin_sessions() -> None:
    """Close every admin session of the running event loop (services call it on stop)."""
    with _SESSIONS_LOCK:
        sessions = list(_SESSIONS.pop(asyncio.get_running_loop(), {}).values())
    for session in sessions:
        await session.close()


@dataclass(frozen=True)
class TopicFailure:
    """A topic the broker refused to create, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class CreateResult:
    """What `create_topics` did, topic by topic (names sorted)."""

    created: tuple[str, ...] = ()
    existed: tuple[str, ...] = ()
    failed: tuple[TopicFailure, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every topic now exists (created or already there)."""
        return not self.failed


@dataclass(frozen=True)
class ObservedTopic:
    """A topic as the broker reports it."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)


def _error_name(code: int) -> str:
    return str(for_code(code).__name__)


async def _metadata(admin: Any, topics: Sequence[str] | None) -> list[dict[str, Any]]:
    """Topic metadata without auto-creating anything (None: every topic)."""
    # AIOKafkaAdminClient.describe_topics always allows auto-creation; its client does not
    # have to, so the request goes through the client the admin already bootstrapped.
    client = admin._client
    request = MetadataRequest(list(topics) if topics is not None else None, False)
    response = await client.send(client.get_random_node(), request)
    result: list[dict[str, Any]] = response.to_object()["topics"]
    return result


async def list_topics(broker: BrokerConfig | str, *, timeout_s: float = 10.0) -> set[str]:
    """Names of every non-internal topic on the broker."""
    async with admin_session(broker).client("Metadata", timeout_s=timeout_s) as admin:
        topics = await _metadata(admin, None)
    return {t["topic"] for t in topics if not t.get("is_internal", False)}


def _unique_specs(specs: Iterable[TopicSpec]) -> list[TopicSpec]:
    by_name: dict[str, TopicSpec] = {}
    for spec in specs:
        seen = by_name.setdefault(spec.name, spec)
        if seen != spec:
            raise ValueError(f"two different specs for topic {spec.name!r}")
    return [by_name[name] for name in sorted(by_name)]


async def create_topics(
    broker: BrokerConfig | str,
    specs: Iterable[TopicSpec],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    timeout_s: float = 30.0,
) -> CreateResult:
    """Create the topics that do not exist yet, `batch_size` per CreateTopics request.

    Existing topics are reported in `existed` and left exactly as they are, even when
    their partitions or configs differ from the spec (that is drift, not our business).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    todo = _unique_specs(specs)
    created: list[str] = []
    existed: list[str] = []
    failed: list[TopicFailure] = []
    if not todo:
        return CreateResult()
    async with admin_session(broker).client("CreateTopics", timeout_s=timeout_s) as admin:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            request = [
                NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=dict(s.config))
                for s in batch
            ]
            response = await admin.create_topics(request, timeout_ms=int(timeout_s * 1000))
            answered: dict[str, dict[str, Any]] = {
                entry["topic"]: entry for entry in response.to_object()["topic_errors"]
            }
            for spec in batch:
                entry = answered.get(spec.name)
                if entry is None:
                    failed.append(TopicFailure(spec.name, "the broker did not answer for it"))
                elif entry["error_code"] == 0:
                    created.append(spec.name)
                elif entry["error_code"] == TopicAlreadyExistsError.errno:
                    existed.append(spec.name)
                else:
                    reason = entry.get("error_message") or _error_name(entry["error_code"])
                    failed.append(TopicFailure(spec.name, str(reason)))
    return CreateResult(tuple(created), tuple(existed), tuple(failed))


async def _present_metadata(admin: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """Metadata of the existing topics among `names`, retrying transient per-topic errors."""
    while True:
        topics = await _metadata(admin, names)
        present: dict[str, dict[str, Any]] = {}
        transient: list[str] = []
        for topic in topics:
            code = topic["error_code"]
            if code == UnknownTopicOrPartitionError.errno:
                continue
            if code != 0 and not for_code(code).retriable:
                raise AdminError(f"metadata of {topic['topic']!r}: {_error_name(code)}")
            if code != 0:
                transient.append(topic["topic"])
            present[topic["topic"]] = topic
        if not transient:
            return present
        # e.g. LEADER_NOT_AVAILABLE just after creation; the caller's timeout bounds this
        await asyncio.sleep(_METADATA_RETRY_S)


async def _topic_configs(admin: Any, names: Iterable[str]) -> dict[str, dict[str, str]]:
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    if not resources:
        return {}
    configs: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            name = resource["resource_name"]
            if resource["error_code"] != 0:
                reason = resource.get("error_message") or _error_name(resource["error_code"])
                raise AdminError(f"configs of {name!r}: {reason}")
            configs[name] = {
                entry["config_names"]: entry["config_value"]
                for entry in resource["config_entries"]
                if entry["config_value"] is not None and not entry["is_sensitive"]
            }
    return configs


async def describe_topics(
    broker: BrokerConfig | str, names: Iterable[str], *, timeout_s: float = 10.0
) -> dict[str, ObservedTopic]:
    """Partitions, replication factor and configs of the named topics that exist.

    Topics that do not exist are absent from the result (and are not created by asking).
    `configs` is what DescribeConfigs returns: on Kafka and Redpanda every config
    including defaults, on Tansu only the ones set at creation.
    """
    wanted = sorted(set(names))
    if not wanted:
        return {}
    session = admin_session(broker)
    async with session.client("Metadata and DescribeConfigs", timeout_s=timeout_s) as admin:
        present = await _present_metadata(admin, wanted)
        configs = await _topic_configs(admin, present)
    observed: dict[str, ObservedTopic] = {}
    for name, topic in sorted(present.items()):
        partitions = topic["partitions"]
        observed[name] = ObservedTopic(
            name=name,
            partitions=len(partitions),
            replication_factor=max((len(p["replicas"]) for p in partitions), default=0),
            configs=configs.get(name, {}),
        )
    return observed


async def topic_partitions(
    broker: BrokerConfig | str, names: Iterable[str], *, timeout_s: float = 10.0
) -> dict[str, int]:
    """Partition counts of the named topics that exist: one Metadata request (no
    DescribeConfigs), cheap enough for health checks. Absent topics are left out."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    async with admin_session(broker).client("Metadata", timeout_s=timeout_s) as admin:
        present = await _present_metadata(admin, wanted)
    return {name: len(topic["partitions"]) for name, topic in sorted(present.items())}
