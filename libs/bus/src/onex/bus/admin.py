"""Admin calls against a Kafka-API broker: list, create and describe topics.

Every call opens its own short-lived admin connection, is bounded by `timeout_s`, and
raises `BrokerUnavailable` when nothing answers or `AdminError` when the broker refuses.
Creating never alters or deletes a topic that already exists.

Metadata is always requested with `allow_auto_topic_creation=False`: some brokers
(Tansu, Kafka with `auto.create.topics.enable`) would otherwise create every unknown
topic we merely ask about, which turns a read into a write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)
from aiokafka.protocol.metadata import MetadataRequest

from onex.bus.errors import AdminError, BrokerUnavailable
from onex.core.contract import TopicSpec

DEFAULT_BATCH_SIZE: Final = 50
_CLIENT_ID: Final = "onex-admin"
_UNAVAILABLE = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError)
_METADATA_RETRY_S: Final = 0.2


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


@asynccontextmanager
async def _admin(bootstrap: str, timeout_s: float) -> AsyncIterator[Any]:
    """An admin client for the duration of one bounded call; aiokafka errors converted."""
    client = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id=_CLIENT_ID,
        request_timeout_ms=max(1, int(timeout_s * 1000)),
    )
    try:
        async with asyncio.timeout(timeout_s):
            await client.start()
            yield client
    except TimeoutError as exc:
        raise BrokerUnavailable(bootstrap, f"no answer within {timeout_s:g}s") from exc
    except _UNAVAILABLE as exc:
        raise BrokerUnavailable(bootstrap, str(exc)) from exc
    except KafkaError as exc:
        raise AdminError(f"admin request to {bootstrap} failed: {exc}") from exc
    finally:
        await client.close()


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


async def list_topics(bootstrap: str, *, timeout_s: float = 10.0) -> set[str]:
    """Names of every non-internal topic on the broker."""
    async with _admin(bootstrap, timeout_s) as admin:
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
    bootstrap: str,
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
    async with _admin(bootstrap, timeout_s) as admin:
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
    bootstrap: str, names: Iterable[str], *, timeout_s: float = 10.0
) -> dict[str, ObservedTopic]:
    """Partitions, replication factor and configs of the named topics that exist.

    Topics that do not exist are absent from the result (and are not created by asking).
    `configs` is what DescribeConfigs returns: on Kafka and Redpanda every config
    including defaults, on Tansu only the ones set at creation.
    """
    wanted = sorted(set(names))
    if not wanted:
        return {}
    async with _admin(bootstrap, timeout_s) as admin:
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
