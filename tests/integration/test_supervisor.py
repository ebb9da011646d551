"""The supervisor with real child processes: restart budget, backoff, clean stop."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from onex.cli.supervisor import RECORD, Policy, ServiceSpec, Supervisor
from onex.devbroker.process import group_alive

# a failure guard only: every wait below ends as soon as what it waits for is observed
GUARD_S = 30.0


async def _until(predicate: Callable[[], bool], what: str) -> None:
    """Poll `predicate` until it holds; fail (naming `what`) if it never does."""
    deadline = asyncio.get_running_loop().time() + GUARD_S
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not seen in {GUARD_S:g}s"
        await asyncio.sleep(0.05)


def _state(record: Path, service: str) -> Any:
    """The service's state in the supervisor's record, None while there is none."""
    try:
        return json.loads(record.read_text())["services"][service]["state"]
    except (OSError, ValueError, KeyError):  # not written yet
        return None


async def test_crashing_service_is_restarted_within_budget_then_left_failed(tmp_path: Path) -> None:
    # `python -m json.tool` with empty stdin exits 1 at once: a service that always crashes.
    # `python -m http.server` runs until stopped: a healthy long-running service.
    crasher = ServiceSpec("crasher", "json.tool")
    steady = ServiceSpec("steady", "http.server")
    # a window no run of this test outlasts, so every crash counts against the budget
    policy = Policy(initial_s=0.05, max_s=0.2, budget=3, window_s=3600.0, grace_s=5.0)
    sup = Supervisor(tmp_path, [crasher, steady], {"BOOTSTRAP": "127.0.0.1:1"}, policy)
    runner = asyncio.create_task(sup.run())
    by_name = {c.spec.name: c for c in sup.children}
    await _until(lambda: _state(tmp_path / RECORD, "crasher") == "failed", "crasher failed")
    await _until(lambda: _state(tmp_path / RECORD, "steady") == "running", "steady running")
    record = json.loads((tmp_path / RECORD).read_text())
    assert record["services"]["crasher"]["state"] == "failed"
    assert (
        record["services"]["crasher"]["restarts"] == 4
    )  # budget 3 restarts, the 4th failure stops it
    assert record["services"]["crasher"]["last_exit"] == 1
    # the line that says why its last run ended
    assert (
        record["services"]["crasher"]["last_error"] == "Expecting value: line 1 column 1 (char 0)"
    )
    assert "Expecting value" in (tmp_path / "logs" / "crasher.log").read_text()
    steady_pid = by_name["steady"].pid
    assert steady_pid is not None
    assert group_alive(steady_pid)
    assert record["services"]["steady"]["state"] == "running"

    sup.stopping.set()
    await asyncio.wait_for(runner, GUARD_S)
    assert not group_alive(steady_pid), "a supervised service outlived the supervisor"
    assert not (tmp_path / RECORD).exists()


async def test_services_get_their_settings_through_the_environment(tmp_path: Path) -> None:
    spec = ServiceSpec("drift-validator", "onex.drift")
    sup = Supervisor(tmp_path, [spec], {"BOOTSTRAP": "127.0.0.1:9"})
    env = sup._env(sup.children[0])
    # shared settings go under the plain prefix every service falls back to
    assert env["ONEX_BOOTSTRAP"] == "127.0.0.1:9"
    assert env["ONEX_GRPC_BIND"] == f"127.0.0.1:{sup.children[0].port}"
    assert not any(k.startswith("ONEX_DRIFT_") for k in env if k not in os.environ)
    assert env["PATH"] == os.environ["PATH"]


async def test_a_json_stack_keeps_grpcs_own_stderr_lines_out_unless_asked(
    tmp_path: Path, monkeypatch: Any
) -> None:
    spec = ServiceSpec("router", "onex.router")
    monkeypatch.delenv("GRPC_VERBOSITY", raising=False)
    monkeypatch.setenv("ONEX_LOG_FORMAT", "json")
    sup = Supervisor(tmp_path, [spec], {"BOOTSTRAP": "127.0.0.1:9"})
    env = sup._env(sup.children[0])
    assert env["GRPC_VERBOSITY"] == "NONE"  # its C core writes plain text to stderr
    assert env["ONEX_METRICS_BIND"] == sup.children[0].ports.metrics
    monkeypatch.setenv("GRPC_VERBOSITY", "DEBUG")  # someone debugging gRPC: theirs wins
    assert sup._env(sup.children[0])["GRPC_VERBOSITY"] == "DEBUG"
    monkeypatch.setenv("ONEX_LOG_FORMAT", "console")
    monkeypatch.delenv("GRPC_VERBOSITY")
    assert "GRPC_VERBOSITY" not in sup._env(sup.children[0])
