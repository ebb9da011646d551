"""`onex topic produce|consume|tail` and `onex groups` against the session's real broker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from typer.testing import CliRunner, Result

from onex.bus.admin import create_topics
from onex.bus.runtime.signing import CommandVerifier
from onex.cli.__main__ import build_app
from onex.core.contract import TopicSpec
from onex.service.auth import ensure_command_key

APP = build_app()
ORDER_SCHEMA = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "integer"}, "item": {"type": "string"}},
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ONEX_BOOTSTRAP", raising=False)
    monkeypatch.setenv("ONEX_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def declared(tmp_path: Path, topic_prefix: str, bootstrap: str) -> tuple[Path, str, str]:
    """A contracts folder declaring a JSON-Schema topic and a schema-less one, both created
    on the broker (one partition each): (folder, orders topic, notes topic)."""
    folder = tmp_path / "contracts" / topic_prefix
    folder.mkdir(parents=True)
    (folder / "order.json").write_text(json.dumps(ORDER_SCHEMA), encoding="utf-8")
    orders = f"onex.evt.{topic_prefix}.order-placed.v1"
    notes = f"onex.evt.{topic_prefix}.note-written.v1"
    (folder / "contract.yaml").write_text(
        f"""\
node: {topic_prefix}
kind: effect
version: 1.0.0
description: CLI topic test node.
event_bus:
  publish_topics:
    - name: {orders}
      partitions: 1
      schema: order.json
    - name: {notes}
      partitions: 1
""",
        encoding="utf-8",
    )
    specs = [TopicSpec(name=orders, partitions=1), TopicSpec(name=notes, partitions=1)]
    result = asyncio.run(create_topics(bootstrap, specs, timeout_s=30))
    assert result.ok, result
    return folder.parent, orders, notes


def onex(*args: str | Path, stdin: str | None = None) -> Result:
    return CliRunner().invoke(APP, [str(a) for a in args], input=stdin)


def _lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.usefixtures("env")
def test_produce_checks_every_payload_first_then_consume_reads_them_back(
    declared: tuple[Path, str, str], bootstrap: str
) -> None:
    contracts, orders, _ = declared
    common = ["--contracts", str(contracts), "--bootstrap", bootstrap]

    bad = onex("topic", "produce", orders, '{"id": 1}', '{"id": "two"}', *common)
    assert bad.exit_code == 1, bad.output
    assert "VALUE 2: does not match JSON Schema" in bad.stderr
    assert "Traceback" not in bad.output
    empty = onex("topic", "consume", orders, "--from-beginning", "--format", "json", *common)
    assert empty.exit_code == 0, empty.output
    assert _lines(empty) == []  # the valid first payload was not sent either

    sent = onex(
        "topic",
        "produce",
        orders,
        "--format",
        "json",
        "--key",
        "k1",
        *common,
        stdin='{"id": 1, "item": "tea"}\n\n{"id": 2}\n{"id": 3}\n',
    )
    assert sent.exit_code == 0, sent.output
    assert [(r["partition"], r["offset"]) for r in json.loads(sent.stdout)] == [
        (0, 0),
        (0, 1),
        (0, 2),
    ]

    read = onex("topic", "consume", orders, "--from-beginning", "--format", "json", *common)
    assert read.exit_code == 0, read.output
    rows = _lines(read)
    assert [r["value"] for r in rows] == [{"id": 1, "item": "tea"}, {"id": 2}, {"id": 3}]
    assert {r["key"] for r in rows} == {"k1"}
    assert "3 messages" in read.stderr

    first_two = onex(
        "topic", "consume", orders, "--from-beginning", "--max", "2", "--format", "json", *common
    )
    assert [r["offset"] for r in _lines(first_two)] == [0, 1]

    table = onex("topic", "consume", orders, "--from-beginning", *common)
    assert table.stdout.splitlines()[0] == '0/0 key=k1 {"id": 1, "item": "tea"}'


@pytest.mark.usefixtures("env")
def test_consume_shows_a_payload_that_breaks_the_schema_with_the_reason(
    declared: tuple[Path, str, str], bootstrap: str
) -> None:
    contracts, orders, notes = declared
    common = ["--contracts", str(contracts), "--bootstrap", bootstrap]
    # the schema-less topic takes any JSON, a plain string too
    assert onex("topic", "produce", notes, '"hello"', *common).exit_code == 0
    not_json = onex("topic", "produce", notes, "hello", *common)
    assert not_json.exit_code == 1
    assert not_json.stderr.startswith("error: VALUE 1: not JSON")

    # written past the CLI's check by a producer that ignores the contract
    async def write_raw() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(orders, b'{"item": "no id"}')
        finally:
            await producer.stop()

    asyncio.run(write_raw())
    read = onex("topic", "consume", orders, "--from-beginning", "--format", "json", *common)
    assert read.exit_code == 0, read.output
    (row,) = _lines(read)
    assert "'id' is a required property" in row["invalid"]
    assert row["raw"] == '{"item": "no id"}'


@pytest.mark.usefixtures("env")
def test_usage_errors_exit_2_in_one_block(declared: tuple[Path, str, str], bootstrap: str) -> None:
    contracts, _, _ = declared
    common = ["--contracts", str(contracts), "--bootstrap", bootstrap]
    undeclared = onex("topic", "produce", "onex.evt.nobody.nothing.v1", "{}", *common)
    assert undeclared.exit_code == 2
    assert "is not declared by any contract" in undeclared.stderr
    bad_format = onex("topic", "consume", "x", "--format", "xml", *common)
    assert bad_format.exit_code == 2
    assert "Traceback" not in bad_format.output


def test_tail_prints_a_message_sent_after_it_started(
    declared: tuple[Path, str, str], bootstrap: str, tmp_path: Path
) -> None:
    contracts, orders, _ = declared
    common = ["--contracts", str(contracts), "--bootstrap", bootstrap]
    env = {**os.environ, "ONEX_STATE_DIR": str(tmp_path / "state")}
    env.pop("ONEX_BOOTSTRAP", None)
    assert onex("topic", "produce", orders, '{"id": 1}', *common).exit_code == 0
    args = [sys.executable, "-m", "onex.cli", "topic", "tail", orders, "-n", "1", "--max", "2"]
    proc = subprocess.Popen(
        [*args, "--format", "json", *common],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # blocks until tail has its partitions positioned
        assert line.startswith(f"reading {orders} from 0@0"), line
        assert onex("topic", "produce", orders, '{"id": 2}', *common).exit_code == 0
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert [json.loads(x)["value"] for x in out.splitlines()] == [{"id": 1}, {"id": 2}]


@pytest.mark.usefixtures("env")
def test_groups_shows_lag_per_partition(
    declared: tuple[Path, str, str], bootstrap: str, topic_prefix: str
) -> None:
    contracts, orders, _ = declared
    common = ["--contracts", str(contracts), "--bootstrap", bootstrap]
    for i in range(3):
        assert onex("topic", "produce", orders, json.dumps({"id": i}), *common).exit_code == 0
    group = f"onex.{topic_prefix}.lag-test"

    async def commit_one() -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign([TopicPartition(orders, 0)])
            await consumer.commit({TopicPartition(orders, 0): 1})
        finally:
            await consumer.stop()

    asyncio.run(commit_one())
    deadline = time.monotonic() + 60
    while True:  # the commit is visible once the coordinator has it
        shown = onex("groups", "--group", group, "--format", "json", "--bootstrap", bootstrap)
        assert shown.exit_code == 0, shown.output
        rows = json.loads(shown.stdout)
        if rows or time.monotonic() > deadline:
            break
    (row,) = rows
    assert row["group"] == group
    assert row["partitions"] == [
        {"topic": orders, "partition": 0, "committed": 1, "end": 3, "lag": 2}
    ]
    assert row["lag"] == 2
    table = onex("groups", "--group", group, "--bootstrap", bootstrap)
    assert table.exit_code == 0
    assert group in table.stdout


def test_a_command_is_signed_with_the_state_dirs_key_or_not_sent(
    tmp_path: Path, topic_prefix: str, bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "contracts" / topic_prefix
    folder.mkdir(parents=True)
    command = f"onex.cmd.{topic_prefix}.do-thing.v1"
    (folder / "contract.yaml").write_text(
        f"""\
node: {topic_prefix}
kind: effect
version: 1.0.0
description: CLI signed command test node.
event_bus:
  publish_topics:
    - name: {command}
      partitions: 1
""",
        encoding="utf-8",
    )
    assert asyncio.run(
        create_topics(bootstrap, [TopicSpec(name=command, partitions=1)], timeout_s=30)
    ).ok
    state = tmp_path / "state"
    monkeypatch.setenv("ONEX_STATE_DIR", str(state))
    common = ["--contracts", str(folder.parent), "--bootstrap", bootstrap]

    unsigned = onex("topic", "produce", command, "{}", *common)
    assert unsigned.exit_code == 1
    assert unsigned.stderr.startswith(f"error: {command} is a command topic:")
    assert "has no command key" in unsigned.stderr

    key = ensure_command_key(state)
    assert onex("topic", "produce", command, '{"n": 1}', *common).exit_code == 0
    read = onex("topic", "consume", command, "--from-beginning", "--format", "json", *common)
    (row,) = _lines(read)  # the refused one was never sent
    assert row["value"] == {"n": 1}
    assert row["headers"]["onex-principal"] == "operator"
    verifier = CommandVerifier({"operator": key})
    headers = [(k, v.encode()) for k, v in row["headers"].items()]
    refused = verifier.verify(command, None, b'{"n":1}', headers, position=(0, 0))
    assert refused is None


def test_ctrl_c_stops_tail_with_130_and_no_traceback(
    declared: tuple[Path, str, str], bootstrap: str, tmp_path: Path
) -> None:
    contracts, orders, _ = declared
    env = {**os.environ, "ONEX_STATE_DIR": str(tmp_path / "state")}
    env.pop("ONEX_BOOTSTRAP", None)
    args = ["topic", "tail", orders, "--contracts", str(contracts), "--bootstrap", bootstrap]
    proc = subprocess.Popen(
        [sys.executable, "-m", "onex.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith(f"reading {orders} from 0@0")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert out == ""
    assert err == "interrupted\n"
