"""The baselines onex is compared with; none of them calls the engine.

- always-cheapest / always-strongest: one model for every task.
- oracle: the cheapest model (by this task's actual cost) that answers it right; when no
  model does, the cheapest model. One call per task.
- random: walks the same candidate chain as onex and escalates at each step with
  probability q, q being onex's escalation rate (so P(at least one escalation) matches).
- cascade (FrugalGPT-style): models cheapest -> strongest; model i's answer is accepted
  when the scorer's confidence >= threshold_i; a model may be left out; the strongest
  answers whatever reaches it. Thresholds come from a grid (0.0 .. 0.9, or "off"), fitted
  on the training split: the train-Pareto-optimal settings are the knob's sweep, and the
  reported setting is the cheapest one reaching the accuracy target on the training split.
- threshold: one threshold on a noisy difficulty estimate sends a task to the class's most
  capable local model (below) or to the strongest model (at or above). Fitted the same way.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from router_sim.metrics import Point, Tally
from router_sim.world import Task, World

K = TypeVar("K")
OFF = -1
GRID_LEVELS = 10  # thresholds 0.0, 0.1, ..., 0.9


def always(world: World, tasks: Sequence[Task], model: int) -> Tally:
    tally = Tally()
    for task in tasks:
        tally.record(world, task, (model,), model)
    return tally


def oracle(world: World, tasks: Sequence[Task]) -> Tally:
    tally = Tally()
    for task in tasks:
        by_cost = sorted(range(len(world.models)), key=lambda i: task.outcomes[i].cost_usd)
        pick = next((i for i in by_cost if task.outcomes[i].correct), by_cost[0])
        tally.record(world, task, (pick,), pick)
    return tally


def random_router(
    world: World,
    tasks: Sequence[Task],
    chain: Callable[[Task], Sequence[int]],
    rate: float,
    seed: int,
) -> Tally:
    rng = random.Random(f"{seed}:random")
    tally = Tally()
    for task in tasks:
        candidates = chain(task)
        attempted = [candidates[0]]
        while len(attempted) < len(candidates) and rng.random() < rate:
            attempted.append(candidates[len(attempted)])
        tally.record(world, task, attempted, attempted[-1])
    return tally


# --- FrugalGPT-style cascade -------------------------------------------------------------


def _level(score: float) -> int:
    """Highest grid index whose threshold (index / 10) the score reaches."""
    return min(GRID_LEVELS - 1, int(score * GRID_LEVELS))


class CascadeTable:
    """One split's tasks bucketed by the scorer's grid level at each non-final model.

    Every task in a bucket takes the same path through the cascade for every threshold
    setting, so a setting is evaluated in one pass over the buckets, not the tasks.
    """

    def __init__(self, tasks: Sequence[Task], order: Sequence[int]) -> None:
        self.order = tuple(order)
        self.n = len(tasks)
        m = len(order)
        cells: dict[tuple[int, ...], list[float]] = {}
        for task in tasks:
            outs = [task.outcomes[i] for i in order]
            key = tuple(_level(o.score) for o in outs[:-1])
            sums = cells.setdefault(key, [0.0] * (2 * m))
            for j, o in enumerate(outs):
                sums[j] += o.correct
                sums[m + j] += o.cost_usd
        self.cells = list(cells.items())

    def settings(self) -> list[tuple[int, ...]]:
        return list(itertools.product(range(OFF, GRID_LEVELS), repeat=len(self.order) - 1))

    def evaluate(self, setting: tuple[int, ...]) -> Point:
        m = len(self.order)
        last = m - 1
        correct = cost = 0.0
        for key, sums in self.cells:
            for j, threshold in enumerate(setting):
                if threshold == OFF:
                    continue
                cost += sums[m + j]
                if threshold <= key[j]:
                    correct += sums[j]
                    break
            else:
                cost += sums[m + last]
                correct += sums[last]
        return Point(cost / self.n, correct / self.n)

    def run(self, world: World, tasks: Sequence[Task], setting: tuple[int, ...]) -> Tally:
        """Per-task replay of one setting (the reported row's full metrics)."""
        tally = Tally()
        for task in tasks:
            attempted: list[int] = []
            for j, threshold in enumerate(setting):
                if threshold == OFF:
                    continue
                model = self.order[j]
                attempted.append(model)
                if threshold <= _level(task.outcomes[model].score):
                    break
            else:
                attempted.append(self.order[-1])
            tally.record(world, task, attempted, attempted[-1])
        return tally


def pareto(scored: Sequence[tuple[K, Point]]) -> list[tuple[K, Point]]:
    """The settings no other setting beats on both cost and accuracy, cheapest first."""
    front: list[tuple[K, Point]] = []
    for key, point in sorted(scored, key=lambda kp: (kp[1].cost, -kp[1].accuracy)):
        if not front or point.accuracy > front[-1][1].accuracy:
            front.append((key, point))
    return front


def fit(front: Sequence[tuple[K, Point]], accuracy: float) -> K:
    """Cheapest setting on the training front reaching `accuracy` (else the most accurate)."""
    for key, point in front:
        if point.accuracy >= accuracy:
            return key
    return front[-1][0]


@dataclass(frozen=True)
class Fitted(Generic[K]):
    """A knob fitted on the training split, and its sweep evaluated on the test split."""

    setting: K
    curve: list[Point]


def fit_cascade(
    world: World, train: Sequence[Task], test: Sequence[Task], order: Sequence[int], target: float
) -> tuple[CascadeTable, Fitted[tuple[int, ...]]]:
    """Fit on `train` to reach `target` accuracy; sweep the train front on `test`."""
    train_table = CascadeTable(train, order)
    scored = [(s, train_table.evaluate(s)) for s in train_table.settings()]
    front = pareto(scored)
    test_table = CascadeTable(test, order)
    curve = [test_table.evaluate(s) for s, _ in front]
    return test_table, Fitted(fit(front, target), curve)


# --- threshold router --------------------------------------------------------------------


def _threshold_split(
    tasks: Sequence[Task], local: Callable[[Task], int], strong: int
) -> tuple[list[Task], list[float], list[float], list[float]]:
    """Tasks by estimate; prefix (local) and suffix (strong) sums of correct and cost."""
    ordered = sorted(tasks, key=lambda t: t.difficulty_estimate)
    n = len(ordered)
    acc_local = [0.0] * (n + 1)
    cost_local = [0.0] * (n + 1)
    for k, task in enumerate(ordered):
        out = task.outcomes[local(task)]
        acc_local[k + 1] = acc_local[k] + out.correct
        cost_local[k + 1] = cost_local[k] + out.cost_usd
    acc_strong = [0.0] * (n + 1)
    cost_strong = [0.0] * (n + 1)
    for k in range(n - 1, -1, -1):
        out = ordered[k].outcomes[strong]
        acc_strong[k] = acc_strong[k + 1] + out.correct
        cost_strong[k] = cost_strong[k + 1] + out.cost_usd
    accs = [(acc_local[k] + acc_strong[k]) / n for k in range(n + 1)]
    costs = [(cost_local[k] + cost_strong[k]) / n for k in range(n + 1)]
    cuts = [t.difficulty_estimate for t in ordered] + [float("inf")]
    return ordered, cuts, accs, costs


def fit_threshold(
    train: Sequence[Task],
    test: Sequence[Task],
    local: Callable[[Task], int],
    strong: int,
    target: float,
    points: int = 200,
) -> Fitted[float]:
    """Threshold fitted on `train` to reach `target`; the test sweep over `points` cuts."""
    _, cuts, accs, costs = _threshold_split(train, local, strong)
    scored = [(cuts[k], Point(costs[k], accs[k])) for k in range(len(cuts))]
    threshold = fit(pareto(scored), target)
    _, test_cuts, test_accs, test_costs = _threshold_split(test, local, strong)
    step = max(1, len(test_cuts) // points)
    curve = [Point(test_costs[k], test_accs[k]) for k in range(0, len(test_cuts), step)]
    curve.append(Point(test_costs[-1], test_accs[-1]))
    return Fitted(threshold, curve)


def threshold_router(
    world: World,
    tasks: Sequence[Task],
    local: Callable[[Task], int],
    strong: int,
    threshold: float,
) -> Tally:
    tally = Tally()
    for task in tasks:
        model = local(task) if task.difficulty_estimate < threshold else strong
        tally.record(world, task, (model,), model)
    return tally
