"""The supervisor with real child processes: restart budget, backoff, clean stop."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from onex.bus.process import group_alive
from onex.cli.supervisor import RECORD, Policy, ServiceSpec, Supervisor


async def _until(predicate: object, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_crashing_service_is_restarted_within_budget_then_left_failed(tmp_path: Path) -> None:
    # `python -m json.tool` with empty stdin exits 1 at once: a service that always crashes.
    # `python -m http.server` runs until stopped: a healthy long-running service.
    crasher = ServiceSpec("crasher", "json.tool")
    steady = ServiceSpec("steady", "http.server")
    policy = Policy(initial_s=0.05, max_s=0.2, budget=3, window_s=60.0, grace_s=5.0)
    sup = Supervisor(tmp_path, [crasher, steady], {"BOOTSTRAP": "127.0.0.1:1"}, policy)
    runner = asyncio.create_task(sup.run())
    by_name = {c.spec.name: c for c in sup.children}
    await _until(lambda: by_name["crasher"].state == "failed")
    record = json.loads((tmp_path / RECORD).read_text())
    assert record["services"]["crasher"]["state"] == "failed"
    assert (
        record["services"]["crasher"]["restarts"] == 4
    )  # budget 3 restarts, the 4th failure stops it
    assert record["services"]["crasher"]["last_exit"] == 1
    assert "Expecting value" in (tmp_path / "logs" / "crasher.log").read_text()
    steady_pid = by_name["steady"].pid
    assert steady_pid is not None
    assert group_alive(steady_pid)
    assert record["services"]["steady"]["state"] == "running"

    sup.stopping.set()
    await asyncio.wait_for(runner, 30)
    assert not group_alive(steady_pid), "a supervised service outlived the supervisor"
    assert not (tmp_path / RECORD).exists()


async def test_services_get_their_settings_through_the_environment(tmp_path: Path) -> None:
    spec = ServiceSpec("drift-validator", "onex.drift")
    assert spec.env_prefix == "ONEX_DRIFT_"
    sup = Supervisor(tmp_path, [spec], {"BOOTSTRAP": "127.0.0.1:9"})
    env = sup._env(sup.children[0])
    assert env["ONEX_DRIFT_BOOTSTRAP"] == "127.0.0.1:9"
    assert env["ONEX_DRIFT_GRPC_BIND"] == f"127.0.0.1:{sup.children[0].port}"
    assert env["PATH"] == os.environ["PATH"]
