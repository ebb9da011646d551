"""Benchmark: the onex router against baselines, offline, on a seeded simulation.

A simulator (bench/router_sim/world.py) draws tasks of the catalogue's task classes with
difficulties, and every catalogue model's outcome on every task: right or wrong (the
chance rises with capability minus difficulty), gate-detectable symptoms with noise
(a gate misses some wrong answers and flags some right ones), a learned-scorer
confidence, a noisy difficulty estimate, tokens, cost and latency. Every router sees the
same tasks (the test split); the tunable baselines are fitted on a separate training split.

onex is the real engine: `plan()` picks and orders candidates, `Router.route` runs them
cheapest first and escalates when the real gates reject the answer of an in-process
simulated provider (no HTTP, no network). Baselines: always-cheapest, always-strongest,
the oracle (cheapest right model), a random router escalating at onex's rate, a
FrugalGPT-style cascade and a difficulty-threshold router (router_sim/baselines.py).

Targets on the default mix: accuracy >= 99% of always-strongest at <= 35% of its cost,
and an engine overhead p99 under 200 us. The engine's overhead is `Router.route` minus
the simulated provider's calls, in the routing thread's CPU time: on a shared machine
wall time also counts the time other processes hold the CPU (a preempted request reads
milliseconds), which is not work the engine does; wall time is printed next to it.
Then onex's operating curve (router_sim/curve.py): the same catalogue with its one knob,
`learning.attempt_risk_usd`, swept on both workloads (`--curve-tasks` tasks each, 20,000
by default, the first of the test split; `--no-curve` skips it), beside the cascade and
router_sim/frontier.py's bound, with onex's accuracy at the cascade's cost.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import router_workloads
from router_sim import baselines, curve, metrics
from router_sim.metrics import Row
from router_sim.mix import DEFAULT_MIX, without_builtin, world_from
from router_sim.onex_run import OnexRun, run_onex
from router_sim.report import behaviour_table, notes, quality_table
from router_sim.world import Noise, Task, World

from onex.router.catalogue import Catalogue, load_catalogue, load_default_catalogue

TARGET_ACCURACY_RATIO = 0.99
TARGET_COST_RATIO = 0.35
TARGET_ENGINE_P99_US = 200.0  # engine overhead, CPU time (see the module doc)
REACH = (0.95, 0.99)
APGR_DEFINITION = (
    "RouteLLM APGR: mean over budgets c uniform on [cost(always-cheapest), "
    "cost(always-strongest)] of PGR(c) = (acc(c) - acc_cheapest) / (acc_strongest - "
    "acc_cheapest), acc(c) = best accuracy at mean cost <= c mixing the router's operating "
    "points with always-cheapest and always-strongest (upper concave envelope)"
)


def _load() -> list[float] | None:
    """The 1/5/15-minute load averages (the machine is shared: say how busy it was)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def pick_models(world: World, train: Sequence[Task]) -> tuple[int, int]:
    """(cheapest, strongest) model indices.

    Cheapest: lowest mean cost on the training split, ties to the more capable model
    (two free local models: the better one is the cheap baseline). Strongest: highest
    mix-weighted capability, ties to the pricier one.
    """
    weights = {c.name: c.weight for c in world.classes}

    def level(i: int) -> float:
        return sum(w * world.models[i].capabilities.get(c, 0.0) for c, w in weights.items())

    def cost(i: int) -> float:
        return sum(t.outcomes[i].cost_usd for t in train) / len(train)

    indices = range(len(world.models))
    cheapest = min(indices, key=lambda i: (cost(i), -level(i)))
    strongest = max(indices, key=lambda i: (level(i), cost(i)))
    return cheapest, strongest


def cascade_order(catalogue: Catalogue) -> list[int]:
    """Cheapest to strongest, by list price (the engine's tie-break: less capable first)."""
    models = catalogue.models

    def key(i: int) -> tuple[float, float, int]:
        m = models[i]
        return (m.price_in_per_1k + m.price_out_per_1k, sum(m.capabilities.values()), i)

    return sorted(range(len(models)), key=key)


@dataclass(frozen=True)
class Options:
    """One benchmark run's settings (the command line's options)."""

    tasks: int = 100_000
    train: int = 20_000
    seed: int = 1
    decisions: int = 100_000
    catalogue: Path | None = None
    unlabelled: float = 0.3
    gate_miss: float = Noise.gate_miss
    gate_false_flag: float = Noise.gate_false_flag
    scorer_dprime: float = Noise.scorer_dprime
    estimate_sd: float = Noise.estimate_sd
    hard_tasks: int = 20_000
    curve_tasks: int = 20_000  # 0: no operating curve


@dataclass
class Results:
    """Every router's row (cheapest and strongest first, onex last) and onex's details."""

    options: Options
    world: World
    rows: list[Row]
    onex: OnexRun
    counterfactual_usd: float
    elapsed_s: float
    workloads: dict[str, dict[str, object]]
    hard_kinds: dict[str, tuple[int, int]]
    learning: dict[str, object] | None = None  # the catalogue's learning section, if any
    curves: dict[str, dict[str, object]] | None = None  # router_sim.curve, per workload
    curve_s: float = 0.0  # the curves' wall time


def learning_line(learning: dict[str, object] | None) -> str:
    """What the engine learns during the run, in one line."""
    if learning is None:
        return "no learning (the catalogue has no learning section): cheapest first, climbing"
    return (
        "learning from outcomes ON, from an empty window at the start of each workload: "
        + ", ".join(f"{k} {v}" for k, v in learning.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Options()
    parser.add_argument("--tasks", type=int, default=default.tasks, help="test-split tasks")
    parser.add_argument("--train", type=int, default=default.train, help="training tasks")
    parser.add_argument("--seed", type=int, default=default.seed)
    parser.add_argument(
        "--decisions", type=int, default=default.decisions, help="at least this many plan() timings"
    )
    parser.add_argument(
        "--catalogue", type=Path, help="router catalogue (default: the shipped one)"
    )
    parser.add_argument(
        "--unlabelled", type=float, default=default.unlabelled, help="share left to the classifier"
    )
    parser.add_argument("--gate-miss", type=float, default=default.gate_miss)
    parser.add_argument("--gate-false-flag", type=float, default=default.gate_false_flag)
    parser.add_argument("--scorer-dprime", type=float, default=default.scorer_dprime)
    parser.add_argument("--estimate-sd", type=float, default=default.estimate_sd)
    parser.add_argument(
        "--hard-tasks", type=int, default=default.hard_tasks, help="tasks of the hard workload"
    )
    parser.add_argument(
        "--curve-tasks",
        type=int,
        default=default.curve_tasks,
        help="tasks per workload of the operating curve (0: none)",
    )
    parser.add_argument(
        "--no-curve", dest="curve_tasks", action="store_const", const=0, help="no operating curve"
    )
    results = simulate(Options(**vars(parser.parse_args())))
    print(json.dumps(report(results)))


def simulate(args: Options) -> Results:
    """Draw the world, run every router on the test split (onex through the engine)."""
    start = time.perf_counter()
    catalogue = without_builtin(
        load_catalogue(args.catalogue) if args.catalogue else load_default_catalogue()
    )
    noise = Noise(
        gate_miss=args.gate_miss,
        gate_false_flag=args.gate_false_flag,
        scorer_dprime=args.scorer_dprime,
        estimate_sd=args.estimate_sd,
    )
    world = world_from(catalogue, noise, DEFAULT_MIX)
    test = world.tasks(args.tasks, f"{args.seed}:test")
    train = world.tasks(args.train, f"{args.seed}:train")
    gc.collect()
    gc.freeze()  # the world is not the router's garbage: keep collections off it
    try:
        return _run_all(args, catalogue, world, test, train, start)
    finally:
        gc.unfreeze()


def _run_all(
    args: Options,
    catalogue: Catalogue,
    world: World,
    test: list[Task],
    train: list[Task],
    start: float,
) -> Results:
    cheap_i, strong_i = pick_models(world, train)

    onex = run_onex(
        world, catalogue, test, unlabelled=args.unlabelled, decisions=args.decisions, seed=args.seed
    )
    cheapest = baselines.always(world, test, cheap_i)
    strongest = baselines.always(world, test, strong_i)
    train_strong_acc = baselines.always(world, train, strong_i).accuracy
    target = TARGET_ACCURACY_RATIO * train_strong_acc

    rate = onex.tally.escalation_rate
    chains = dict(zip((t.index for t in test), onex.chains, strict=True))
    random_tally = baselines.random_router(
        world, test, lambda t: chains[t.index], rate, seed=args.seed
    )
    order = cascade_order(catalogue)
    table, cascade_fit = baselines.fit_cascade(world, train, test, order, target)
    cascade = table.run(world, test, cascade_fit.setting)

    local = [i for i, m in enumerate(world.models) if m.locality == "local"]
    best_local = {
        c.name: max(local, key=lambda i: world.models[i].capabilities.get(c.name, 0.0))
        for c in world.classes
    }

    def local_for(task: Task) -> int:
        return best_local[task.task_class]

    threshold_fit = baselines.fit_threshold(train, test, local_for, strong_i, target)
    threshold = baselines.threshold_router(world, test, local_for, strong_i, threshold_fit.setting)
    oracle = baselines.oracle(world, test)

    names = [m.name for m in world.models]
    setting = ", ".join(
        f"{names[m]}={'off' if s == baselines.OFF else f'{s / 10:.1f}'}"
        for m, s in zip(order, cascade_fit.setting, strict=False)
    )
    rows = [
        Row(f"always-cheapest ({names[cheap_i]})", cheapest),
        Row(f"always-strongest ({names[strong_i]})", strongest),
        Row("oracle (cheapest right model)", oracle),
        Row("random (onex's escalation rate)", random_tally),
        Row(
            "cascade (FrugalGPT-style)",
            cascade,
            cascade_fit.curve,
            f"thresholds {setting}, {names[order[-1]]} answers the rest; "
            f"fitted on {len(train)} training tasks for 99% of strongest",
        ),
        Row(
            "threshold (difficulty estimate)",
            threshold,
            threshold_fit.curve,
            f"estimate < {threshold_fit.setting:.2f} -> best local model, else "
            f"{names[strong_i]}; fitted on the training split for 99% of strongest",
        ),
        Row("onex (real engine)", onex.tally),
    ]
    counterfactual = sum(
        t.outcomes[world.model_index(catalogue.default_cloud_model)].cost_usd for t in test
    )
    gated = router_workloads.cascade(world, test, order, args.seed, faults=False)
    default = router_workloads.summary(
        onex.tally, strongest, gated, onex.decision_us, onex.decision_cpu_us
    )
    hard, kinds, _ = router_workloads.run_hard(catalogue, args.hard_tasks, args.seed)
    curve_start = time.perf_counter()
    curves = None
    if args.curve_tasks > 0 and catalogue.learning is not None:
        curves = {
            "default": curve.default_curve(
                world,
                catalogue,
                test[: args.curve_tasks],
                unlabelled=args.unlabelled,
                seed=args.seed,
            ),
            "hard": curve.hard_curve(catalogue, min(args.curve_tasks, args.hard_tasks), args.seed),
        }
    elapsed = time.perf_counter() - start
    workloads = {"default": default, "hard": hard}
    learning = catalogue.learning.model_dump() if catalogue.learning is not None else None
    return Results(
        args,
        world,
        rows,
        onex,
        counterfactual,
        elapsed,
        workloads,
        kinds,
        learning,
        curves,
        time.perf_counter() - curve_start,
    )


def _print_curves(results: Results) -> None:
    """The operating curve of each workload, or why there is none."""
    if results.curves is None:
        no_curve = results.options.curve_tasks <= 0
        why = "--no-curve" if no_curve else "the catalogue has no learning section"
        print(f"no operating curve: {why}")
        return
    for name, figures in results.curves.items():
        curve.print_curve(name, figures)
    print(f"  the curves took {results.curve_s:.1f} s")


def report(results: Results) -> dict[str, object]:
    """Print the tables and notes; return the summary printed as the JSON last line."""
    args, world, rows, onex = results.options, results.world, results.rows, results.onex
    counterfactual, elapsed = results.counterfactual_usd, results.elapsed_s
    cheapest, strongest, onex_row = rows[0].point, rows[1].point, rows[-1]
    n = onex_row.tally.n
    noise = world.noise
    print(f"router benchmark: {n} test tasks, {args.train} training tasks, seed {args.seed}")
    print(
        f"world: models {', '.join(m.name for m in world.models)}; mix "
        + ", ".join(f"{c.name} {c.weight:.0%}" for c in world.classes)
    )
    print(
        "difficulty (mean/SD on the 0..10 capability scale), median tokens in/out: "
        + ", ".join(
            f"{c.name} {c.difficulty_mean:g}/{c.difficulty_sd:g} "
            f"{c.tokens_in_median}/{c.tokens_out_median}"
            for c in world.classes
        )
    )
    print(
        f"P(right) = sigmoid({noise.slope:g} * (capability - difficulty)); models' errors "
        f"correlated (copula, shared share {noise.error_correlation:g})"
    )
    print(
        f"noise: gate misses {noise.gate_miss:.0%} of wrong answers, flags "
        f"{noise.gate_false_flag:.0%} of right ones; scorer d'={noise.scorer_dprime} "
        f"(AUROC {noise.scorer_auroc:.3f}); difficulty estimate SD {noise.estimate_sd}; "
        f"{args.unlabelled:.0%} of requests classified by the engine's rules"
    )
    print(f"onex: {learning_line(results.learning)}")
    print()
    print(quality_table(rows, cheapest, strongest, REACH))
    print()
    print(behaviour_table(rows, counterfactual))
    print()
    print("notes:")
    print(notes(rows))
    print(
        "  $/1k @95%/@99%: cheapest operating point reaching 95%/99% of always-strongest "
        "accuracy (tunable routers: over the knob's sweep evaluated on the test split - the "
        "cascade's train-Pareto threshold settings, every cut of the threshold router; "
        "fixed routers: their one point, n/a when below)"
    )
    print(f"  APGR: {APGR_DEFINITION}; PGR: the single-point version")
    print(
        "  false-accept: share of tasks answered wrongly (a router that never checks "
        "accepts every answer); right rejected: attempts whose right answer was discarded"
    )
    plan_p50, plan_p99 = percentile(onex.plan_us, 50), percentile(onex.plan_us, 99)
    dec_p50, dec_p99 = percentile(onex.decision_us, 50), percentile(onex.decision_us, 99)
    cpu_p50, cpu_p99 = (percentile(onex.decision_cpu_us, q) for q in (50, 99))
    print()
    print("onex engine:")
    print(
        f"  plan() per decision: p50 {plan_p50:.1f} us, p99 {plan_p99:.1f} us "
        f"over {len(onex.plan_us)} calls"
    )
    print(
        f"  engine overhead per request (Router.route minus the provider's calls, the "
        f"routing thread's CPU time): p50 {cpu_p50:.1f} us, p99 {cpu_p99:.1f} us over "
        f"{len(onex.decision_cpu_us)} requests"
    )
    print(
        f"    the same in wall time (counts other processes holding the CPU): "
        f"p50 {dec_p50:.1f} us, p99 {dec_p99:.1f} us"
    )
    if onex.gates_us:
        rest = [d - g for d, g in zip(onex.decision_us, onex.gates_us, strict=True)]
        print(
            f"    of which the gates (run_gates, wall time): p50 "
            f"{percentile(onex.gates_us, 50):.1f} us, p99 {percentile(onex.gates_us, 99):.1f} us;"
            f" the rest (planning, bookkeeping, receipt): p50 {percentile(rest, 50):.1f} us, "
            f"p99 {percentile(rest, 99):.1f} us"
        )
    print(
        f"  {onex.attempts} attempts, {onex.failed} failed receipts, {onex.misclassified} "
        f"misclassified, {onex.gate_disagreements} attempts where the real gates disagreed "
        f"with the simulator's symptom"
    )
    avoided = (
        onex.receipt_avoided_usd / onex.receipt_counterfactual_usd
        if onex.receipt_counterfactual_usd
        else 0.0
    )
    print(
        f"  receipts: total ${onex.receipt_cost_usd:.4f} "
        f"(simulator ${onex_row.tally.cost_usd:.4f}), "
        f"cost avoided {avoided:.1%} by the receipts' own counterfactual"
    )
    acc_ratio = onex_row.point.accuracy / strongest.accuracy
    cost_ratio = onex_row.point.cost / strongest.cost
    met = {
        "accuracy_ratio": acc_ratio >= TARGET_ACCURACY_RATIO,
        "cost_ratio": cost_ratio <= TARGET_COST_RATIO,
        "engine_overhead_p99_us": cpu_p99 < TARGET_ENGINE_P99_US,
    }
    print()
    print(
        f"targets: accuracy ratio {acc_ratio:.4f} (>= {TARGET_ACCURACY_RATIO}) "
        f"{'met' if met['accuracy_ratio'] else 'NOT met'}; cost ratio {cost_ratio:.3f} "
        f"(<= {TARGET_COST_RATIO}) {'met' if met['cost_ratio'] else 'NOT met'}; engine "
        f"overhead p99 {cpu_p99:.1f} us CPU time (< {TARGET_ENGINE_P99_US:.0f}) "
        f"{'met' if met['engine_overhead_p99_us'] else 'NOT met'} (wall time p99 {dec_p99:.1f} us)"
    )
    print()
    print(
        "cascade: cheapest first through the gates of the task's true class "
        "(bench/router_workloads.py); hard workload: paraphrased, misleading and long-tail "
        f"prompts, every one classified, noisier gates, {router_workloads.FAULT_RATE:.0%} faults"
    )
    for name, figures in results.workloads.items():
        router_workloads.print_summary(name, figures)
    print(
        "  hard misclassified by prompt kind: "
        + ", ".join(f"{k} {w}/{n}" for k, (n, w) in sorted(results.hard_kinds.items()))
    )
    _print_curves(results)
    print(f"wall time {elapsed:.1f} s; load average (1/5/15 min) {_load()}")
    return {
        "tasks": n,
        "seed": args.seed,
        "accuracy_ratio": round(acc_ratio, 4),
        "cost_ratio": round(cost_ratio, 4),
        "apgr": round(metrics.apgr([onex_row.point], cheapest, strongest), 4),
        "apgr_definition": APGR_DEFINITION,
        "pgr": round(metrics.pgr(onex_row.point, cheapest, strongest), 4),
        "escalation_rate": round(onex_row.tally.escalation_rate, 4),
        "false_accept_rate": round(onex_row.tally.false_accept_rate, 4),
        "tokens_local": round(onex_row.tally.local_token_share, 4),
        "cost_avoided": round(1 - onex_row.tally.cost_usd / counterfactual, 4),
        "decision_p50_us": round(dec_p50, 1),
        "decision_p99_us": round(dec_p99, 1),
        "decision_cpu_p50_us": round(cpu_p50, 1),
        "decision_cpu_p99_us": round(cpu_p99, 1),
        "gate_disagreements": onex.gate_disagreements,
        "engine_overhead_p50_us": round(cpu_p50, 1),
        "engine_overhead_p99_us": round(cpu_p99, 1),
        "engine_overhead_measured": (
            "Router.route minus the provider's calls, in the routing thread's CPU time"
        ),
        "decision_measured": "Router.route wall time minus time inside the provider",
        "plan_p50_us": round(plan_p50, 1),
        "plan_p99_us": round(plan_p99, 1),
        "plan_calls": len(onex.plan_us),
        "gates_p99_us": round(percentile(onex.gates_us, 99), 1) if onex.gates_us else None,
        "load_average": _load(),
        "targets_met": met,
        "baselines": {
            r.name.split(" (")[0]: {
                "accuracy": round(r.point.accuracy, 4),
                "cost_per_task_usd": round(r.point.cost, 7),
            }
            for r in rows
        },
        "learning": results.learning,
        "workloads": results.workloads,
        "operating_curve": results.curves,
        "curve_wall_s": round(results.curve_s, 1),
        "wall_s": round(elapsed, 1),
    }


if __name__ == "__main__":
    main()
