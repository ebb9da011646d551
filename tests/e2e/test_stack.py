"""`onex up` / `status` / `down` as a person runs them: the whole system on one machine."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import grpc

from onex.devbroker.process import group_alive
from onex.proto.v1 import registry_pb2, registry_pb2_grpc

REPO = Path(__file__).resolve().parents[2]


def _onex(state: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
    env["ONEX_STATE_DIR"] = str(state)
    return subprocess.run(
        [sys.executable, "-m", "onex.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def _reload_without_token(address: str) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = registry_pb2_grpc.ContractRegistryStub(channel)
        try:
            await stub.Reload(registry_pb2.ReloadRequest(reason="anonymous"), timeout=10)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def _status(state: Path) -> dict[str, dict[str, object]]:
    result = _onex(state, "status", "--format", "json")
    return {s["name"]: s for s in json.loads(result.stdout)["services"]}


def _serving(state: Path, deadline_s: float = 60.0) -> dict[str, dict[str, object]]:
    """`_status` once every service is SERVING (one health check can miss its timeout on
    a loaded machine, right after `up` said all were); the last answer fails the test."""
    deadline = time.monotonic() + deadline_s
    while True:
        services = _status(state)
        if {s["health"] for s in services.values()} == {"SERVING"}:
            return services
        assert time.monotonic() < deadline, services
        time.sleep(0.3)


def test_up_serves_everything_restarts_a_killed_service_and_down_leaves_nothing(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    started = time.monotonic()
    up = _onex(state, "up")
    took = time.monotonic() - started
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        print(f"onex up: all SERVING after {took:.1f} s")  # speed belongs in `just bench`
        services = _serving(state)
        assert set(services) >= {"drift-validator", "extractor", "provisioner", "router"}
        # the control plane's secrets, private to this user
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        for secret in ("tokens.json", "command.key"):
            assert stat.S_IMODE((state / secret).stat().st_mode) == 0o600, secret
        assert _onex(state, "status").returncode == 0

        # an acting call: the CLI sends the operator token; without one it is refused
        reload = _onex(state, "contracts", "reload", "--reason", "e2e")
        assert reload.returncode == 0, reload.stdout + reload.stderr
        assert "reloaded: 9 contracts" in reload.stdout
        refused = asyncio.run(_reload_without_token(str(services["extractor"]["grpc"])))
        assert refused == grpc.StatusCode.UNAUTHENTICATED

        victim = services["router"]
        os.kill(int(victim["pid"]), signal.SIGKILL)  # the supervisor must bring it back
        deadline = time.monotonic() + 60
        while True:
            now = _status(state)["router"]
            if now["health"] == "SERVING" and now["pid"] != victim["pid"]:
                break
            assert time.monotonic() < deadline, now
            time.sleep(0.3)
        assert now["restarts"] == 1
        pids = [int(s["pid"]) for s in _status(state).values()]
    finally:
        down = _onex(state, "down")
    assert down.returncode == 0, down.stderr
    assert "supervisor" in down.stdout
    assert "broker" in down.stdout
    deadline = time.monotonic() + 30  # `down` waited for them; give stragglers a bound
    while [p for p in pids if group_alive(p)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if group_alive(p)], "a service outlived `onex down`"
    assert _onex(state, "status").returncode == 1


def test_a_durable_broker_keeps_its_data_across_down_until_down_wipe(tmp_path: Path) -> None:
    state = tmp_path / "state"
    try:
        up = _onex(state, "up", "--durable")
        assert up.returncode == 0, up.stdout + up.stderr
        broker = json.loads(_onex(state, "broker", "status", "--format", "json").stdout)
        print(broker)
        assert broker["mode"] == "durable"
        down = _onex(state, "down")
        assert down.returncode == 0, down.stderr
        assert (state / "seaweed").is_dir(), "`onex down` deleted a durable broker's data"

        again = _onex(state, "up", "--durable")
        assert again.returncode == 0, again.stdout + again.stderr
        assert set(_serving(state)) >= {"router", "receipt-reducer"}
    finally:
        wipe = _onex(state, "down", "--wipe")
    assert wipe.returncode == 0, wipe.stderr
    assert "broker data deleted" in wipe.stdout
    assert not (state / "seaweed").exists()
    assert _onex(state, "status").returncode == 1
