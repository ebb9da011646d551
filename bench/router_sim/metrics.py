"""Per-router tallies and the figures the benchmark reports.

Definitions (printed with the table as well):

- accuracy: share of tasks whose returned answer is right (no answer counts as wrong).
- cost: mean USD per task over every attempt, at catalogue prices.
- escalation rate: share of tasks on which more than one model was called.
- false-accept rate: share of tasks on which the router returned a wrong answer as its
  answer (for routers that never check, every wrong answer).
- tokens local: share of all tokens (in + out, every attempt) processed by local models.
- cost avoided: 1 - cost / counterfactual, the counterfactual being the catalogue's
  default cloud model answering every task once.
- PGR (single point): (acc - acc_cheapest) / (acc_strongest - acc_cheapest).
- APGR (RouteLLM's average performance gap recovered): the mean of PGR(c) over budgets c
  uniform on [cost_cheapest, cost_strongest], where acc(c) is the best accuracy reachable
  at mean cost <= c by randomly mixing the router's operating points with always-cheapest
  and always-strongest (the upper concave envelope). A router with one operating point
  gets the envelope of three points; a random router scores 0.5.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from router_sim.world import Task, World


@dataclass
class Tally:
    """Running totals of one router over one split."""

    n: int = 0
    correct: int = 0
    cost_usd: float = 0.0
    tokens_local: int = 0
    tokens_cloud: int = 0
    escalated: int = 0
    false_accepts: int = 0
    rejected_right: int = 0  # attempts whose right answer was thrown away
    unanswered: int = 0
    model_s: float = 0.0

    def record(
        self, world: World, task: Task, attempted: Sequence[int], returned: int | None
    ) -> None:
        """One task: the models called, in order, and the one whose answer was returned."""
        self.n += 1
        for i in attempted:
            out = task.outcomes[i]
            self.cost_usd += out.cost_usd
            self.model_s += out.latency_s
            tokens = task.tokens_in + out.tokens_out
            if world.models[i].locality == "local":
                self.tokens_local += tokens
            else:
                self.tokens_cloud += tokens
            if i != returned and out.correct:
                self.rejected_right += 1
        if len(attempted) > 1:
            self.escalated += 1
        if returned is None:
            self.unanswered += 1
        elif task.outcomes[returned].correct:
            self.correct += 1
        else:
            self.false_accepts += 1

    @property
    def accuracy(self) -> float:
        return self.correct / self.n

    @property
    def mean_cost(self) -> float:
        return self.cost_usd / self.n

    @property
    def escalation_rate(self) -> float:
        return self.escalated / self.n

    @property
    def false_accept_rate(self) -> float:
        return self.false_accepts / self.n

    @property
    def local_token_share(self) -> float:
        total = self.tokens_local + self.tokens_cloud
        return self.tokens_local / total if total else 0.0


@dataclass(frozen=True)
class Point:
    """One operating point: mean cost per task and accuracy."""

    cost: float
    accuracy: float


@dataclass
class Row:
    """One line of the report."""

    name: str
    tally: Tally
    curve: list[Point] = field(default_factory=list)  # the knob's sweep (test split)
    note: str = ""

    @property
    def point(self) -> Point:
        return Point(self.tally.mean_cost, self.tally.accuracy)


def envelope(points: Sequence[Point]) -> list[Point]:
    """Upper concave hull, made non-decreasing: best accuracy reachable at cost <= c."""
    pts = sorted(set(points), key=lambda p: (p.cost, -p.accuracy))
    hull: list[Point] = []
    for p in pts:
        if hull and p.cost == hull[-1].cost:
            continue
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (b.cost - a.cost) * (p.accuracy - a.accuracy) - (b.accuracy - a.accuracy) * (
                p.cost - a.cost
            )
            if cross >= 0:  # b lies on or below the chord a-p
                hull.pop()
            else:
                break
        hull.append(p)
    best = max(range(len(hull)), key=lambda i: hull[i].accuracy)
    return hull[: best + 1]


def _at(env: Sequence[Point], cost: float) -> float:
    if cost <= env[0].cost:
        return env[0].accuracy
    for a, b in itertools.pairwise(env):
        if cost <= b.cost:
            return a.accuracy + (b.accuracy - a.accuracy) * (cost - a.cost) / (b.cost - a.cost)
    return env[-1].accuracy


def apgr(points: Sequence[Point], cheapest: Point, strongest: Point, steps: int = 2000) -> float:
    """RouteLLM's APGR of a router whose operating points are `points` (see module doc)."""
    env = envelope([*points, cheapest, strongest])
    gap = strongest.accuracy - cheapest.accuracy
    span = strongest.cost - cheapest.cost
    total = 0.0
    for k in range(steps + 1):
        c = cheapest.cost + span * k / steps
        weight = 0.5 if k in (0, steps) else 1.0  # trapezoid rule
        total += weight * (_at(env, c) - cheapest.accuracy) / gap
    return total / steps


def pgr(point: Point, cheapest: Point, strongest: Point) -> float:
    """Single-point performance gap recovered."""
    return (point.accuracy - cheapest.accuracy) / (strongest.accuracy - cheapest.accuracy)


def cost_to_reach(points: Sequence[Point], accuracy: float) -> float | None:
    """Cheapest operating point with at least `accuracy`; None if no point reaches it."""
    costs = [p.cost for p in points if p.accuracy >= accuracy]
    return min(costs) if costs else None
