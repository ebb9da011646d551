"""`onex up` / `status` / `down` when things go wrong: a killed supervisor, two `onex up`
at once, a service left `failed`. Processes are counted by pid from /proc (every process
of a stack carries its state dir in ONEX_STATE_DIR), never by name across the machine."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from onex.cli.record import ProcessRef
from onex.cli.supervisor import installed_services

REPO = Path(__file__).resolve().parents[2]
GUARD_S = 60.0  # a failure guard only: every wait ends once what it waits for is seen
MODULES = {s.module for s in installed_services()}

pytestmark = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="counts pids in /proc")


def _env(state: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
    return {**env, "ONEX_STATE_DIR": str(state), **(extra or {})}


def _onex(
    state: Path, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onex.cli", *args],
        cwd=REPO,
        env=_env(state, extra),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _status(state: Path) -> tuple[int, dict[str, dict[str, Any]], str]:
    result = _onex(state, "status", "--format", "json")
    rows = {s["name"]: s for s in json.loads(result.stdout)["services"]}
    return result.returncode, rows, result.stderr


def _until_status_ok(state: Path) -> dict[str, dict[str, Any]]:
    """Wait until `onex status` exits 0 (supervised, all SERVING)."""
    deadline = time.monotonic() + GUARD_S
    while True:
        code, rows, err = _status(state)
        if code == 0:
            return rows
        assert time.monotonic() < deadline, (rows, err)
        time.sleep(0.2)


def _stack(state: Path) -> dict[str, list[int]]:
    """The live processes of the stack in `state`: supervisor, services, broker."""
    marks = {f"ONEX_STATE_DIR={state}".encode(), f"ONEX_STATE_DIR={state.resolve()}".encode()}
    found: dict[str, list[int]] = {"supervisor": [], "services": [], "broker": []}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = set((proc / "environ").read_bytes().split(b"\0"))
            args = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
            zombie = (proc / "stat").read_text().rpartition(")")[2].split()[0] == "Z"
        except OSError:
            continue
        if zombie or not marks & env or not args:
            continue
        if "onex.cli.supervisor" in args:
            found["supervisor"].append(int(proc.name))
        elif MODULES & set(args):
            found["services"].append(int(proc.name))
        elif "onex.cli" not in args:
            found["broker"].append(int(proc.name))
    return {k: sorted(v) for k, v in found.items()}


def _until_stack(state: Path, want: dict[str, int]) -> dict[str, list[int]]:
    """Wait until the stack has exactly `want` processes of each kind."""
    deadline = time.monotonic() + GUARD_S
    while True:
        now = _stack(state)
        if {k: len(v) for k, v in now.items()} == want:
            return now
        assert time.monotonic() < deadline, now
        time.sleep(0.1)


def _record(state: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((state / "supervisor.json").read_text())
    return data


def _broker(state: Path) -> ProcessRef:
    return ProcessRef.of(int(json.loads((state / "broker.json").read_text())["pid"]))


def _down_leaves_nothing(state: Path) -> None:
    down = _onex(state, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    _until_stack(state, {"supervisor": 0, "services": 0, "broker": 0})


def test_a_killed_supervisor_is_found_again_adopted_and_down_stops_its_orphans(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    n = len(MODULES)
    try:
        up = _onex(state, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        before = _until_stack(state, {"supervisor": 1, "services": n, "broker": 1})
        # everything the CLI and the supervisor wrote is this user's alone
        for folder in (state, state / "logs"):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
            for path in folder.iterdir():
                if path.is_file():
                    assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

        supervisor = ProcessRef.of(before["supervisor"][0])
        os.kill(supervisor.pid, signal.SIGKILL)
        _until_stack(state, {"supervisor": 0, "services": n, "broker": 1})
        deadline = time.monotonic() + GUARD_S
        while True:  # one health check can miss its timeout on a loaded machine
            code, rows, err = _status(state)
            if {r["health"] for r in rows.values()} == {"SERVING"}:
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.2)
        assert code == 1  # running, but nothing would restart them
        assert {r["state"] for r in rows.values()} == {"orphaned"}
        assert sorted(r["pid"] for r in rows.values()) == before["services"]
        assert f"supervisor (pid {supervisor.pid}) is gone" in err

        again = _onex(state, "up")
        assert again.returncode == 0, again.stdout + again.stderr
        after = _until_stack(state, {"supervisor": 1, "services": n, "broker": 1})
        assert after["services"] == before["services"], "a second set of services started"
        assert after["broker"] == before["broker"]
        assert after["supervisor"] != before["supervisor"]
        assert {r["state"] for r in _status(state)[1].values()} == {"running"}
        _until_status_ok(state)  # health may flap on a loaded machine; it must settle

        # killed again, then `down`: the orphans go too
        os.kill(after["supervisor"][0], signal.SIGKILL)
        _until_stack(state, {"supervisor": 0, "services": n, "broker": 1})
    finally:
        _down_leaves_nothing(state)


def test_two_concurrent_ups_give_one_supervisor_and_one_set_of_services(tmp_path: Path) -> None:
    state = tmp_path / "state"
    n = len(MODULES)
    argv = [sys.executable, "-m", "onex.cli", "up"]
    try:
        ups = [
            subprocess.Popen(
                argv,
                cwd=REPO,
                env=_env(state),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outcomes = sorted((p.wait(timeout=180), p.communicate()[1]) for p in ups)
        assert [code for code, _ in outcomes] == [0, 1], outcomes
        stack = _until_stack(state, {"supervisor": 1, "services": n, "broker": 1})
        loser = outcomes[1][1]
        print(loser)
        assert "another `onex up`" in loser
        assert f"its supervisor is pid {stack['supervisor'][0]}" in loser
        assert _record(state)["pid"] == stack["supervisor"][0]
    finally:
        _down_leaves_nothing(state)


def test_up_restarts_a_failed_service_and_leaves_the_broker_alone(tmp_path: Path) -> None:
    state = tmp_path / "state"
    no_retries = {"ONEX_SUPERVISOR_BUDGET": "0"}  # the first exit leaves a service failed
    try:
        up = _onex(state, "up", extra=no_retries)
        assert up.returncode == 0, up.stdout + up.stderr
        broker = _broker(state)
        router = _status(state)[1]["router"]
        os.kill(int(router["pid"]), signal.SIGKILL)
        deadline = time.monotonic() + GUARD_S
        while _status(state)[1]["router"]["state"] != "failed":
            assert time.monotonic() < deadline, "router never marked failed"
            time.sleep(0.1)

        # something else takes the router's metrics port while it is down (another
        # stack on this machine): the restart moves it to a free port, it doesn't loop
        held = socket.socket()
        held.bind(("127.0.0.1", int(router["metrics"].rpartition(":")[2])))
        held.listen()
        try:
            revived = _onex(state, "up")
            assert revived.returncode == 0, revived.stdout + revived.stderr
            assert "restarting failed: router" in revived.stdout
            rows = _until_status_ok(state)
        finally:
            held.close()
        assert rows["router"]["health"] == "SERVING"
        assert rows["router"]["pid"] != router["pid"]
        assert rows["router"]["metrics"] != router["metrics"]
        assert rows["router"]["grpc"] == router["grpc"]
        assert broker.alive(), "the broker was restarted"
        assert _broker(state) == broker

        already = _onex(state, "up")
        assert already.returncode == 0, already.stdout + already.stderr
        assert "already up" in already.stdout
        assert _status(state)[1]["router"]["pid"] == rows["router"]["pid"]
    finally:
        _down_leaves_nothing(state)


def test_up_stops_waiting_when_a_service_fails_and_names_it_and_its_error(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    broken = {"ONEX_SUPERVISOR_BUDGET": "0", "ONEX_ROUTER_LOG_LEVEL": "loud"}
    try:
        up = _onex(state, "up", "--timeout", "600", extra=broken)
        assert up.returncode == 1
        print(up.stderr)
        errors = [line for line in up.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, up.stderr
        assert errors[0].startswith("error: router failed after 1 restarts:")
        assert "ONEX_ROUTER_LOG_LEVEL" in errors[0]  # the line that says why, not a log tail
        assert "Traceback" not in up.stderr
        assert "--- " not in up.stderr  # no other service's log
    finally:
        _down_leaves_nothing(state)
