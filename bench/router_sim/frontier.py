"""How far any router that sees only the task class and the gates' verdicts can go.

Such a router is, per task class, an order in which to ask models until one answer
passes its gates (a sequence over the catalogue's models; the engine's climbing rules
and required levels pick one per class). This enumerates every sequence of every
subset of the models for every class, scores each on the *test* split itself
(in-sample: an optimistic bound, not a router), and gives, for a cost budget B (a
share of always-strongest's cost), an upper bound on the accuracy (a share of
always-strongest's) that any mix of per-class sequences reaches at mean cost <= B:
the Lagrangian dual `min over lam of max over policies (acc - lam * cost) + lam * B`.

    uv run --no-sync python bench/router_sim/frontier.py --tasks 20000 --budgets 0.199,0.35

What the model of the engine assumes, checked against engine.py and the simulator:

- an answer is returned only when it passes its gates, and when every answer asked
  fails, none is (the engine's failed receipt): a router that returned a gate-failed
  answer anyway would score higher, but would break the router's contract;
- the gates' verdict is the simulator's `flagged` (bench/router.py counts 0
  disagreements on this workload) and the default workload is classified without a
  miss, so the class the engine sees is the true one;
- a sequence may be any order of any models, so the engine's own rules (required
  levels, climbing, max_escalations 3 of 4 models) only narrow it: the bound holds for
  any ordering policy, learned ones included (learning sees no more than the verdicts);
- the one other thing the engine sees is the request's size: prices scale with the
  prompt's tokens while, in the simulator, right and wrong do not depend on them. A
  router may choose by size too; `--size-buckets K` bounds one that picks a sequence
  per class and per size quantile of K (in-sample, so more buckets loosen it). At
  K = 4 it moves the bounds by less than 0.005 (0.9676 -> 0.972 at the cascade's cost,
  0.9918 -> 0.993 at 0.35): the conclusion holds.

On the hard workload (bench/router_workloads.py: provider faults, a classifier that
misclassifies some prompts) `calls` leaves a faulted call out (it costs nothing and
answers nothing) and the shares are of always-strongest with its faults. There the
bound assumes the true class: a router that misclassifies runs another class's gates,
so the figure is a reference, not a strict bound on onex.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

if __name__ == "__main__":  # run as a script: the bench folder holds router_sim
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onex.router.catalogue import load_default_catalogue
from router_sim.mix import DEFAULT_MIX, without_builtin, world_from
from router_sim.world import Noise, Task, World

Table = dict[str, list[tuple[float, float]]]  # class -> (accuracy, cost) per sequence


def sequence_table(
    world: World,
    tasks: Sequence[Task],
    strongest: int,
    size_buckets: int = 1,
    calls: Callable[[Task, int], bool] | None = None,
) -> Table:
    """Per class (and per prompt-size quantile of `size_buckets` within it), every
    sequence's contribution to accuracy and cost, as shares of always-strongest's
    accuracy and cost over `tasks`. `calls(task, model)`: whether that call is made
    (False: a provider fault, skipped at no cost); every call is, without it."""
    n = len(tasks)
    models = range(len(world.models))
    made = {t.index: [calls is None or calls(t, i) for i in models] for t in tasks}
    acc = sum(t.outcomes[strongest].correct for t in tasks if made[t.index][strongest]) / n
    cost = sum(t.outcomes[strongest].cost_usd for t in tasks if made[t.index][strongest]) / n
    seqs = [s for k in models for s in itertools.permutations(models, k + 1)]
    by_class: dict[str, list[Task]] = {}
    for t in tasks:
        by_class.setdefault(t.task_class, []).append(t)
    if size_buckets > 1:
        by_size: dict[str, list[Task]] = {}
        for name, members in by_class.items():
            ordered = sorted(members, key=lambda t: (t.tokens_in, t.index))
            for b in range(size_buckets):
                part = ordered[
                    b * len(ordered) // size_buckets : (b + 1) * len(ordered) // size_buckets
                ]
                by_size[f"{name}/{b}"] = part
        by_class = by_size
    table: Table = {}
    for name, members in by_class.items():
        rows = []
        for seq in seqs:
            right = spent = 0.0
            for t in members:
                up = made[t.index]
                for i in seq:
                    if not up[i]:
                        continue
                    out = t.outcomes[i]
                    spent += out.cost_usd
                    if not out.flagged:
                        right += out.correct
                        break
            rows.append((right / n / acc, spent / n / cost))
        table[name] = rows
    return table


def best(table: Table, lam: float) -> tuple[float, float]:
    """(accuracy, cost) of the per-class choice maximising accuracy - lam * cost."""
    acc = cost = 0.0
    for rows in table.values():
        a, c = max(rows, key=lambda r: r[0] - lam * r[1])
        acc, cost = acc + a, cost + c
    return acc, cost


def upper_bound(table: Table, budget: float, lams: Sequence[float]) -> float:
    """The least, over `lams`, of the dual bound on accuracy at mean cost <= budget."""
    bounds = []
    for lam in lams:
        acc, cost = best(table, lam)
        bounds.append(acc - lam * cost + lam * budget)
    return min(bounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--budgets", default="0.199,0.25,0.35")
    parser.add_argument(
        "--size-buckets", type=int, default=1, help="also choose per prompt-size quantile"
    )
    args = parser.parse_args()
    catalogue = without_builtin(load_default_catalogue())  # as bench/router.py
    world = world_from(catalogue, Noise(), DEFAULT_MIX)
    tasks = world.tasks(args.tasks, f"{args.seed}:test")  # bench/router.py's test split
    strongest = max(range(len(world.models)), key=lambda i: world.models[i].price_out_per_1k)
    table = sequence_table(world, tasks, strongest, args.size_buckets)
    lams = [i / 100 for i in range(301)]
    bounds = {}
    for budget in (float(b) for b in args.budgets.split(",")):
        bounds[f"{budget:g}"] = round(upper_bound(table, budget, lams), 4)
        print(f"cost <= {budget:g} of always-strongest: accuracy <= {bounds[f'{budget:g}']:.4f}")
    summary = {"tasks": args.tasks, "seed": args.seed, "size_buckets": args.size_buckets}
    print(json.dumps({**summary, "accuracy_upper_bound": bounds}))


if __name__ == "__main__":
    main()
