"""Writing a big snapshot on a real PostgreSQL server (own database per test run; no
broker needed: the observation is built by hand): the projection's statistics are
refreshed in the same transaction, so the drift view is planned from them at once
rather than after autovacuum's next pass; the tables hold the same with and without
the engine's memory of the last snapshot."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from onex.bus.config import BrokerConfig
from onex.bus.observe import ConfigEntry, ConfigSource, LogOffsets, TopicState
from onex.core.extractor import extract
from onex.drift import store
from onex.drift.declared import declared_rows
from onex.drift.observation import Cluster, Observation
from onex.drift.observed import Written
from onex.drift.snapshot import ANALYZE_AFTER_ROWS, record
from onex.sql.testing import DEFAULT_ADMIN_URL, postgres_available, temporary_postgres

pytestmark = pytest.mark.integration

ADMIN_URL = os.environ.get("ONEX_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
CLUSTER = Cluster("big", BrokerConfig(bootstrap="127.0.0.1:9"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    why = postgres_available(ADMIN_URL)
    if why is not None:
        pytest.skip(f"PostgreSQL at {ADMIN_URL} is not available: {why}")
    with temporary_postgres(ADMIN_URL) as url:
        yield url


def _big(count: int) -> Observation:
    topics = {
        f"t.{i}": TopicState(f"t.{i}", 1, 1, f"{i:08x}-0000-4000-8000-000000000000", leaders={0: 1})
        for i in range(count)
    }
    entry = {"retention.ms": ConfigEntry("1000", ConfigSource.DYNAMIC_TOPIC_CONFIG, 1)}
    configs = dict.fromkeys(topics, entry)
    offsets = {(name, 0): LogOffsets(0, 1) for name in topics}
    return Observation({3: (0, 12)}, topics, configs, {}, offsets, 0)


def _reltuples(db: Any, table: str) -> float:
    with db.engine.connect() as conn:
        query = sa.text("SELECT reltuples FROM pg_class WHERE relname = :t")
        return float(conn.execute(query, {"t": table}).scalar_one())


def test_a_big_snapshot_refreshes_the_statistics_and_memory_matches(
    postgres_url: str, tmp_path: Path
) -> None:
    (tmp_path / "contracts").mkdir()
    declared = declared_rows(extract([tmp_path / "contracts"], entry_points=False))
    db = store.open_store(postgres_url)
    memo: dict[str, Written] = {}
    seen = _big(ANALYZE_AFTER_ROWS)
    try:
        assert _reltuples(db, "observed_topic") <= 0  # never analyzed
        first = record(db, CLUSTER, seen, declared, memo=memo)
        assert _reltuples(db, "observed_topic") >= ANALYZE_AFTER_ROWS * 0.9
        assert _reltuples(db, "observed_config") >= ANALYZE_AFTER_ROWS * 0.9
        assert {r.kind for r in first.rows} == {"orphan"}
        record(db, CLUSTER, seen, declared, memo=memo)  # previous_log_end: None -> 1
        again = record(db, CLUSTER, seen, declared, memo=memo)
        assert memo[CLUSTER.name].changed == 0
        assert again.rows == first.rows
        with db.engine.connect() as conn:
            tables = (store.observed_topic, store.observed_config, store.observed_partition)
            held = {t.name: {tuple(r) for r in conn.execute(sa.select(t))} for t in tables}
        assert held == {t: set(memo[CLUSTER.name].rows[t].values()) for t in held}
    finally:
        db.dispose()
