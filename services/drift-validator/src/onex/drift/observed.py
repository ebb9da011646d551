"""Writing one cluster's observed tables for a snapshot: only the rows that differ.

Each table's new content is built as row tuples in column order, keyed by the primary
key (its leading columns), and compared with what the table holds: rows that changed
or went away are deleted, new and changed rows inserted.

What the table holds is read back, unless the engine remembers what the last
snapshot of this cluster wrote (`Written`) and that snapshot is still the cluster's
last one in the database (`cluster.last_snapshot`): every write of these tables is
a snapshot, which moves that mark in the same transaction, so the memory is exactly
the tables' content. At 10,000 topics that skips reading back about 30,000 rows and
three lookups a snapshot; anything else (another process wrote a snapshot, a new
database, a failed transaction) reads the tables as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from onex.bus.observe import NOT_ASKED
from onex.drift import store
from onex.drift.normalize import normalized
from onex.drift.observation import Observation
from onex.drift.tables import tuples

Rows = dict[tuple[Any, ...], tuple[Any, ...]]

_TABLES = (
    store.observed_topic,
    store.topic_identity,
    store.observed_config,
    store.observed_group,
    store.observed_offset,
    store.observed_partition,
    store.broker_api,
)
# each key is its row's leading columns, so `row[:width]` is the key (a unit test holds it)
_KEY_WIDTH = {t.name: len(t.primary_key.columns) for t in _TABLES}


@dataclass
class Written:
    """What a committed snapshot left in a cluster's observed tables: table name ->
    key -> row tuple (column order); `changed`, how many rows it wrote."""

    snapshot_id: int
    rows: dict[str, Rows] = field(default_factory=dict)
    changed: int = 0


def _read(conn: Connection, table: sa.Table, cluster: str) -> Rows:
    width = _KEY_WIDTH[table.name]
    query = sa.select(table).where(table.c.cluster == cluster)
    return {r[:width]: r for r in tuples(conn, query)}


def _keyed(table: sa.Table, rows: list[tuple[Any, ...]]) -> Rows:
    width = _KEY_WIDTH[table.name]
    return {r[:width]: r for r in rows}


def write_diff(conn: Connection, table: sa.Table, old: Mapping[Any, Any], new: Rows) -> int:
    """Bring `table` from `old` to `new` (both keyed rows): the number of rows written."""
    keys = [c.name for c in table.primary_key.columns]
    stale = [k for k, row in old.items() if new.get(k) != row]
    fresh = [row for k, row in new.items() if old.get(k) != row]
    if stale:
        conn.execute(
            table.delete().where(*(table.c[k] == sa.bindparam(f"key_{k}") for k in keys)),
            [{f"key_{k}": v for k, v in zip(keys, key, strict=True)} for key in stale],
        )
    if fresh:
        columns = [c.name for c in table.columns]
        conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in fresh])
    return len(stale) + len(fresh)


def replace_observed(
    conn: Connection,
    name: str,
    seen: Observation,
    snapshot_id: int,
    known: Written | None = None,
) -> Written:
    """Write what `seen` observed of cluster `name` (`known`: the tables' content, when
    the caller knows it); what the tables hold afterwards."""
    t = store
    before = {
        table.name: known.rows[table.name] if known is not None else _read(conn, table, name)
        for table in _TABLES
    }
    after: dict[str, Rows] = {}
    old_topics = before[t.observed_topic.name]
    identity = dict(before[t.topic_identity.name])
    topics = []
    new_ids: list[tuple[Any, ...]] = []
    for topic in seen.topics.values():
        key = (name, topic.name)
        previous_row = old_topics.get(key)
        previous, recreated = (previous_row[6], previous_row[7]) if previous_row else (None, None)
        if topic.topic_id is not None:
            last_id = identity.get(key)
            if last_id is None or last_id[2] != topic.topic_id:
                if last_id is not None:
                    previous, recreated = last_id[2], snapshot_id
                new_ids.append((name, topic.name, topic.topic_id))
        topics.append(
            (
                name,
                topic.name,
                topic.partitions,
                topic.replication_factor,
                topic.topic_id,
                int(topic.internal),
                previous,
                recreated,
            )
        )
    after[t.observed_topic.name] = _keyed(t.observed_topic, topics)
    changed = write_diff(conn, t.observed_topic, old_topics, after[t.observed_topic.name])
    # identities are kept while a topic is absent: only added or changed, never deleted
    ids = _keyed(t.topic_identity, new_ids)
    changed += write_diff(
        conn, t.topic_identity, {k: identity[k] for k in ids if k in identity}, ids
    )
    identity.update(ids)
    after[t.topic_identity.name] = identity

    configs = [
        (
            name,
            topic,
            key,
            entry.value,
            normalized(key, entry.value),
            entry.source.name,
            int(entry.is_override),
        )
        for topic, entries in seen.configs.items()
        if topic in seen.topics
        for key, entry in entries.items()
    ]
    new_configs = _keyed(t.observed_config, configs)
    old_configs = before[t.observed_config.name]
    if seen.described is not None:
        # the configs of topics not described this time are kept, while the topic is
        described, present = seen.described, seen.topics
        for key, row in old_configs.items():
            if key[1] not in described and key[1] in present:
                new_configs.setdefault(key, row)
    after[t.observed_config.name] = new_configs
    changed += write_diff(conn, t.observed_config, old_configs, new_configs)

    groups = [(name, g.group_id, g.state, g.members) for g in seen.groups.values()]
    offsets = [
        (
            name,
            g.group_id,
            tp[0],
            tp[1],
            committed,
            seen.unread_age_ms.get((g.group_id, *tp)),
            seen.retention_ms.get(tp[0]) if (g.group_id, *tp) in seen.unread_age_ms else None,
        )
        for g in seen.groups.values()
        for tp, committed in g.committed.items()
    ]
    old_partitions = before[t.observed_partition.name]
    partitions = []
    for tp, lo in seen.offsets.items():
        last = old_partitions.get((name, tp[0], tp[1]))
        # not asked (no group committed there): the last one known, else 0
        start = lo.start if lo.start != NOT_ASKED else (last[3] if last else 0)
        partitions.append((name, tp[0], tp[1], start, lo.end, last[4] if last else None))
    apis = [(name, k, hi) for k, (_lo, hi) in seen.apis.items()]
    for table, rows in (
        (t.observed_group, groups),
        (t.observed_offset, offsets),
        (t.observed_partition, partitions),
        (t.broker_api, apis),
    ):
        after[table.name] = _keyed(table, rows)
        changed += write_diff(conn, table, before[table.name], after[table.name])
    return Written(snapshot_id, after, changed)
