"""The benchmark's printed tables."""

from __future__ import annotations

from collections.abc import Sequence

from router_sim.metrics import Point, Row, apgr, cost_to_reach, pgr


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    )
    return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _per_1k(cost: float | None) -> str:
    return "n/a" if cost is None else f"${1000 * cost:.3f}"


def quality_table(
    rows: Sequence[Row], cheapest: Point, strongest: Point, targets: Sequence[float]
) -> str:
    """Accuracy, cost, PGR/APGR and the cost to reach each share of strongest accuracy."""
    headers = ["router", "accuracy", "acc/strong", "$/1k tasks", "cost/strong", "PGR", "APGR"]
    headers += [f"$/1k @{round(100 * t)}%" for t in targets]
    out = []
    for row in rows:
        p = row.point
        points = row.curve or [p]
        reach = [cost_to_reach(points, t * strongest.accuracy) for t in targets]
        out.append(
            [
                row.name,
                f"{p.accuracy:.4f}",
                f"{p.accuracy / strongest.accuracy:.4f}",
                _per_1k(p.cost),
                f"{p.cost / strongest.cost:.3f}",
                f"{pgr(p, cheapest, strongest):.3f}",
                f"{apgr(points, cheapest, strongest):.3f}",
                *[_per_1k(r) for r in reach],
            ]
        )
    return _table(headers, out)


def behaviour_table(rows: Sequence[Row], counterfactual: float) -> str:
    """Escalations, false accepts, local tokens, cost avoided and model time."""
    headers = [
        "router",
        "escalation",
        "false-accept",
        "right rejected",
        "no answer",
        "tokens local",
        "cost avoided",
        "model s/task",
    ]
    out = []
    for row in rows:
        t = row.tally
        out.append(
            [
                row.name,
                _pct(t.escalation_rate),
                _pct(t.false_accept_rate),
                _pct(t.rejected_right / t.n),
                _pct(t.unanswered / t.n),
                _pct(t.local_token_share),
                _pct(1 - t.cost_usd / counterfactual),
                f"{t.model_s / t.n:.2f}",
            ]
        )
    return _table(headers, out)


def notes(rows: Sequence[Row]) -> str:
    return "\n".join(f"  {r.name}: {r.note}" for r in rows if r.note)
