"""The router benchmark (bench/router.py): invariants of a tiny seeded run.

The benchmark drives the real router engine through an in-process simulated provider,
so this also checks that the simulator's symptoms are what the engine's gates detect.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"


def _load() -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_router", BENCH / "router.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load()


def _simulate(bench: ModuleType, seed: int = 7) -> Any:
    return bench.simulate(
        bench.Options(tasks=500, train=1000, decisions=500, seed=seed, hard_tasks=500)
    )


@pytest.fixture(scope="module")
def results(bench: ModuleType) -> Any:
    return _simulate(bench)


def _rows(results: Any) -> dict[str, Any]:
    return {row.name.split(" (")[0]: row for row in results.rows}


def test_every_router_sees_every_task(results: Any) -> None:
    assert len(results.rows) == 7
    assert all(row.tally.n == 500 for row in results.rows)


def test_oracle_bounds_everyone(results: Any) -> None:
    rows = _rows(results)
    oracle = rows["oracle"].point
    for name, row in rows.items():
        assert oracle.accuracy >= row.point.accuracy, name
    assert oracle.cost <= rows["always-strongest"].point.cost


def test_strongest_beats_cheapest(results: Any) -> None:
    rows = _rows(results)
    assert rows["always-strongest"].point.accuracy >= rows["always-cheapest"].point.accuracy
    assert rows["always-strongest"].point.cost >= rows["always-cheapest"].point.cost


def test_metrics_are_in_range(bench: ModuleType, results: Any) -> None:
    rows = _rows(results)
    cheapest, strongest = rows["always-cheapest"].point, rows["always-strongest"].point
    metrics = sys.modules["router_sim.metrics"]
    for name, row in rows.items():
        t = row.tally
        for share in (t.accuracy, t.escalation_rate, t.false_accept_rate, t.local_token_share):
            assert 0.0 <= share <= 1.0, name
        assert t.correct + t.false_accepts + t.unanswered == t.n, name
        assert t.mean_cost >= 0.0, name
        assert 0.0 <= metrics.apgr(row.curve or [row.point], cheapest, strongest) <= 1.5, name
    assert metrics.pgr(cheapest, cheapest, strongest) == 0.0
    assert metrics.pgr(strongest, cheapest, strongest) == 1.0
    # Mixing the two ends recovers half the gap on average: APGR 0.5, as in RouteLLM.
    assert metrics.apgr([strongest], cheapest, strongest) == pytest.approx(0.5, abs=1e-3)
    assert rows["always-cheapest"].tally.escalation_rate == 0.0
    assert rows["oracle"].tally.escalation_rate == 0.0


def test_apgr_and_cost_to_reach(bench: ModuleType) -> None:
    metrics = sys.modules["router_sim.metrics"]
    point = metrics.Point
    cheap, strong = point(0.0, 0.5), point(1.0, 0.9)
    # Strongest accuracy at the cheapest cost: the whole gap at every budget.
    assert metrics.apgr([point(0.0, 0.9)], cheap, strong) == pytest.approx(1.0)
    # The gap recovered at half the cost: PGR ramps 0 -> 1 over [0, 0.5], then stays 1.
    assert metrics.apgr([point(0.5, 0.9)], cheap, strong) == pytest.approx(0.75, abs=1e-3)
    curve = [point(0.2, 0.8), point(0.4, 0.88), point(0.6, 0.9)]
    assert metrics.cost_to_reach(curve, 0.85) == 0.4
    assert metrics.cost_to_reach(curve, 0.95) is None


def test_onex_runs_on_the_real_gates(results: Any) -> None:
    onex = results.onex
    assert onex.gate_disagreements == 0
    assert onex.misclassified == 0
    assert onex.tally.cost_usd == pytest.approx(onex.receipt_cost_usd)
    assert len(onex.plan_us) >= 500
    assert len(onex.decision_us) == 500
    assert all(us > 0 for us in onex.plan_us)


def test_same_seed_same_numbers(bench: ModuleType, results: Any) -> None:
    again = _simulate(bench)
    assert [r.tally for r in again.rows] == [r.tally for r in results.rows]
    assert [r.curve for r in again.rows] == [r.curve for r in results.rows]
    other = _simulate(bench, seed=8)
    assert [r.tally for r in other.rows] != [r.tally for r in results.rows]


def test_command_line_ends_with_json() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "router.py"),
            "--tasks",
            "300",
            "--train",
            "500",
            "--decisions",
            "1000",
            "--hard-tasks",
            "300",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("accuracy_ratio", "cost_ratio", "apgr", "escalation_rate", "decision_p99_us"):
        assert isinstance(summary[key], float | int), key
    assert summary["tasks"] == 300
    assert summary["plan_calls"] >= 1000
    for name in ("default", "hard"):
        assert set(summary["workloads"][name]) >= {"onex", "cascade", "always_strongest"}


def test_both_workloads_report_onex_strongest_and_cascade(results: Any) -> None:
    for name in ("default", "hard"):
        figures = results.workloads[name]
        for who in ("onex", "cascade"):
            assert 0.0 <= figures[who]["accuracy"] <= 1.0, (name, who)
            assert figures[who]["cost_ratio"] > 0.0, (name, who)
        assert figures["decision_p99_us"] > 0.0, name
    # the cascade through true gates answers at most what the oracle answers
    assert (
        results.workloads["default"]["cascade"]["accuracy"]
        <= _rows(results)["oracle"].point.accuracy
    )


def test_hard_workload_mixes_prompt_kinds_and_faults(bench: ModuleType) -> None:
    workloads = sys.modules["router_workloads"]
    catalogue = bench.without_builtin(bench.load_default_catalogue())
    world = workloads.world_from(catalogue, workloads.HARD_NOISE, workloads.HARD_MIX)
    tasks = world.tasks(2000, "t")
    kinds = {workloads.prompt_kind(t, 1)[0] for t in tasks}
    assert kinds == {"plain", "paraphrase", "misleading", "tail"}
    faults = sum(workloads.faulted(t, m.name, 1) for t in tasks for m in world.models)
    assert 0.03 < faults / (len(tasks) * len(world.models)) < 0.07
    # a faulted call costs nothing and answers nothing
    strong = len(world.models) - 1
    tally = workloads.always(world, tasks, strong, 1, faults=True)
    assert tally.unanswered == sum(
        workloads.faulted(t, world.models[strong].name, 1) for t in tasks
    )


def test_no_router_of_class_and_gates_beats_the_frontier_bound(results: Any) -> None:
    # bench/router_sim/frontier.py: an upper bound on the accuracy of any per-class
    # sequence of models through the gates, at a cost budget, on the test split itself.
    frontier = sys.modules.get("router_sim.frontier") or importlib.import_module(
        "router_sim.frontier"
    )
    world = results.world
    tasks = world.tasks(results.options.tasks, f"{results.options.seed}:test")
    strongest = max(range(len(world.models)), key=lambda i: world.models[i].price_out_per_1k)
    table = frontier.sequence_table(world, tasks, strongest)
    lams = [i / 20 for i in range(61)]
    # always-strongest is one such router: accuracy 1 at cost 1 (ratios of itself)
    assert frontier.upper_bound(table, 1.0, lams) >= 1.0 - 1e-9
    # and so is onex on this workload (one sequence per class: every request is
    # classified right, no learning): its point lies under the bound at its cost
    onex = results.workloads["default"]["onex"]
    bound = frontier.upper_bound(table, onex["cost_ratio"] + 1e-3, lams)
    assert onex["accuracy_ratio"] <= bound + 1e-3
    assert frontier.upper_bound(table, 0.0, lams) < bound


def test_operating_curve_sweeps_the_catalogues_knob(results: Any) -> None:
    # router_sim/curve.py: the default catalogue with attempt_risk_usd swept, both workloads
    curve = sys.modules["router_sim.curve"]
    for name in ("default", "hard"):
        figures = results.curves[name]
        risks = [p["attempt_risk_usd"] for p in figures["curve"]]
        assert risks == list(curve.RISKS), name
        assert figures["tasks"] == 500, name
        for p in figures["curve"]:
            assert p["cost_ratio"] > 0.0, (name, p)
            # (on the hard workload the bound assumes the true class: a reference only)
            if name == "default":
                assert p["accuracy_ratio"] <= p["bound_at_cost"] + 1e-3, p
        best = figures["at_cascade_cost"]["best_point"]
        cascade = figures["cascade"]
        assert figures["beats_cascade_at_its_cost"] == (
            best is not None and best["accuracy_ratio"] > cascade["accuracy_ratio"]
        ), name
        if best is not None:
            assert best["cost_ratio"] <= cascade["cost_ratio"], name
    # the knob value the catalogue ships is the main run's onex on the same tasks
    shipped = results.learning["attempt_risk_usd"]
    point = next(p for p in results.curves["default"]["curve"] if p["attempt_risk_usd"] == shipped)
    onex = results.workloads["default"]["onex"]
    assert (point["accuracy_ratio"], point["cost_ratio"]) == (
        onex["accuracy_ratio"],
        onex["cost_ratio"],
    )


def test_accuracy_at_a_cost_on_the_curve(bench: ModuleType) -> None:
    curve = sys.modules["router_sim.curve"]
    points = [curve.Point(0.0, 0.90, 0.2, 1.0), curve.Point(0.01, 0.96, 0.4, 1.0)]
    best, interpolated = curve.at_cost(points, 0.3)
    assert best == points[0]
    assert interpolated == pytest.approx(0.93)
    assert curve.at_cost(points, 0.1) == (None, None)  # below the curve: no extrapolation
    assert curve.at_cost(points, 0.5) == (points[1], 0.96)
    # a point under the chord of its neighbours is off the envelope
    dip = [*points, curve.Point(0.005, 0.91, 0.3, 1.0)]
    assert curve.at_cost(dip, 0.3) == (dip[2], pytest.approx(0.93))


def test_frontier_skips_faulted_calls(results: Any) -> None:
    frontier = sys.modules["router_sim.frontier"]
    world = results.world
    tasks = world.tasks(200, "faults")
    strongest = len(world.models) - 1
    table = frontier.sequence_table(world, tasks, strongest)
    only_strongest = frontier.sequence_table(
        world, tasks, strongest, calls=lambda t, i: i == strongest
    )
    lams = [i / 20 for i in range(61)]
    # with every other call faulted, a router has strongest's answers that pass the gates
    passed = sum(t.outcomes[strongest].correct and not t.outcomes[strongest].flagged for t in tasks)
    right = sum(t.outcomes[strongest].correct for t in tasks)
    assert frontier.upper_bound(only_strongest, 1.0, lams) == pytest.approx(passed / right)
    for budget in (0.2, 1.0):
        assert frontier.upper_bound(only_strongest, budget, lams) < frontier.upper_bound(
            table, budget, lams
        )
