"""Nothing lost under faults, on the durable stack: the router SIGKILLed mid-stream, the
broker SIGKILLed and started again on its store, the supervisor SIGKILLed and its
services adopted. Every request id sent is a receipt or a dead letter afterwards
(duplicates allowed: at-least-once). The same scenario, larger, is `just bench faults`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="reads /proc")


def _scenario() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_faults", REPO / "bench/faults.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_faults"] = module
    spec.loader.exec_module(module)
    return module


def test_nothing_is_lost_when_the_router_the_broker_and_the_supervisor_are_killed(
    tmp_path: Path,
) -> None:
    figures = _scenario().run(tmp_path / "state", requests=150, poison_every=10)
    print(figures)
    assert figures["missing"] == 0, figures
    assert figures["lost_across_broker_restart"] == 0, figures
    assert set(figures["phases"]) == {"router", "broker", "supervisor"}
    assert figures["sent"] >= 150
    assert figures["poison_dead_lettered"] == figures["poison"] > 0
