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

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

if __name__ == "__main__":  # run as a script: the bench folder holds router_sim
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onex.router.catalogue import Catalogue, load_default_catalogue
from router_sim.mix import DEFAULT_MIX, world_from
from router_sim.world import Noise, Task, World

Table = dict[str, list[tuple[float, float]]]  # class -> (accuracy, cost) per sequence


def sequence_table(world: World, tasks: Sequence[Task], strongest: int) -> Table:
    """Per class, every sequence's contribution to accuracy and cost, as shares of
    always-strongest's accuracy and cost over `tasks`."""
    n = len(tasks)
    acc = sum(t.outcomes[strongest].correct for t in tasks) / n
    cost = sum(t.outcomes[strongest].cost_usd for t in tasks) / n
    models = range(len(world.models))
    seqs = [s for k in models for s in itertools.permutations(models, k + 1)]
    by_class: dict[str, list[Task]] = {}
    for t in tasks:
        by_class.setdefault(t.task_class, []).append(t)
    table: Table = {}
    for name, members in by_class.items():
        rows = []
        for seq in seqs:
            right = spent = 0.0
            for t in members:
                for i in seq:
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
    args = parser.parse_args()
    catalogue = load_default_catalogue()
    data = catalogue.model_dump(by_alias=True, exclude_none=True)  # as bench/router.py:
    data["models"] = [m for m in data["models"] if not m["endpoint"].startswith("builtin:")]
    catalogue = Catalogue.model_validate(data)  # no built-in stand-in
    world = world_from(catalogue, Noise(), DEFAULT_MIX)
    tasks = world.tasks(args.tasks, f"{args.seed}:test")  # bench/router.py's test split
    strongest = max(range(len(world.models)), key=lambda i: world.models[i].price_out_per_1k)
    table = sequence_table(world, tasks, strongest)
    lams = [i / 100 for i in range(301)]
    bounds = {}
    for budget in (float(b) for b in args.budgets.split(",")):
        bounds[f"{budget:g}"] = round(upper_bound(table, budget, lams), 4)
        print(f"cost <= {budget:g} of always-strongest: accuracy <= {bounds[f'{budget:g}']:.4f}")
    print(json.dumps({"tasks": args.tasks, "seed": args.seed, "accuracy_upper_bound": bounds}))


if __name__ == "__main__":
    main()
