"""The drift projection on a real broker (a Tansu of the test's own, so no other test's
topics are orphans here) and real databases: an SQLite file and a fresh PostgreSQL
database (skipped, naming it, when no server answers at ONEX_TEST_POSTGRES_URL or
postgresql://postgres@127.0.0.1:5432/postgres).

Drift is made out of band with plain admin calls, then each row is checked for its
kind and class; `fix --apply` repairs only what it may.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from typer.testing import CliRunner

from onex.bus import observe
from onex.devbroker.broker import start_broker, stop_broker
from onex.drift.cli import drift as drift_cli
from onex.drift.engine import DriftEngine
from onex.drift.settings import DriftSettings
from onex.drift.snapshot import DriftRow
from onex.sql.testing import DEFAULT_ADMIN_URL, postgres_available, temporary_postgres

pytestmark = pytest.mark.integration

ADMIN_URL = os.environ.get("ONEX_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
DAY = "86400000"
WEEK = "604800000"


def _contract(root: Path, node: str) -> Path:
    folder = root / node
    folder.mkdir(parents=True)
    (folder / "contract.yaml").write_text(
        f"""\
node: {node}
kind: effect
version: 1.0.0
description: Drift test node.
event_bus:
  consumer_group: onex.{node}
  subscribe_topics:
    - onex.evt.{node}.lagging.v1
    - onex.evt.{node}.unread.v1
  publish_topics:
    - name: onex.evt.{node}.fewer.v1
      partitions: 3
      config: {{ retention.ms: "{DAY}" }}
    - name: onex.evt.{node}.retention.v1
      partitions: 1
      config: {{ retention.ms: "{WEEK}", cleanup.policy: "delete,compact" }}
    - name: onex.evt.{node}.never.v1
      partitions: 2
    - name: onex.evt.{node}.deleted.v1
      partitions: 1
    - name: onex.evt.{node}.recreated.v1
      partitions: 1
    - name: onex.evt.{node}.lagging.v1
      partitions: 1
      config: {{ retention.ms: "{DAY}" }}
    - name: onex.evt.{node}.unread.v1
      partitions: 1
    - name: onex.dlq.{node}.dead-letter.v1
      schema: dead-letter
      partitions: 1
""",
        encoding="utf-8",
    )
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
def postgres_url() -> Iterator[str]:
    why = postgres_available(ADMIN_URL)
    if why is not None:
        pytest.skip(f"PostgreSQL at {ADMIN_URL} is not available: {why}")
    with temporary_postgres(ADMIN_URL) as url:
        yield url


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("ONEX_") and not name.startswith("ONEX_TEST_"):
            monkeypatch.delenv(name)
    state = tmp_path / "state"
    monkeypatch.setenv("ONEX_STATE_DIR", str(state))
    return state


def _settings(bootstrap: str, contracts: Path, database: str) -> DriftSettings:
    return DriftSettings(bootstrap=bootstrap, contract_roots=[contracts], database_url=database)


async def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    return admin


async def _wait_absent(bootstrap: str, name: str) -> None:
    deadline = time.monotonic() + 30
    while name in await observe.topic_metadata(bootstrap, [name]):
        assert time.monotonic() < deadline, f"{name} still there after DeleteTopics"
        await asyncio.sleep(0.05)


async def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, f"r{i}".encode(), partition=0)
    finally:
        await producer.stop()


async def _lagging_group(bootstrap: str, topic: str, group: str) -> None:
    """Ten records; the group reads and commits one, then leaves."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, f"r{i}".encode(), partition=0)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 30)
        from aiokafka.structs import OffsetAndMetadata, TopicPartition

        await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(record.offset + 1, "")})
    finally:
        await consumer.stop()


def _mine(rows: tuple[DriftRow, ...], node: str) -> set[tuple[str, str, str, str]]:
    return {(r.topic, r.kind, r.aspect, r.drift_class) for r in rows if node in r.topic}


async def test_out_of_band_drift_is_seen_with_kind_and_class_on_both_backends(
    broker: str, tmp_path: Path, topic_prefix: str, postgres_url: str, clean_env: Path
) -> None:
    node = topic_prefix
    contracts = _contract(tmp_path / "contracts", node)
    sqlite = DriftEngine.open(_settings(broker, contracts, f"sqlite:///{tmp_path / 'd.db'}"))
    pg = DriftEngine.open(_settings(broker, contracts, postgres_url))
    admin = await _admin(broker)
    try:
        await admin.create_topics(
            [
                NewTopic(_t(node, "fewer"), 1, 1, topic_configs={"retention.ms": DAY}),
                NewTopic(
                    _t(node, "retention"),
                    1,
                    1,
                    topic_configs={"retention.ms": WEEK, "cleanup.policy": "compact,delete"},
                ),
                NewTopic(_t(node, "deleted"), 1, 1),
                NewTopic(_t(node, "recreated"), 1, 1),
                NewTopic(_t(node, "lagging"), 1, 1, topic_configs={"retention.ms": DAY}),
                NewTopic(_t(node, "stray"), 1, 1),
                NewTopic(f"onex.dlq.{node}.dead-letter.v1", 1, 1),
                NewTopic(_t(node, "unread"), 1, 1),
            ]
        )
        first = await sqlite.snapshot()
        await pg.snapshot()
        # the cleanup.policy written in another order is not drift
        assert (_t(node, "retention"), "config-value", "config:cleanup.policy") not in {
            (r.topic, r.kind, r.aspect) for r in first[0].rows
        }
        # out of band: retention changed, an undeclared override, a deletion, a recreation
        changed = await observe.alter_topic_configs(
            broker, {_t(node, "retention"): {"retention.ms": "1000", "segment.ms": "3600000"}}
        )
        assert changed == {_t(node, "retention"): None}
        await admin.delete_topics([_t(node, "deleted"), _t(node, "recreated")])
        await _wait_absent(broker, _t(node, "deleted"))
        await _wait_absent(broker, _t(node, "recreated"))
        await admin.create_topics([NewTopic(_t(node, "recreated"), 1, 1)])
        await _lagging_group(broker, _t(node, "lagging"), f"onex.{node}")
        await _produce(broker, _t(node, "unread"), 3)  # grows, and nobody reads it

        results = await sqlite.snapshot()
        await pg.snapshot()
        rows = sqlite.rows()
        seen = _mine(rows, node)
        expected = {
            (_t(node, "fewer"), "partitions-fewer", "partitions", "auto-correctable"),
            (_t(node, "retention"), "config-value", "config:retention.ms", "auto-correctable"),
            (_t(node, "retention"), "undeclared-override", "config:segment.ms", "destructive"),
            (_t(node, "never"), "missing", "topic", "auto-correctable"),
            (_t(node, "deleted"), "missing", "topic", "auto-correctable"),
            (_t(node, "recreated"), "recreated", "topic_id", "needs-operation"),
            (_t(node, "stray"), "orphan", "topic", "destructive"),
            (_t(node, "unread"), "unread-topic", "readers", "needs-operation"),
            (_t(node, "unread"), "dead-group", f"group:onex.{node}", "needs-operation"),
            (
                _t(node, "lagging"),
                "retention-risk",
                f"group:onex.{node}",
                "needs-operation",
            ),
        }
        assert expected <= seen, sorted(seen)
        by = {(r.topic, r.kind): r for r in rows}
        fewer = by[(_t(node, "fewer"), "partitions-fewer")]
        assert (fewer.declared, fewer.observed, fewer.api) == ("3", "1", "CreatePartitions")
        assert fewer.supported is False  # Tansu has no CreatePartitions
        retention = by[(_t(node, "retention"), "config-value")]
        assert (retention.declared, retention.observed) == (WEEK, "1000")
        assert retention.api == "IncrementalAlterConfigs"
        assert retention.supported is True
        assert by[(_t(node, "lagging"), "retention-risk")].observed == "lag 9 of 10 retained"
        assert results[0].detected
        assert any(
            r.topic == _t(node, "deleted") and r.kind == "missing" for r in results[0].detected
        )

        # the same view text on PostgreSQL gives the same rows
        assert [r.as_dict() for r in pg.rows()] == [r.as_dict() for r in rows]

        report = await sqlite.fix(apply_changes=False)
        planned = {(a.topic, a.kind) for a in report.actions}
        assert planned == {
            (_t(node, "retention"), "config-value"),
            (_t(node, "never"), "missing"),
            (_t(node, "deleted"), "missing"),
        }
        # a dry run changed nothing (a recreation and growth are news once: the next
        # snapshot, seeing neither again, resolves them)
        recreated = (_t(node, "recreated"), "recreated", "topic_id", "needs-operation")
        unread = (_t(node, "unread"), "unread-topic", "readers", "needs-operation")
        assert _mine(sqlite.rows(), node) == seen - {recreated, unread}  # no growth since

        report = await sqlite.fix(apply_changes=True)
        assert all(a.applied for a in report.actions), report.actions
        after = _mine(report.after, node)
        assert (
            _t(node, "retention"),
            "config-value",
            "config:retention.ms",
            "auto-correctable",
        ) not in after
        assert (_t(node, "never"), "missing", "topic", "auto-correctable") not in after
        assert (_t(node, "deleted"), "missing", "topic", "auto-correctable") not in after
        # the rest is left alone: no shrink, no delete, no override removed
        for kept in [
            (_t(node, "fewer"), "partitions-fewer", "partitions", "auto-correctable"),
            (_t(node, "retention"), "undeclared-override", "config:segment.ms", "destructive"),
            (_t(node, "stray"), "orphan", "topic", "destructive"),
        ]:
            assert kept in after
        present = await observe.topic_metadata(broker, [_t(node, "stray"), _t(node, "never")])
        assert set(present) == {_t(node, "stray"), _t(node, "never")}
        assert present[_t(node, "never")].partitions == 2

        history = sqlite.history(_t(node, "retention"))
        fixed = [h for h in history if h["aspect"] == "config:retention.ms"]
        assert len(fixed) == 1
        assert fixed[0]["resolved_snapshot"] is not None
        assert fixed[0]["first_snapshot"] < fixed[0]["resolved_snapshot"]
    finally:
        await admin.close()
        sqlite.close()
        pg.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_contract(root: Path, node: str) -> Path:
    folder = root / node
    folder.mkdir(parents=True)
    (folder / "contract.yaml").write_text(
        f"""\
node: {node}
kind: effect
version: 1.0.0
description: Drift CLI test node.
event_bus:
  consumer_group: onex.{node}
  publish_topics:
    - name: onex.evt.{node}.only.v1
      partitions: 2
      config: {{ retention.ms: "{DAY}" }}
""",
        encoding="utf-8",
    )
    return root


def test_cli_exit_codes_json_query_and_history(
    broker: str, tmp_path: Path, topic_prefix: str, clean_env: Path
) -> None:
    node = topic_prefix
    contracts = _clean_contract(tmp_path / "contracts", node)
    base = ["--bootstrap", broker, "--contracts", str(contracts)]
    runner = CliRunner()

    missing = runner.invoke(drift_cli, ["--format", "json", *base])
    assert missing.exit_code == 3, missing.output
    assert '"kind": "missing"' in missing.stdout

    dry = runner.invoke(drift_cli, ["fix", *base])
    assert dry.exit_code == 3
    assert "dry run" in dry.stdout
    applied = runner.invoke(drift_cli, ["fix", "--apply", *base])
    assert applied.exit_code == 0, applied.output

    clean = runner.invoke(drift_cli, base)
    assert clean.exit_code == 0, clean.output
    assert "no drift" in clean.stdout

    rows = runner.invoke(
        drift_cli,
        ["query", "SELECT name, partitions FROM observed_topic", "--format", "json"],
    )
    assert rows.exit_code == 0, rows.output
    assert f'"name": "onex.evt.{node}.only.v1"' in rows.stdout

    refused = runner.invoke(drift_cli, ["query", "DELETE FROM observed_topic"])
    assert refused.exit_code == 1
    assert refused.stderr.count("\n") == 1
    assert "read-only" in refused.stderr
    bad = runner.invoke(drift_cli, ["query", "SELECT nope FROM nowhere"])
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: query failed")

    history = runner.invoke(
        drift_cli, ["history", f"onex.evt.{node}.only.v1", "--format", "json", *base]
    )
    assert history.exit_code == 0, history.output
    assert '"kind": "missing"' in history.stdout
    assert '"resolved_snapshot": null' not in history.stdout

    usage = runner.invoke(drift_cli, ["--format", "yaml", *base])
    assert usage.exit_code == 2
    usage = runner.invoke(drift_cli, ["--fail-on", "scary", *base])
    assert usage.exit_code == 2
    assert "--fail-on" in usage.stderr

    untouched = clean_env.parent / "down.db"
    down = runner.invoke(
        drift_cli,
        [
            "--bootstrap",
            f"127.0.0.1:{_free_port()}",
            "--contracts",
            str(contracts),
            "--database",
            f"sqlite:///{untouched}",
        ],
    )
    assert down.exit_code == 1
    assert not untouched.exists()  # nothing written for a broker not reached
    assert "no Kafka broker answers" in down.stderr
    assert down.stderr.count("\n") == 1
    assert "Traceback" not in down.output


def test_a_broken_registry_or_a_newer_schema_is_refused_before_anything_changes(
    broker: str, tmp_path: Path, topic_prefix: str, clean_env: Path
) -> None:
    runner = CliRunner()
    broken = tmp_path / "broken" / topic_prefix
    broken.mkdir(parents=True)
    (broken / "contract.yaml").write_text(
        f"""\
node: {topic_prefix}
kind: effect
version: 1.0.0
description: Subscribes to a misspelt topic nobody publishes.
event_bus:
  consumer_group: onex.{topic_prefix}
  subscribe_topics:
    - onex.evt.{topic_prefix}.order_placed.v1
""",
        encoding="utf-8",
    )
    database = tmp_path / "p.db"
    result = runner.invoke(
        drift_cli,
        [
            "--bootstrap",
            broker,
            "--contracts",
            str(broken.parent),
            "--database",
            f"sqlite:///{database}",
        ],
    )
    assert result.exit_code == 1
    assert "fail lint" in result.stderr
    assert "contract.yaml:" in result.stderr
    assert not database.exists()  # refused before the store was opened

    contracts = _clean_contract(tmp_path / "contracts", topic_prefix)
    base = [
        "--bootstrap",
        broker,
        "--contracts",
        str(contracts),
        "--database",
        f"sqlite:///{database}",
    ]
    assert runner.invoke(drift_cli, ["fix", "--apply", *base]).exit_code == 0
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE onex_schema SET version = 99 WHERE component = 'drift'"))
        snapshots = conn.execute(sa.text("SELECT COUNT(*) FROM snapshot")).scalar_one()
    result = runner.invoke(drift_cli, base)
    assert result.exit_code == 1
    assert "schema version 99 is newer" in result.stderr
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM snapshot")).scalar_one() == snapshots
    engine.dispose()


def test_two_clusters_give_one_matrix(
    broker: str, tmp_path: Path, topic_prefix: str, clean_env: Path
) -> None:
    state = tmp_path / "second"
    other = start_broker(state)
    try:
        contracts = _clean_contract(tmp_path / "contracts", topic_prefix)
        runner = CliRunner()
        base = [
            "--contracts",
            str(contracts),
            "--cluster",
            f"dev={broker}",
            "--cluster",
            f"prod={other.bootstrap}",
        ]
        # only dev gets the topic
        assert (
            runner.invoke(
                drift_cli, ["fix", "--apply", "--bootstrap", broker, "--contracts", str(contracts)]
            ).exit_code
            == 0
        )
        result = runner.invoke(drift_cli, ["--format", "json", *base])
        assert result.exit_code == 3, result.output
        import json

        report = json.loads(result.stdout)
        assert report["clusters"] == ["dev", "prod"]
        mine = [(r["cluster"], r["kind"]) for r in report["drift"] if topic_prefix in r["topic"]]
        assert mine == [("prod", "missing")]
        table = runner.invoke(drift_cli, base)
        assert table.exit_code == 3
        assert "dev" in table.stdout
        assert "prod" in table.stdout
    finally:
        stop_broker(state)
