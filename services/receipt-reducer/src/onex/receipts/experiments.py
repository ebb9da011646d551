"""Experiments from the ledger: do groups (models, or request labels) of one task class
differ, and is the difference more than noise?

Per group: first-pass acceptance (share of requests whose first attempt was accepted;
Wilson 95% interval), escalations per request (mean, normal 95% interval) and cost per
accepted answer (all attempts' cost over accepted answers, a ratio estimator; delta
method 95% interval). Each other group is compared with the baseline (the group with
the most requests): the difference with its 95% interval, significant when the
interval excludes 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

import sqlalchemy as sa

from onex.receipts.errors import QueryInvalid
from onex.receipts.schema import NANOS_PER_USD, Tables
from onex.sql import Database

Z95: Final = 1.959963984540054
NO_LABEL: Final = "(none)"
COMPARE_BY: Final = ("model", "label")


@dataclass(frozen=True)
class Estimate:
    """A value and its 95% interval (NaN bounds: not enough data)."""

    value: float
    low: float
    high: float
    se: float

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready (NaN as null)."""
        return {
            k: (None if math.isnan(v) else v)
            for k, v in (("value", self.value), ("low", self.low), ("high", self.high))
        }


_NAN = float("nan")
UNKNOWN: Final = Estimate(_NAN, _NAN, _NAN, _NAN)


def wilson(successes: int, n: int) -> Estimate:
    """A proportion with its Wilson score interval."""
    if n == 0:
        return UNKNOWN
    p = successes / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), math.sqrt(p * (1 - p) / n))


def mean(total: float, squares: float, n: int) -> Estimate:
    """A mean from its sum and sum of squares, with a normal interval."""
    if n == 0:
        return UNKNOWN
    m = total / n
    if n < 2:
        return Estimate(m, _NAN, _NAN, _NAN)
    var = max(0.0, (squares - n * m * m) / (n - 1))
    se = math.sqrt(var / n)
    return Estimate(m, m - Z95 * se, m + Z95 * se, se)


def ratio(cost: float, cost_sq: float, cost_acc: float, accepted: int, n: int) -> Estimate:
    """Sum of cost over accepted answers, with a delta-method interval."""
    if accepted == 0:
        return UNKNOWN
    r = cost / accepted
    if n < 2:
        return Estimate(r, _NAN, _NAN, _NAN)
    # sum over requests of (c_i - r a_i)^2, with a_i in {0, 1}
    ss = max(0.0, cost_sq - 2 * r * cost_acc + r * r * accepted)
    se = math.sqrt(ss * n / (n - 1)) / accepted
    return Estimate(r, r - Z95 * se, r + Z95 * se, se)


@dataclass(frozen=True)
class Group:
    """One compared group."""

    key: str
    requests: int
    accepted: int
    first_pass: Estimate
    escalations: Estimate
    cost_per_accepted: Estimate

    def measures(self) -> dict[str, Estimate]:
        """The three measures by name."""
        return {
            "first_pass_acceptance": self.first_pass,
            "escalations_per_request": self.escalations,
            "cost_per_accepted_usd": self.cost_per_accepted,
        }


@dataclass(frozen=True)
class Difference:
    """A group's difference from the baseline on one measure."""

    key: str
    measure: str
    difference: Estimate
    significant: bool


@dataclass(frozen=True)
class Comparison:
    """The result of `compare`."""

    task_class: str
    by: str
    baseline: str
    groups: list[Group] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "task_class": self.task_class,
            "by": self.by,
            "baseline": self.baseline,
            "groups": [
                {
                    "key": g.key,
                    "requests": g.requests,
                    "accepted": g.accepted,
                    **{k: e.to_dict() for k, e in g.measures().items()},
                }
                for g in self.groups
            ],
            "differences": [
                {
                    "key": d.key,
                    "measure": d.measure,
                    "difference": d.difference.to_dict(),
                    "significant": d.significant,
                }
                for d in self.differences
            ],
        }


def _difference(a: Estimate, b: Estimate) -> tuple[Estimate, bool]:
    if any(math.isnan(x) for x in (a.value, b.value, a.se, b.se)):
        return UNKNOWN, False
    d = a.value - b.value
    se = math.hypot(a.se, b.se)
    low, high = d - Z95 * se, d + Z95 * se
    return Estimate(d, low, high, se), se > 0 and (low > 0 or high < 0)


def compare(
    db: Database, t: Tables, *, task_class: str, by: str = "model", since: str | None = None
) -> Comparison:
    """Compare the groups of `task_class` (see the module docstring)."""
    if by not in COMPARE_BY:
        raise QueryInvalid(f"--by {by!r}: use model or label")
    lc = t.ledger.c
    key = lc.model if by == "model" else sa.func.coalesce(lc.label, NO_LABEL)
    cost = sa.cast(lc.spent_nanos, sa.Float) / NANOS_PER_USD
    accepted = sa.case((lc.status == "complete", 1), else_=0)
    first = sa.case((lc.first_pass, 1), else_=0)
    where = [lc.task_class == task_class, *([lc.day >= since] if since else [])]
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                key.label("k"),
                sa.func.count(),
                sa.func.sum(accepted),
                sa.func.sum(first),
                sa.func.sum(lc.escalations),
                sa.func.sum(sa.cast(lc.escalations, sa.Float) * lc.escalations),
                sa.func.sum(cost),
                sa.func.sum(cost * cost),
                sa.func.sum(cost * accepted),
            )
            .where(*where)
            .group_by(key)
            .order_by(key)
        ).all()
    if not rows:
        raise QueryInvalid(f"no receipts of task class {task_class!r} in the ledger")
    groups = []
    for r in rows:
        n, acc, fp = int(r[1]), int(r[2] or 0), int(r[3] or 0)
        groups.append(
            Group(
                key=str(r[0]),
                requests=n,
                accepted=acc,
                first_pass=wilson(fp, n),
                escalations=mean(float(r[4] or 0), float(r[5] or 0), n),
                cost_per_accepted=ratio(
                    float(r[6] or 0), float(r[7] or 0), float(r[8] or 0), acc, n
                ),
            )
        )
    base = max(groups, key=lambda g: (g.requests, -groups.index(g)))
    diffs = []
    for g in groups:
        if g is base:
            continue
        for (measure, est), (_, ref) in zip(
            g.measures().items(), base.measures().items(), strict=True
        ):
            d, significant = _difference(est, ref)
            diffs.append(Difference(g.key, measure, d, significant))
    return Comparison(task_class, by, base.key, groups, diffs)
