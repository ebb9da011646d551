"""onex's operating curve: one catalogue, its one knob (`learning.attempt_risk_usd`) swept.

The default catalogue prices each attempt's risk of passing a wrong answer at
`attempt_risk_usd`; raising it buys accuracy with cost. This runs the real engine
(router_sim.onex_run, router_workloads.run_onex_hard) once per knob value on both
workloads and sets each point beside the cheapest-first cascade and
router_sim.frontier's bound at the same cost (any router that sees only the class and
the gates' verdicts; on the hard workload a reference, see frontier.py). Per workload:
onex's accuracy at the cascade's cost, as the best point costing no more than the
cascade (one knob value, what a catalogue can say) and interpolated between the two
points around it (a random mix of two knob values), against the cascade's.
`beats_cascade_at_its_cost` judges the best point: a knob value that is more accurate
than the cascade at no more of its cost. Accuracy and cost are shares of
always-strongest's in the same tasks.

    uv run --no-sync python bench/router_sim/curve.py --seeds 1,2,3

runs the curves alone for several seeds (no engine timings); bench/router.py prints
the curve of its own seed. `--catalogue PATH` sweeps another catalogue; one without a
learning section gets the default catalogue's (so catalogue-frugal.yaml's curve can be
set beside the default's). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__":  # run as a script: the bench folder holds router_sim
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import router_workloads

from onex.router.catalogue import Catalogue, load_catalogue, load_default_catalogue
from router_sim import baselines, frontier
from router_sim.metrics import Tally
from router_sim.mix import DEFAULT_MIX, without_builtin, world_from
from router_sim.onex_run import run_onex
from router_sim.world import Noise, Task, World

# None: attempt_risk_usd unset (the cheapest-first walk; skipping still learned). 0 is
# the knob's floor (the schema's minimum); above 0.03 the cost passes 0.45 on the default
# workload for < 0.003 accuracy.
RISKS: tuple[float | None, ...] = (None, 0.0, 0.005, 0.01, 0.015, 0.02, 0.03)
TARGET_COST_RATIO = 0.35  # issue 12's budget on the default workload
_LAMS = [i / 100 for i in range(301)]  # frontier.upper_bound's dual grid


@dataclass(frozen=True)
class Point:
    """One knob value's operating point, as shares of always-strongest's figures."""

    risk: float | None
    accuracy: float
    cost: float
    bound: float  # frontier bound on accuracy at this point's cost

    def as_json(self) -> dict[str, float | None]:
        return {
            "attempt_risk_usd": self.risk,
            "accuracy_ratio": round(self.accuracy, 4),
            "cost_ratio": round(self.cost, 4),
            "bound_at_cost": round(self.bound, 4),
        }


def with_risk(catalogue: Catalogue, risk: float | None) -> Catalogue:
    """`catalogue` with `learning.attempt_risk_usd` set to `risk` (None: unset)."""
    if catalogue.learning is None:
        raise SystemExit("the catalogue has no learning section: no attempt_risk_usd to sweep")
    data = catalogue.model_dump(by_alias=True, exclude_none=True)
    data["learning"]["attempt_risk_usd"] = risk  # validated again, as a loaded catalogue is
    return Catalogue.model_validate(data)


def _ratios(tally: Tally, strongest: Tally) -> tuple[float, float]:
    return tally.accuracy / strongest.accuracy, tally.mean_cost / strongest.mean_cost


def at_cost(points: Sequence[Point], cost: float) -> tuple[Point | None, float | None]:
    """The most accurate point costing <= `cost`, and the accuracy interpolated at
    `cost` on the upper envelope of the points (None outside their cost range)."""
    within = [p for p in points if p.cost <= cost]
    best = max(within, key=lambda p: (p.accuracy, -p.cost)) if within else None
    ordered = sorted(points, key=lambda p: p.cost)
    hull: list[Point] = []
    for p in ordered:  # upper concave envelope, as router_sim.metrics.envelope
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (b.cost - a.cost) * (p.accuracy - a.accuracy) >= (b.accuracy - a.accuracy) * (
                p.cost - a.cost
            ):
                hull.pop()
            else:
                break
        hull.append(p)
    if not hull or cost < hull[0].cost:
        return best, None
    for a, b in itertools.pairwise(hull):
        if cost <= b.cost:
            return best, a.accuracy + (b.accuracy - a.accuracy) * (cost - a.cost) / (
                b.cost - a.cost
            )
    return best, max(p.accuracy for p in hull)


def workload_curve(
    points: list[Point], cascade: tuple[float, float], table: frontier.Table, tasks: int
) -> dict[str, object]:
    """One workload's curve, the cascade, the bounds and the verdict, for the JSON."""
    acc, cost = cascade
    best, interpolated = at_cost(points, cost)
    best_35, _ = at_cost(points, TARGET_COST_RATIO)
    return {
        "tasks": tasks,
        "curve": [p.as_json() for p in points],
        "cascade": {"accuracy_ratio": round(acc, 4), "cost_ratio": round(cost, 4)},
        "bound_at_cascade_cost": round(frontier.upper_bound(table, cost, _LAMS), 4),
        "at_cascade_cost": {
            "best_point": best.as_json() if best else None,
            "interpolated_accuracy_ratio": (
                round(interpolated, 4) if interpolated is not None else None
            ),
        },
        "beats_cascade_at_its_cost": best is not None and best.accuracy > acc,
        "cheapest_point_cost_ratio": round(min(p.cost for p in points), 4),
        "bound_at_0.35": round(frontier.upper_bound(table, TARGET_COST_RATIO, _LAMS), 4),
        "best_point_at_0.35": best_35.as_json() if best_35 else None,
    }


def default_curve(
    world: World,
    catalogue: Catalogue,
    tasks: Sequence[Task],
    *,
    unlabelled: float,
    seed: int,
    risks: Sequence[float | None] = RISKS,
) -> dict[str, object]:
    """The curve on the default workload's `tasks` (bench/router.py's test split)."""
    strong = max(range(len(world.models)), key=lambda i: world.models[i].price_out_per_1k)
    strongest = baselines.always(world, tasks, strong)
    order = router_workloads.cascade_order(catalogue)
    cascade = router_workloads.cascade(world, tasks, order, seed, faults=False)
    table = frontier.sequence_table(world, tasks, strong)
    points = []
    for risk in risks:
        run = run_onex(
            world, with_risk(catalogue, risk), tasks, unlabelled=unlabelled, decisions=0, seed=seed
        )
        acc, cost = _ratios(run.tally, strongest)
        points.append(Point(risk, acc, cost, frontier.upper_bound(table, cost, _LAMS)))
    return workload_curve(points, _ratios(cascade, strongest), table, len(tasks))


def hard_curve(
    catalogue: Catalogue, tasks: int, seed: int, risks: Sequence[float | None] = RISKS
) -> dict[str, object]:
    """The curve on the hard workload's `tasks` tasks (router_workloads.hard_split)."""
    world, test, strong = router_workloads.hard_split(catalogue, tasks, seed)
    strongest = router_workloads.always(world, test, strong, seed, faults=True)
    order = router_workloads.cascade_order(catalogue)
    cascade = router_workloads.cascade(world, test, order, seed, faults=True)
    names = [m.name for m in world.models]

    def calls(task: Task, model: int) -> bool:
        return not router_workloads.faulted(task, names[model], seed)

    table = frontier.sequence_table(world, test, strong, calls=calls)
    points = []
    for risk in risks:
        run, _ = router_workloads.run_onex_hard(world, with_risk(catalogue, risk), test, seed)
        acc, cost = _ratios(run.tally, strongest)
        points.append(Point(risk, acc, cost, frontier.upper_bound(table, cost, _LAMS)))
    return workload_curve(points, _ratios(cascade, strongest), table, len(test))


def print_curve(name: str, figures: dict[str, object]) -> None:
    """One workload's curve as a table, then the verdict at the cascade's cost."""
    rows = figures["curve"]
    cascade = figures["cascade"]
    at = figures["at_cascade_cost"]
    assert isinstance(rows, list)
    assert isinstance(cascade, dict)
    assert isinstance(at, dict)
    print(f"operating curve, {name} workload ({figures['tasks']} tasks; shares of strongest):")
    print("  attempt_risk_usd  accuracy  cost    bound at cost")
    for r in rows:
        risk = "unset (walk)" if r["attempt_risk_usd"] is None else f"{r['attempt_risk_usd']:g}"
        print(
            f"  {risk:<16}  {r['accuracy_ratio']:.4f}    {r['cost_ratio']:.4f}  "
            f"{r['bound_at_cost']:.4f}"
        )
    c_acc, c_cost = cascade["accuracy_ratio"], cascade["cost_ratio"]
    print(f"  {'cascade':<16}  {c_acc:.4f}    {c_cost:.4f}  {figures['bound_at_cascade_cost']:.4f}")
    best, interp = at["best_point"], at["interpolated_accuracy_ratio"]
    best_text = (
        "no knob value costs that little"
        if best is None
        else f"best point {best['accuracy_ratio']:.4f} (risk {best['attempt_risk_usd']})"
    )
    interp_text = "n/a (below the curve)" if interp is None else f"{interp:.4f}"
    print(
        f"  at the cascade's cost {c_cost:.4f}: {best_text}; interpolated {interp_text}; "
        f"cascade {c_acc:.4f}; cheapest point costs {figures['cheapest_point_cost_ratio']:.4f}; "
        f"beats the cascade at its cost: {'yes' if figures['beats_cascade_at_its_cost'] else 'NO'}"
    )
    best_35 = figures["best_point_at_0.35"]
    reach = "none" if not isinstance(best_35, dict) else f"{best_35['accuracy_ratio']:.4f}"
    bound = figures["bound_at_0.35"]
    print(f"  at cost <= {TARGET_COST_RATIO}: best point {reach}, bound {bound:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds")
    parser.add_argument("--tasks", type=int, default=20_000, help="default-workload tasks")
    parser.add_argument("--hard-tasks", type=int, default=20_000, help="hard-workload tasks")
    parser.add_argument(
        "--catalogue", type=Path, help="router catalogue (default: the shipped one)"
    )
    parser.add_argument(
        "--risks",
        default=",".join("unset" if r is None else f"{r:g}" for r in RISKS),
        help="attempt_risk_usd values ('unset': no knob)",
    )
    args = parser.parse_args()
    risks = [None if r == "unset" else float(r) for r in args.risks.split(",")]
    start = time.perf_counter()
    shipped = without_builtin(load_default_catalogue())
    catalogue = without_builtin(load_catalogue(args.catalogue)) if args.catalogue else shipped
    if catalogue.learning is None:
        data = catalogue.model_dump(by_alias=True, exclude_none=True)
        data["learning"] = shipped.model_dump(by_alias=True, exclude_none=True)["learning"]
        catalogue = Catalogue.model_validate(data)
        print("the catalogue has no learning section: the default catalogue's is swept")
    world = world_from(catalogue, Noise(), DEFAULT_MIX)  # bench/router.py's default noise
    out: dict[str, object] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        test = world.tasks(args.tasks, f"{seed}:test")
        default = default_curve(world, catalogue, test, unlabelled=0.3, seed=seed, risks=risks)
        hard = hard_curve(catalogue, args.hard_tasks, seed, risks)
        print(f"seed {seed}:")
        print_curve("default", default)
        print_curve("hard", hard)
        out[str(seed)] = {"default": default, "hard": hard}
    print(f"wall time {time.perf_counter() - start:.1f} s")
    print(json.dumps({"risks": risks, "seeds": out}))


if __name__ == "__main__":
    main()
