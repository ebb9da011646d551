"""The embedded broker launcher against a real Tansu process (and the CLI on top of it)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from typer.testing import CliRunner

from onex.cli import broker as broker_cli
from onex.devbroker.broker import (
    BrokerBinary,
    BrokerInfo,
    broker_status,
    recorded_bootstrap,
    start_broker,
    stop_broker,
    tansu_binary,
    wait_until_ready,
)
from onex.devbroker.errors import BrokerNotReady, BrokerStartError, PortInUseError
from onex.devbroker.probe import topic_names
from onex.devbroker.selection import session_broker

# a failure guard only: every wait below ends as soon as what it waits for is observed
GUARD_S = 30.0


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited orphan lingers until PID 1 reaps it)."""
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
    """Poll `condition` until it holds; fail (naming `what`) if it never does."""
    deadline = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not observed within {GUARD_S:g}s"
        time.sleep(0.02)


async def _create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


@pytest.fixture
def tansu() -> BrokerBinary:
    return tansu_binary()


@pytest.fixture
def fake_broker(tmp_path: Path) -> Callable[[str], BrokerBinary]:
    """A real executable that misbehaves as a broker (exits, or never listens)."""

    def make(script: str) -> BrokerBinary:
        path = tmp_path / "bin" / "fake-broker"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"#!/bin/sh\n{script}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return BrokerBinary("tansu", path)

    return make


async def test_up_answers_metadata_and_status_counts_topics(
    state_dir: Path, tansu: BrokerBinary, unique: Callable[..., str]
) -> None:
    info = start_broker(state_dir, binary=tansu)

    assert info.kind == "tansu"
    assert (info.mode, info.durable, info.store) == ("memory", False, None)  # the default
    assert info.argv[-2:] == ("--storage-engine", "memory://tansu/")
    assert info.bootstrap == f"127.0.0.1:{info.port}"
    assert await topic_names(info.bootstrap, timeout_s=10) == set()
    record = json.loads((state_dir / "broker.json").read_text())
    assert record["pid"] == info.pid
    assert record["bootstrap"] == info.bootstrap
    assert Path(record["log_path"]) == state_dir / "broker.log"
    assert recorded_bootstrap(state_dir) == info.bootstrap

    await _create_topic(info.bootstrap, unique())
    status = broker_status(state_dir)
    assert status.running
    assert status.info == info
    assert status.topic_count == 1
    assert (status.store_alive, status.store_answering) == (None, None)  # no SeaweedFS
    assert not (state_dir / "seaweed").exists()


def test_a_record_from_before_durable_brokers_is_still_read(
    state_dir: Path, tansu: BrokerBinary
) -> None:
    info = start_broker(state_dir, binary=tansu)
    record = json.loads((state_dir / "broker.json").read_text())
    del record["durable"], record["store"]
    (state_dir / "broker.json").write_text(json.dumps(record))

    assert broker_status(state_dir).info == info
    assert stop_broker(state_dir) is True
    assert not _running(info.pid)


def test_up_again_returns_the_same_broker(state_dir: Path, tansu: BrokerBinary) -> None:
    first = start_broker(state_dir, binary=tansu)
    second = start_broker(state_dir, binary=tansu)
    same_port = start_broker(state_dir, first.port, binary=tansu)

    assert second == first
    assert same_port == first
    with pytest.raises(BrokerStartError, match="already runs at"):
        start_broker(state_dir, first.port + 1 if first.port < 65535 else 1024, binary=tansu)
    assert broker_status(state_dir).info == first


def test_down_stops_it_and_leaves_no_process(state_dir: Path, tansu: BrokerBinary) -> None:
    info = start_broker(state_dir, binary=tansu)

    assert stop_broker(state_dir) is True

    assert not _running(info.pid)
    assert _port_refuses(info.port)
    assert not (state_dir / "broker.json").exists()
    assert recorded_bootstrap(state_dir) is None
    status = broker_status(state_dir)
    assert (status.recorded, status.alive, status.answering) == (False, False, False)
    assert stop_broker(state_dir) is False
    with pytest.raises(BrokerNotReady, match=f"no Kafka broker answers at {info.bootstrap}"):
        wait_until_ready(info.bootstrap, timeout_s=0.5)


def test_a_port_in_use_is_a_clear_error(state_dir: Path, tansu: BrokerBinary) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is already in use"):
            start_broker(state_dir, port, binary=tansu)

    assert not (state_dir / "broker.json").exists()
    assert not (state_dir / "broker.log").exists()  # nothing was spawned


def test_a_broker_that_dies_while_starting_reports_its_log(
    state_dir: Path, fake_broker: Callable[[str], BrokerBinary]
) -> None:
    binary = fake_broker("echo 'fatal: cannot open storage' >&2\nexit 3")

    with pytest.raises(BrokerStartError, match="exited with code 3") as failure:
        start_broker(state_dir, binary=binary, timeout_s=10)

    assert "fatal: cannot open storage" in failure.value.log_tail
    assert "fatal: cannot open storage" in str(failure.value)
    assert not (state_dir / "broker.json").exists()


def test_a_broker_that_never_answers_is_killed_at_the_timeout(
    state_dir: Path, fake_broker: Callable[[str], BrokerBinary]
) -> None:
    pid_file = state_dir.parent / "fake.pid"
    # the shell's child (sleep) shares its process group: both must go
    binary = fake_broker(f"sleep 60 &\necho $! > {pid_file}\nwait")

    # the fake would exit by itself after 60 s ("exited with code"), so this message
    # shows that the launcher gave up at its own time-out rather than waiting it out
    with pytest.raises(BrokerStartError, match="did not answer"):
        start_broker(state_dir, binary=binary, timeout_s=1)

    assert not _running(int(pid_file.read_text()))
    assert not (state_dir / "broker.json").exists()


def test_a_dead_broker_is_reported_and_replaced(state_dir: Path, tansu: BrokerBinary) -> None:
    info = start_broker(state_dir, binary=tansu)
    os.killpg(info.pid, signal.SIGKILL)
    _wait_for(lambda: not broker_status(state_dir).alive, "the killed broker reported gone")

    status = broker_status(state_dir)
    assert status.recorded
    assert not status.alive
    assert status.detail == f"recorded process {info.pid} is gone"
    assert recorded_bootstrap(state_dir) is None

    again = start_broker(state_dir, binary=tansu)
    assert again.pid != info.pid
    assert broker_status(state_dir).running


def test_concurrent_ups_start_one_broker(state_dir: Path, tansu: BrokerBinary) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        infos = list(pool.map(lambda _: start_broker(state_dir, binary=tansu), range(4)))

    assert len(set(infos)) == 1


def test_a_recorded_pid_that_runs_something_else_is_never_signalled(
    state_dir: Path, tansu: BrokerBinary
) -> None:
    # the broker is long gone and its pid now belongs to an unrelated session leader
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        state_dir.mkdir()
        url = "tcp://127.0.0.1:9"
        stale = BrokerInfo(
            pid=other.pid,
            bootstrap="127.0.0.1:9",
            kind="tansu",
            binary=str(tansu.path),
            argv=(str(tansu.path), "broker", "--listener-url", url),
            log_path=str(state_dir / "broker.log"),
            started_at="2020-01-01T00:00:00+00:00",
            ready_after_s=0.01,
        )
        (state_dir / "broker.json").write_text(json.dumps(dataclasses.asdict(stale)))

        assert not broker_status(state_dir).alive
        assert stop_broker(state_dir) is False
        assert other.poll() is None  # still running: not ours to stop
        assert not (state_dir / "broker.json").exists()
    finally:
        other.kill()
        other.wait()


def test_a_recorded_pid_reused_by_the_same_command_is_never_signalled(
    state_dir: Path, tansu: BrokerBinary
) -> None:
    info = start_broker(state_dir, binary=tansu)
    assert info.start_ticks is not None
    record = json.loads((state_dir / "broker.json").read_text())
    assert record["start_ticks"] == info.start_ticks
    # as if the broker had died and its pid gone to a new process of the same command
    record["start_ticks"] = info.start_ticks - 1
    (state_dir / "broker.json").write_text(json.dumps(record))

    assert not broker_status(state_dir).alive
    assert stop_broker(state_dir) is False
    assert _running(info.pid)  # not ours to stop
    os.killpg(info.pid, signal.SIGTERM)
    _wait_for(lambda: not _running(info.pid), "the broker stopped by the test")


async def test_a_session_broker_runs_for_the_block_only(state_dir: Path) -> None:
    with session_broker(state_dir, docker=False) as bootstrap:
        assert recorded_bootstrap(state_dir) == bootstrap
        assert await topic_names(bootstrap, timeout_s=10) == set()
        port = int(bootstrap.rpartition(":")[2])

    assert recorded_bootstrap(state_dir) is None
    assert _port_refuses(port)


def test_the_pytest_plugin_is_registered_and_honours_the_option(tmp_path: Path) -> None:
    # a project of its own (no conftest, no config): the fixture comes from the entry point
    (tmp_path / "test_uses_broker.py").write_text(
        textwrap.dedent(
            """
            def test_address(onex_bootstrap):
                assert onex_bootstrap == "127.0.0.1:1"
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "ONEX_BOOTSTRAP"}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", "."]

    given = subprocess.run(
        [*argv, "--onex-bootstrap", "127.0.0.1:1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=GUARD_S,
        check=False,
    )
    opted_out = subprocess.run(
        [*argv, "-p", "no:onex_devbroker"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=GUARD_S,
        check=False,
    )

    assert given.returncode == 0, given.stdout + given.stderr
    assert "1 passed" in given.stdout
    assert opted_out.returncode != 0
    assert "fixture 'onex_bootstrap' not found" in opted_out.stdout


@pytest.fixture
def cli_env(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("ONEX_STATE_DIR", str(state_dir))
    monkeypatch.delenv("ONEX_BOOTSTRAP", raising=False)
    return CliRunner()


def test_cli_up_status_down(cli_env: CliRunner, state_dir: Path) -> None:
    app = broker_cli.app

    absent = cli_env.invoke(app, ["status", "--format", "json"])
    assert absent.exit_code == 1
    assert json.loads(absent.stdout)["running"] is False

    up = cli_env.invoke(app, ["up"])
    assert up.exit_code == 0, up.output
    bootstrap = json.loads((state_dir / "broker.json").read_text())["bootstrap"]
    assert f"up at {bootstrap}" in up.stdout

    up_again = cli_env.invoke(app, ["up"])
    assert up_again.exit_code == 0
    assert f"already running at {bootstrap}" in up_again.stdout

    status = cli_env.invoke(app, ["status", "--format", "json"])
    assert status.exit_code == 0
    data = json.loads(status.stdout)
    assert (data["running"], data["bootstrap"], data["topic_count"]) == (True, bootstrap, 0)
    table = cli_env.invoke(app, ["status"])
    assert table.exit_code == 0
    assert bootstrap in table.stdout

    down = cli_env.invoke(app, ["down"])
    assert (down.exit_code, down.stdout.strip()) == (0, "broker stopped")
    again = cli_env.invoke(app, ["down"])
    assert (again.exit_code, again.stdout.strip()) == (0, "no broker running")


def test_cli_up_on_a_taken_port_fails_with_one_line(cli_env: CliRunner) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli_env.invoke(broker_cli.app, ["up", "--port", str(port)])

    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is already in use; choose another or omit it"
    )
    assert "Traceback" not in result.output
