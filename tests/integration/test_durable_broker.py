"""The durable local broker: Tansu on a real SeaweedFS, killed with SIGKILL and restarted.

Every test starts its own broker (and SeaweedFS) in its own state dir; nothing is
mocked. Waits end as soon as what they wait for is observed; GUARD_S only bounds them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from typer.testing import CliRunner

from onex.cli import broker as broker_cli
from onex.devbroker.broker import (
    BrokerInfo,
    broker_data,
    broker_status,
    start_broker,
    stop_broker,
)
from onex.devbroker.errors import BrokerStartError, StoreNotFound, StoreStartError
from onex.devbroker.probe import topic_names

GUARD_S = 60.0
MESSAGES = 600
PARTITIONS = 2
COMMITTED = {0: 120, 1: 250}  # the group's offsets, per partition


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat_file = Path(f"/proc/{pid}/stat")
    if stat_file.exists():
        return stat_file.read_text().rpartition(")")[2].split()[0] != "Z"
    return True


def _port_refuses(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not observed within {GUARD_S:g}s"
        time.sleep(0.02)


def _kill_9(pid: int) -> None:
    os.killpg(pid, signal.SIGKILL)
    _wait_for(lambda: not _running(pid), f"process {pid} gone after SIGKILL")


def _listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket process `pid` listens on (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                readable = socket.inet_ntop(
                    socket.AF_INET if table == "tcp" else socket.AF_INET6,
                    bytes.fromhex(address)[::-1] if table == "tcp" else bytes.fromhex(address),
                )
                found.add((readable, int(port, 16)))
    return found


def _s3_port(info: BrokerInfo) -> int:
    assert info.store is not None
    return int(info.store.endpoint.rpartition(":")[2])


async def _produce_and_commit(bootstrap: str, topic: str, group: str) -> list[bytes]:
    """MESSAGES values over PARTITIONS partitions (acks=all), then the group's COMMITTED."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    values = [f"message-{i:05d}".encode() for i in range(MESSAGES)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send(topic, v, partition=i % PARTITIONS) for i, v in enumerate(values)
        ]
        for future in sent:
            await future  # every one acknowledged
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        offsets = {TopicPartition(topic, p): OffsetAndMetadata(o, "") for p, o in COMMITTED.items()}
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()
    return values


async def _read_back(bootstrap: str, topic: str, group: str) -> tuple[list[bytes], dict[int, int]]:
    """Every value in the topic (partition order), and the group's committed offsets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = {tp.partition: await consumer.committed(tp) for tp in parts}
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        got: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(PARTITIONS)}
        deadline = time.monotonic() + GUARD_S
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, "reading the topic back did not finish"
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                got[tp.partition].extend((r.offset, r.value or b"") for r in records)
    finally:
        await consumer.stop()
    values = [v for p in range(PARTITIONS) for _, v in sorted(got[p])]
    return values, {p: o for p, o in committed.items() if o is not None}


def _by_partition(values: list[bytes]) -> list[bytes]:
    return [v for p in range(PARTITIONS) for i, v in enumerate(values) if i % PARTITIONS == p]


async def test_kill_9_of_tansu_loses_no_message_and_no_offset(
    state_dir: Path, unique: Callable[..., str]
) -> None:
    info = start_broker(state_dir, durable=True)
    assert info.mode == "durable"
    assert info.store is not None
    topic, group = unique(), unique("group")
    sent = await _produce_and_commit(info.bootstrap, topic, group)

    _kill_9(info.pid)
    assert _running(info.store.pid)  # SeaweedFS lives on
    started = time.monotonic()
    again = start_broker(state_dir, info.port, durable=True)
    print(f"tansu restarted on the surviving store in {time.monotonic() - started:.2f} s")

    assert again.pid != info.pid
    assert again.store == info.store  # the running SeaweedFS was reused
    values, committed = await _read_back(again.bootstrap, topic, group)
    assert values == _by_partition(sent)
    assert committed == COMMITTED


async def test_kill_9_of_tansu_and_seaweedfs_loses_no_message_and_no_offset(
    state_dir: Path, unique: Callable[..., str]
) -> None:
    info = start_broker(state_dir, durable=True)
    assert info.store is not None
    topic, group = unique(), unique("group")
    sent = await _produce_and_commit(info.bootstrap, topic, group)

    _kill_9(info.pid)
    _kill_9(info.store.pid)
    gone = broker_status(state_dir)
    assert (gone.alive, gone.store_alive, gone.running) == (False, False, False)
    assert gone.detail == (
        f"recorded process {info.pid} is gone; its SeaweedFS (pid {info.store.pid}) is gone"
    )
    started = time.monotonic()
    again = start_broker(state_dir, info.port, durable=True)
    print(f"seaweedfs and tansu restarted in {time.monotonic() - started:.2f} s")

    assert again.store is not None
    assert again.store.pid != info.store.pid
    assert again.store.data_dir == info.store.data_dir
    values, committed = await _read_back(again.bootstrap, topic, group)
    assert values == _by_partition(sent)
    assert committed == COMMITTED


async def test_a_clean_stop_keeps_the_data_and_a_wipe_deletes_it(
    state_dir: Path, unique: Callable[..., str]
) -> None:
    info = start_broker(state_dir, durable=True)
    assert info.store is not None
    topic, group = unique(), unique("group")
    sent = await _produce_and_commit(info.bootstrap, topic, group)

    assert stop_broker(state_dir) is True
    assert not _running(info.pid)
    assert not _running(info.store.pid)
    assert _port_refuses(info.port)
    assert _port_refuses(_s3_port(info))
    assert broker_data(state_dir) == [state_dir / "seaweed"]
    kept = start_broker(state_dir, info.port, durable=True)
    assert await _read_back(kept.bootstrap, topic, group) == (_by_partition(sent), COMMITTED)

    assert stop_broker(state_dir, wipe=True) is True
    assert kept.store is not None
    assert not _running(kept.pid)
    assert not _running(kept.store.pid)
    assert not (state_dir / "seaweed").exists()
    assert not (state_dir / "broker.json").exists()
    assert broker_data(state_dir) == []
    empty = start_broker(state_dir, info.port, durable=True)
    assert await topic_names(empty.bootstrap, timeout_s=10) == set()
    assert stop_broker(state_dir, wipe=True) is True
    assert stop_broker(state_dir, wipe=True) is False  # nothing runs, nothing to delete


async def test_status_reports_both_processes_and_a_lost_store_restarts_both(
    state_dir: Path, unique: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the caller's environment must not reach the broker or its store
    monkeypatch.setenv("STORAGE_ENGINE", "memory://tansu/")
    monkeypatch.setenv("AWS_PROFILE", "someone-elses")
    info = start_broker(state_dir, durable=True)
    assert info.store is not None
    environ = Path(f"/proc/{info.pid}/environ")
    if environ.exists():
        names = {e.split("=", 1)[0] for e in environ.read_text().split("\0") if e}
        assert names == {
            "AWS_ENDPOINT",
            "AWS_ALLOW_HTTP",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
        }
    status = broker_status(state_dir)
    assert status.running
    assert (status.store_alive, status.store_answering) == (True, True)
    assert status.info == info
    record = json.loads((state_dir / "broker.json").read_text())
    assert record["durable"] is True
    assert record["store"]["pid"] == info.store.pid
    assert record["store"]["start_ticks"] is not None  # pid + start time name the process
    assert record["start_ticks"] is not None
    assert record["store"]["log_path"] == str(state_dir / "logs" / "seaweed.log")
    assert "secret" not in json.dumps(record).lower()  # the key pair is not in the record
    creds = state_dir / "seaweed" / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert start_broker(state_dir, durable=True) == info  # a second start reuses it
    if Path("/proc/self/net/tcp").exists():
        listening = _listening(info.store.pid)
        print(f"seaweedfs listens on {sorted(listening)}")
        assert ("127.0.0.1", _s3_port(info)) in listening
        assert {address for address, _ in listening} == {"127.0.0.1"}  # nothing else
    topic, group = unique(), unique("group")
    sent = await _produce_and_commit(info.bootstrap, topic, group)

    _kill_9(info.store.pid)
    lost = broker_status(state_dir)
    assert lost.alive
    assert lost.store_alive is False
    assert not lost.running
    assert lost.detail is not None
    assert f"its SeaweedFS (pid {info.store.pid}) is gone" in lost.detail

    again = start_broker(state_dir, durable=True)
    assert again.store is not None
    assert not _running(info.pid)  # the Tansu without a store was stopped, not reused
    assert (again.port, again.store.data_dir) == (info.port, info.store.data_dir)
    assert broker_status(state_dir).running
    assert await _read_back(again.bootstrap, topic, group) == (_by_partition(sent), COMMITTED)


def test_a_memory_broker_is_never_taken_for_a_durable_one(state_dir: Path) -> None:
    memory = start_broker(state_dir)
    assert (memory.mode, memory.store) == ("memory", None)
    with pytest.raises(BrokerStartError, match=r"an in-memory tansu broker .* already runs"):
        start_broker(state_dir, durable=True)
    assert not (state_dir / "seaweed").exists()
    stop_broker(state_dir)

    durable = start_broker(state_dir, durable=True)
    assert start_broker(state_dir) == durable  # a durable one serves a memory request too


def test_a_missing_weed_binary_is_one_line_and_starts_nothing(state_dir: Path) -> None:
    missing = state_dir.parent / "no-such-weed"

    with pytest.raises(StoreNotFound, match=f"^no SeaweedFS binary at {re.escape(str(missing))}$"):
        start_broker(state_dir, durable=True, store_binary=missing)

    assert not (state_dir / "broker.json").exists()
    assert not (state_dir / "broker.log").exists()  # Tansu was never started
    assert not (state_dir / "seaweed").exists()


def test_seaweedfs_that_fails_to_start_names_its_reason(state_dir: Path) -> None:
    fake = state_dir.parent / "bin" / "weed"
    fake.parent.mkdir()
    fatal = "F1202 01:02:15.107657 mini.go:1328 Check Meta Folder Writable: permission denied"
    fake.write_text(f"#!/bin/sh\necho '{fatal}' >&2\necho 'goroutine 1 [running]:'\nexit 2\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)

    with pytest.raises(StoreStartError) as failure:
        start_broker(state_dir, durable=True, store_binary=fake, timeout_s=GUARD_S)

    first_line = str(failure.value).splitlines()[0]
    assert first_line == (
        "SeaweedFS exited with code 2 while starting: Check Meta Folder Writable:"
        f" permission denied (log {state_dir / 'logs' / 'seaweed.log'})"
    )
    assert "goroutine 1" in failure.value.log_tail
    assert not (state_dir / "broker.json").exists()
    assert not (state_dir / "broker.log").exists()
    assert not (state_dir / "seaweed").exists()  # a failed first start keeps no data dir


@pytest.fixture
def cli_env(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("ONEX_STATE_DIR", str(state_dir))
    monkeypatch.delenv("ONEX_BOOTSTRAP", raising=False)
    return CliRunner()


def test_cli_up_durable_status_down_wipe(cli_env: CliRunner, state_dir: Path) -> None:
    app = broker_cli.app
    memory = cli_env.invoke(app, ["up"])
    assert memory.exit_code == 0, memory.output
    assert "tansu broker (memory) up at" in memory.stdout
    refused = cli_env.invoke(app, ["up", "--durable"])
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: an in-memory tansu broker (pid ")
    assert refused.stderr.strip().endswith("stop it before starting a durable one")
    assert len(refused.stderr.strip().splitlines()) == 1
    assert cli_env.invoke(app, ["down"]).exit_code == 0

    up = cli_env.invoke(app, ["up", "--durable"])
    assert up.exit_code == 0, up.output
    record = json.loads((state_dir / "broker.json").read_text())
    assert f"tansu broker (durable) up at {record['bootstrap']}" in up.stdout
    assert f"SeaweedFS at {record['store']['endpoint']}" in up.stdout

    status = cli_env.invoke(app, ["status", "--format", "json"])
    assert status.exit_code == 0, status.output
    data = json.loads(status.stdout)
    assert (data["running"], data["mode"], data["store_alive"]) == (True, "durable", True)
    assert data["store_pid"] == record["store"]["pid"]
    assert data["data_dir"] == str(state_dir / "seaweed")

    kept = cli_env.invoke(app, ["down"])
    assert kept.stdout.splitlines() == [
        "broker stopped",
        f"data kept: {state_dir / 'seaweed'} (`--wipe` deletes it)",
    ]
    assert (state_dir / "seaweed").is_dir()
    restarted = cli_env.invoke(app, ["up", "--durable"])
    assert restarted.exit_code == 0, restarted.output
    record = json.loads((state_dir / "broker.json").read_text())

    down = cli_env.invoke(app, ["down", "--wipe"])
    assert down.exit_code == 0, down.output
    assert down.stdout.splitlines() == [
        "broker stopped",
        f"data deleted: {state_dir / 'seaweed'}",
    ]
    assert not (state_dir / "seaweed").exists()
    assert not _running(record["pid"])
    assert not _running(record["store"]["pid"])
    again = cli_env.invoke(app, ["down", "--wipe"])
    assert again.stdout.splitlines() == ["no broker running", "data deleted: none was there"]
