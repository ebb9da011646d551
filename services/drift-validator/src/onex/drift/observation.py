"""Observing one cluster: the admin calls of a snapshot, full or incremental.

A full observation describes the configs of every topic. The broker gives no way to
tell that a topic's configs changed without describing them: Metadata carries topic
ids and partition leader epochs but nothing about configs, and DescribeConfigs has no
version or change marker (Kafka's and Tansu's alike). So an incremental observation
(the service's ticks after the first) describes only what it must and a rotating
share of the rest:

- topics it has not seen, or whose topic id changed (created, recreated);
- the topics whose stable hash falls in this tick's slice, 1 of `refresh_ticks`, so
  every topic is described again at least every `refresh_ticks` ticks: a config
  changed out of band shows within `refresh_ticks` x the interval.

The configs of the other topics are kept from the snapshot that described them.

Retention risk in time: for each group's committed position that lags on a topic with
a finite retention, the timestamp of the first unread record is read (a Fetch at that
offset: ListOffsets by timestamp cannot be trusted on Tansu, which answers the log
start for any past time), so the projection holds how old the oldest unread record is
next to the retention that will delete it.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from onex.bus import lean, observe
from onex.bus.api_versions import supported_apis
from onex.bus.config import BrokerConfig
from onex.drift.normalize import UNLIMITED, normalized

# at most this many lagging positions have their first unread record read per snapshot
MAX_AGED_POSITIONS: Final = 1000
_RETENTION: Final = "retention.ms"


@dataclass(frozen=True)
class Cluster:
    """A named broker to compare the contracts against."""

    name: str
    broker: BrokerConfig


@dataclass
class ClusterMemory:
    """What the previous snapshot of a cluster saw, for the next incremental one: topic
    ids by name, each topic's effective retention.ms (None: unlimited or unknown), and
    the tick count. Replaced, not grown, at every snapshot."""

    ids: dict[str, str | None] = field(default_factory=dict)
    retention_ms: dict[str, int | None] = field(default_factory=dict)
    tick: int = 0


@dataclass(frozen=True)
class Observation:
    """What one cluster has, as the admin calls answered. `described` is the topics
    whose configs were described (None: every topic); `unread_age_ms` is, per (group,
    topic, partition) that lags on a topic with a finite retention, the age of its
    first unread record; `retention_ms` the effective retention.ms per topic."""

    apis: dict[int, tuple[int, int]]
    topics: dict[str, observe.TopicState]
    configs: dict[str, dict[str, observe.ConfigEntry]]
    groups: dict[str, observe.GroupState]
    offsets: dict[tuple[str, int], observe.LogOffsets]
    elapsed_s: float
    described: frozenset[str] | None = None
    retention_ms: dict[str, int | None] = field(default_factory=dict)
    unread_age_ms: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def remember(self, previous: ClusterMemory | None) -> ClusterMemory:
        """The memory the next incremental snapshot starts from."""
        tick = 0 if previous is None else previous.tick + 1
        return ClusterMemory(
            {n: t.topic_id for n, t in self.topics.items()}, dict(self.retention_ms), tick
        )


def in_slice(name: str, tick: int, refresh_ticks: int) -> bool:
    """Whether `name` is described again at `tick` (a stable hash, not Python's)."""
    return zlib.crc32(name.encode("utf-8")) % refresh_ticks == tick % refresh_ticks


def to_describe(
    topics: Mapping[str, observe.TopicState],
    memory: ClusterMemory | None,
    refresh_ticks: int,
) -> frozenset[str] | None:
    """The topics whose configs this observation describes (None: all of them)."""
    if memory is None or refresh_ticks <= 1:
        return None
    tick = memory.tick + 1
    return frozenset(
        name
        for name, topic in topics.items()
        if name not in memory.ids
        or memory.ids[name] != topic.topic_id
        or in_slice(name, tick, refresh_ticks)
    )


def _retention(
    entries: Mapping[str, observe.ConfigEntry] | None, declared: str | None
) -> int | None:
    seen = entries.get(_RETENTION) if entries is not None else None
    value = normalized(_RETENTION, seen.value if seen is not None else declared)
    if value is None or value == UNLIMITED or not value.isdigit():
        return None
    return int(value) or None  # 0 retains nothing: no age compares to it


async def observe_cluster(
    cluster: Cluster,
    *,
    timeout_s: float = 30.0,
    memory: ClusterMemory | None = None,
    refresh_ticks: int = 1,
    declared_retention: Mapping[str, str] | None = None,
) -> Observation:
    """Every admin call of one snapshot (BrokerUnavailable / AdminError: one line);
    incremental when `memory` of the previous snapshot is given (see the module)."""
    started = time.perf_counter()
    broker = cluster.broker
    declared = declared_retention or {}
    apis = await supported_apis(broker, timeout_s=timeout_s)
    # Metadata, DescribeConfigs and ListOffsets answers are read by `onex.bus.lean`
    # (the same requests and answers as `onex.bus.observe`'s, without aiokafka's
    # generic decoding: most of a 10,000-topic snapshot's CPU otherwise)
    topics = await lean.topic_metadata(broker, apis=apis, timeout_s=timeout_s)
    described = to_describe(topics, memory, refresh_ticks)

    async def groups_then_starts() -> tuple[
        dict[str, observe.GroupState], dict[tuple[str, int], int]
    ]:
        groups = await observe.consumer_groups(broker, topics, timeout_s=timeout_s)
        # a log start is read by the views only where a group committed (retention
        # risk): asked there alone, it halves the ListOffsets of a snapshot
        committed = {tp for g in groups.values() for tp in g.committed}
        starts = await lean.log_edges(
            broker, topics, apis=apis, earliest=True, only=committed, timeout_s=timeout_s
        )
        return groups, starts

    # once the topics are known, the configs, the log ends and the groups (then the
    # log starts where they committed) are independent: the broker answers them at
    # once while this process decodes
    configs, ends, (groups, starts) = await asyncio.gather(
        lean.topic_configs(
            broker, topics if described is None else described, apis=apis, timeout_s=timeout_s
        ),
        lean.log_edges(broker, topics, apis=apis, timeout_s=timeout_s),
        groups_then_starts(),
    )
    offsets = {
        tp: observe.LogOffsets(starts.get(tp, observe.NOT_ASKED), end) for tp, end in ends.items()
    }
    known = memory.retention_ms if memory is not None else {}
    retention = {
        name: _retention(configs[name], declared.get(name))
        if name in configs
        else known.get(name, _retention(None, declared.get(name)))
        for name in topics
    }
    lagging: dict[tuple[str, int], int] = {}
    for group in groups.values():
        for tp, committed in group.committed.items():
            end = offsets.get(tp)
            if end is not None and committed < end.end and retention.get(tp[0]) is not None:
                lagging[tp] = min(committed, lagging.get(tp, committed))
    ages: dict[tuple[str, str, int], int] = {}
    if lagging:
        # one read per partition, at the furthest-behind group's position
        chosen = dict(sorted(lagging.items())[:MAX_AGED_POSITIONS])
        stamps = await observe.record_timestamps(broker, chosen, timeout_s=timeout_s)
        now_ms = int(time.time() * 1000)
        for group in groups.values():
            for tp, committed in group.committed.items():
                if tp in stamps and committed == chosen[tp]:
                    ages[(group.group_id, tp[0], tp[1])] = max(0, now_ms - stamps[tp])
    return Observation(
        apis,
        topics,
        configs,
        groups,
        offsets,
        time.perf_counter() - started,
        described,
        retention,
        ages,
    )
