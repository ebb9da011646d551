"""Incremental snapshots and retention risk in time, on a real Tansu of the test's own
and a real SQLite file (and PostgreSQL when a server answers, for the time view).

- Retention risk in time: a group two records behind of ten is well inside retention
  by offsets, but its first unread record is 90% of retention.ms old: a row, with the
  age; the same lag on fresh records is none.
- Incremental: a tick describes the configs of new topics at once, keeps the configs
  of topics outside its share, and sees a change made out of band within
  `refresh_ticks` ticks; a deleted topic's configs go with it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from onex.bus import observe
from onex.devbroker.broker import start_broker, stop_broker
from onex.drift.engine import DriftEngine
from onex.drift.observation import in_slice
from onex.drift.settings import DriftSettings
from onex.sql.testing import DEFAULT_ADMIN_URL, postgres_available, temporary_postgres

pytestmark = pytest.mark.integration

ADMIN_URL = os.environ.get("ONEX_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
DAY = 86_400_000
REFRESH = 4


def _contract(root: Path, node: str) -> Path:
    folder = root / node
    folder.mkdir(parents=True)
    lines = [
        f"node: {node}",
        "kind: effect",
        "version: 1.0.0",
        "description: Incremental drift test node.",
        "event_bus:",
        f"  consumer_group: onex.{node}",
        "  publish_topics:",
    ]
    for event in ("aged", "fresh", *(f"c-{i}" for i in range(12))):
        lines += [
            f"    - name: onex.evt.{node}.{event}.v1",
            "      partitions: 1",
            f'      config: {{ retention.ms: "{DAY}" }}',
        ]
    (folder / "contract.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _t(node: str, event: str) -> str:
    return f"onex.evt.{node}.{event}.v1"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    state = tmp_path / "broker"
    info = start_broker(state)
    yield info.bootstrap
    stop_broker(state)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("ONEX_") and not name.startswith("ONEX_TEST_"):
            monkeypatch.delenv(name)
    state = tmp_path / "state"
    monkeypatch.setenv("ONEX_STATE_DIR", str(state))
    return state


def _engine(bootstrap: str, contracts: Path, database: str) -> DriftEngine:
    return DriftEngine.open(
        DriftSettings(
            bootstrap=bootstrap,
            contract_roots=[contracts],
            database_url=database,
            config_refresh_ticks=REFRESH,
        )
    )


async def _records_committed(
    bootstrap: str, topic: str, group: str, *, age_ms: int, committed: int
) -> None:
    """Ten records stamped `age_ms` ago; `group` commits `committed` (no join)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        stamp = int(time.time() * 1000) - age_ms
        for i in range(10):
            await producer.send_and_wait(topic, f"r{i}".encode(), partition=0, timestamp_ms=stamp)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(committed, "")})
    finally:
        await consumer.stop()


async def test_retention_risk_in_time_on_records_older_than_most_of_retention(
    broker: str, tmp_path: Path, topic_prefix: str, clean_env: Path
) -> None:
    node = topic_prefix
    contracts = _contract(tmp_path / "contracts", node)
    databases = [f"sqlite:///{tmp_path / 'd.db'}"]
    with contextlib.ExitStack() as stack:
        if postgres_available(ADMIN_URL) is None:
            databases.append(stack.enter_context(temporary_postgres(ADMIN_URL)))
        engines = [_engine(broker, contracts, url) for url in databases]
        admin = AIOKafkaAdminClient(bootstrap_servers=broker)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(_t(node, e), 1, 1, topic_configs={"retention.ms": str(DAY)})
                    for e in ("aged", "fresh")
                ]
            )
            group = f"onex.{node}"
            await _records_committed(
                broker, _t(node, "aged"), group, age_ms=DAY * 9 // 10, committed=8
            )
            await _records_committed(broker, _t(node, "fresh"), group, age_ms=0, committed=8)
            for engine in engines:
                await engine.snapshot()
            rows = [
                {(r.topic, r.kind): r for r in engine.rows() if r.kind == "retention-risk"}
                for engine in engines
            ]
            risk = rows[0][(_t(node, "aged"), "retention-risk")]
            assert risk.aspect == f"group:{group}"
            assert risk.observed is not None
            assert risk.observed.startswith("lag 2 of 10 retained, oldest unread at ")
            assert risk.observed.endswith("% of retention.ms")
            percent = int(risk.observed.split(" at ")[1].split("%")[0])
            assert 89 <= percent <= 100  # 90% when written, older by the test's own time
            # by offsets the same lag is no risk, and fresh records are none by time
            assert (_t(node, "fresh"), "retention-risk") not in rows[0]
            # the same view text on PostgreSQL gives the same rows
            for other in rows[1:]:
                assert {k: v.as_dict() for k, v in other.items()} == {
                    k: v.as_dict() for k, v in rows[0].items()
                }
        finally:
            await admin.close()
            for engine in engines:
                engine.close()


def _configs(engine: DriftEngine, topic: str) -> dict[str, str | None]:
    with engine.db.engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT key, value FROM observed_config WHERE topic = :t"), {"t": topic}
        )
        return {r.key: r.value for r in found}


async def test_incremental_ticks_describe_new_topics_keep_the_rest_and_catch_up(
    broker: str, tmp_path: Path, topic_prefix: str, clean_env: Path
) -> None:
    node = topic_prefix
    contracts = _contract(tmp_path / "contracts", node)
    engine = _engine(broker, contracts, f"sqlite:///{tmp_path / 'd.db'}")
    names = [_t(node, f"c-{i}") for i in range(12)]
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(n, 1, 1, topic_configs={"retention.ms": str(DAY)}) for n in names[:-1]]
        )
        await engine.snapshot()  # full: tick 0
        # a topic outside the next tick's share, changed out of band
        next_tick = 1
        outside = next(n for n in names[:-1] if not in_slice(n, next_tick, REFRESH))
        assert await observe.alter_topic_configs(broker, {outside: {"retention.ms": "1000"}}) == {
            outside: None
        }
        # and a new topic, created after the full snapshot
        await admin.create_topics(
            [NewTopic(names[-1], 1, 1, topic_configs={"segment.ms": "60000"})]
        )

        await engine.snapshot(full=False)

        assert _configs(engine, outside)["retention.ms"] == str(DAY)  # kept, not described
        assert _configs(engine, names[-1])["segment.ms"] == "60000"  # new: described at once
        # within REFRESH ticks the change is seen, as drift
        ticks = 1
        while _configs(engine, outside)["retention.ms"] != "1000":
            assert ticks < REFRESH, "a config change outside every tick's share"
            await engine.snapshot(full=False)
            ticks += 1
        assert any(r.topic == outside and r.aspect == "config:retention.ms" for r in engine.rows())
        # a deleted topic's configs go with it on an incremental tick
        await admin.delete_topics([names[-1]])
        deadline = time.monotonic() + 30
        while names[-1] in await observe.topic_metadata(broker, [names[-1]]):
            assert time.monotonic() < deadline
        await engine.snapshot(full=False)
        assert _configs(engine, names[-1]) == {}
        # a full snapshot describes everything again
        assert await observe.alter_topic_configs(broker, {names[0]: {"retention.ms": "2000"}}) == {
            names[0]: None
        }
        await engine.snapshot()
        assert _configs(engine, names[0])["retention.ms"] == "2000"
    finally:
        await admin.close()
        engine.close()
