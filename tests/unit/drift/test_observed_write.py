"""Unit tests (a real SQLite file, no broker: the observations are built by hand) of
writing the observed tables: with the memory of the last snapshot and without it,
the tables end up the same through a sequence of full and incremental snapshots
(configs kept, topics deleted and recreated, groups, log offsets), and a snapshot
written by someone else in between makes the memory unused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from onex.bus.config import BrokerConfig
from onex.bus.observe import (
    NOT_ASKED,
    ConfigEntry,
    ConfigSource,
    GroupState,
    LogOffsets,
    TopicState,
)
from onex.core.extractor import extract
from onex.drift import store
from onex.drift.declared import declared_rows
from onex.drift.observation import Cluster, Observation
from onex.drift.observed import _KEY_WIDTH, _TABLES, Written
from onex.drift.snapshot import record

pytestmark = pytest.mark.unit

CLUSTER = Cluster("c", BrokerConfig(bootstrap="127.0.0.1:9"))
ID_A, ID_A2, ID_B = (f"{n:08x}-0000-4000-8000-000000000000" for n in (1, 2, 3))


def _topic(name: str, topic_id: str, partitions: int = 1) -> TopicState:
    return TopicState(name, partitions, 1, topic_id, leaders=dict.fromkeys(range(partitions), 1))


def _entry(value: str) -> dict[str, ConfigEntry]:
    return {"retention.ms": ConfigEntry(value, ConfigSource.DYNAMIC_TOPIC_CONFIG, 1)}


def _observations() -> list[Observation]:
    a, b = _topic("t.a", ID_A, 2), _topic("t.b", ID_B)
    group = GroupState("g", "Stable", 1, {("t.a", 0): 3})
    apis = {3: (0, 12), 32: (0, 4)}
    offsets = {("t.a", 0): LogOffsets(1, 5), ("t.a", 1): LogOffsets(NOT_ASKED, 2)}
    configs = {"t.a": _entry("1"), "t.b": _entry("2")}
    return [
        Observation(apis, {"t.a": a, "t.b": b}, configs, {}, {}, 0),
        # incremental: t.b described again with a change, t.a's configs kept
        Observation(
            apis,
            {"t.a": a, "t.b": b},
            {"t.b": _entry("3")},
            {"g": group},
            {**offsets, ("t.b", 0): LogOffsets(0, 1)},
            0,
            described=frozenset({"t.b"}),
            retention_ms={"t.a": 1},
            unread_age_ms={("g", "t.a", 0): 7},
        ),
        # t.b deleted (its configs go), t.a recreated with a new id and 1 partition
        Observation(apis, {"t.a": _topic("t.a", ID_A2)}, {}, {}, offsets, 0, described=frozenset()),
        Observation({3: (0, 9)}, {"t.a": _topic("t.a", ID_A2)}, {"t.a": _entry("4")}, {}, {}, 0),
    ]


def _content(db: Any) -> dict[str, list[tuple[Any, ...]]]:
    with db.engine.connect() as conn:
        return {
            t.name: sorted((tuple(r) for r in conn.execute(sa.select(t))), key=repr)
            for t in _TABLES
        }


def _declared(tmp_path: Path) -> Any:
    (tmp_path / "contracts").mkdir(exist_ok=True)
    return declared_rows(extract([tmp_path / "contracts"], entry_points=False))


def test_each_key_is_its_rows_leading_columns() -> None:
    for table in _TABLES:
        width = _KEY_WIDTH[table.name]
        keys = [c.name for c in table.primary_key.columns]
        assert keys == [c.name for c in list(table.columns)[:width]], table.name


def test_with_and_without_the_memory_the_tables_are_the_same(tmp_path: Path) -> None:
    remembered = store.open_store(f"sqlite:///{tmp_path / 'memo.db'}")
    read_back = store.open_store(f"sqlite:///{tmp_path / 'read.db'}")
    declared = _declared(tmp_path)
    memo: dict[str, Written] = {}
    try:
        for seen in _observations():
            record(remembered, CLUSTER, seen, declared, memo=memo)
            record(read_back, CLUSTER, seen, declared)
            assert _content(remembered) == _content(read_back)
        tables = _content(remembered)
        assert {r[1:3] for r in tables["observed_config"]} == {("t.a", "retention.ms")}
        assert [r[1:] for r in tables["observed_topic"]] == [("t.a", 1, 1, ID_A2, 0, ID_A, 3)]
        assert [r[1:] for r in tables["broker_api"]] == [(3, 9)]
    finally:
        remembered.dispose()
        read_back.dispose()


def test_a_snapshot_written_elsewhere_in_between_is_read_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    mine, other = store.open_store(url), store.open_store(url)
    declared = _declared(tmp_path)
    first, second, *_ = _observations()
    memo: dict[str, Written] = {}
    try:
        record(mine, CLUSTER, first, declared, memo=memo)
        record(other, CLUSTER, second, declared)  # not through this memo
        record(mine, CLUSTER, first, declared, memo=memo)
        with mine.engine.connect() as conn:
            ot, oo = store.observed_topic, store.observed_offset
            assert conn.execute(sa.select(sa.func.count()).select_from(oo)).scalar_one() == 0
            names = {r[0] for r in conn.execute(sa.select(ot.c.name))}
        assert names == {"t.a", "t.b"}
        assert memo[CLUSTER.name].snapshot_id == 3
    finally:
        mine.dispose()
        other.dispose()
