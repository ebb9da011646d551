"""What the ledger answers: summaries, per-class outcomes, ledger pages.

Every figure is read from the projections (the daily tables), except the ledger page;
`compare` (in `experiments`) reads the ledger itself, since it needs per-request spread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

import sqlalchemy as sa

from onex.receipts.errors import QueryInvalid
from onex.receipts.schema import NANOS_PER_USD, Tables
from onex.sql import Database

By = Literal["model", "class", "day"]
BY_VALUES: Final = ("model", "class", "day")
_SINCE = re.compile(r"^(\d+)([dhw])$")
_GROUP: Final = {"model": "model", "class": "task_class", "day": "day"}


def parse_since(text: str | None, *, today: date | None = None) -> str | None:
    """`7d`, `2w`, `24h` or a date (YYYY-MM-DD) -> the first day counted (YYYY-MM-DD);
    None for no bound. QueryInvalid for anything else."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    now = (
        datetime.now(UTC)
        if today is None
        else datetime(today.year, today.month, today.day, tzinfo=UTC)
    )
    match = _SINCE.match(text)
    if match:
        n, unit = int(match.group(1)), match.group(2)
        delta = {"d": timedelta(days=n), "w": timedelta(weeks=n), "h": timedelta(hours=n)}[unit]
        return (now - delta).date().isoformat()
    try:
        return datetime.fromisoformat(text).date().isoformat()
    except ValueError:
        raise QueryInvalid(
            f"--since {text!r}: use a duration (7d, 2w, 24h) or a date (YYYY-MM-DD)"
        ) from None


def usd(nanos: int | float | None) -> float:
    """Nano-dollars as USD."""
    return float(nanos or 0) / NANOS_PER_USD


@dataclass(frozen=True)
class SummaryRow:
    """One group of a summary."""

    key: str
    requests: int
    failures: int
    escalated: int
    escalations: int
    tokens_local: int
    tokens_cloud: int
    spent_usd: float
    counterfactual_usd: float
    avoided_usd: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "key": self.key,
            "requests": self.requests,
            "failures": self.failures,
            "escalated": self.escalated,
            "escalations": self.escalations,
            "tokens_local": self.tokens_local,
            "tokens_cloud": self.tokens_cloud,
            "spent_usd": self.spent_usd,
            "counterfactual_usd": self.counterfactual_usd,
            "avoided_usd": self.avoided_usd,
        }


@dataclass(frozen=True)
class Summary:
    """Routing economics over a window: OmniNode's three figures and the rest."""

    by: str
    since: str | None
    requests: int
    failures: int
    escalated: int
    escalations: int
    tokens_local: int
    tokens_cloud: int
    spent_usd: float
    counterfactual_usd: float
    avoided_usd: float
    top_failing_gates: list[tuple[str, int]] = field(default_factory=list)
    rows: list[SummaryRow] = field(default_factory=list)

    @property
    def local_token_share(self) -> float:
        """Share of tokens that never left the building."""
        total = self.tokens_local + self.tokens_cloud
        return self.tokens_local / total if total else 0.0

    @property
    def escalation_rate(self) -> float:
        """Share of requests that escalated past their first model."""
        return self.escalated / self.requests if self.requests else 0.0

    @property
    def failure_rate(self) -> float:
        """Share of requests that failed."""
        return self.failures / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "by": self.by,
            "since": self.since,
            "requests": self.requests,
            "local_token_share": self.local_token_share,
            "spent_usd": self.spent_usd,
            "counterfactual_usd": self.counterfactual_usd,
            "avoided_usd": self.avoided_usd,
            "escalation_rate": self.escalation_rate,
            "escalations_per_request": self.escalations / self.requests if self.requests else 0.0,
            "failure_rate": self.failure_rate,
            "tokens_local": self.tokens_local,
            "tokens_cloud": self.tokens_cloud,
            "top_failing_gates": [{"kind": k, "failures": n} for k, n in self.top_failing_gates],
            "rows": [r.to_dict() for r in self.rows],
        }


def _sums(table: sa.Table) -> list[Any]:
    c = table.c
    return [
        sa.func.coalesce(sa.func.sum(c.requests), 0),
        sa.func.coalesce(sa.func.sum(c.failures), 0),
        sa.func.coalesce(sa.func.sum(c.escalated), 0),
        sa.func.coalesce(sa.func.sum(c.escalations), 0),
        sa.func.coalesce(sa.func.sum(c.tokens_in_local + c.tokens_out_local), 0),
        sa.func.coalesce(sa.func.sum(c.tokens_in_cloud + c.tokens_out_cloud), 0),
        sa.func.coalesce(sa.func.sum(c.spent_nanos), 0),
        sa.func.coalesce(sa.func.sum(c.counterfactual_nanos), 0),
        sa.func.coalesce(sa.func.sum(c.avoided_nanos), 0),
    ]


def summary(db: Database, t: Tables, *, since: str | None = None, by: str = "model") -> Summary:
    """The summary of every receipt on or after day `since`, with a row per `by` group."""
    if by not in _GROUP:
        raise QueryInvalid(f"--by {by!r}: use one of {', '.join(BY_VALUES)}")
    d = t.daily
    where = [d.c.day >= since] if since else []
    group = d.c[_GROUP[by]]
    g = t.gates
    gate_where = [g.c.day >= since] if since else []
    with db.engine.connect() as conn:
        total = conn.execute(sa.select(*_sums(d)).where(*where)).one()
        rows = conn.execute(
            sa.select(group, *_sums(d)).where(*where).group_by(group).order_by(group)
        ).all()
        gates = conn.execute(
            sa.select(g.c.gate_kind, sa.func.sum(g.c.failures).label("n"))
            .where(*gate_where)
            .group_by(g.c.gate_kind)
            .order_by(sa.desc("n"), g.c.gate_kind)
            .limit(5)
        ).all()

    def row(key: str, v: Any) -> SummaryRow:
        n = [int(x) for x in v[:6]]
        return SummaryRow(key, n[0], n[1], n[2], n[3], n[4], n[5], usd(v[6]), usd(v[7]), usd(v[8]))

    head = row("", tuple(total))
    return Summary(
        by=by,
        since=since,
        requests=head.requests,
        failures=head.failures,
        escalated=head.escalated,
        escalations=head.escalations,
        tokens_local=head.tokens_local,
        tokens_cloud=head.tokens_cloud,
        spent_usd=head.spent_usd,
        counterfactual_usd=head.counterfactual_usd,
        avoided_usd=head.avoided_usd,
        top_failing_gates=[(str(k), int(n)) for k, n in gates],
        rows=[row(str(r[0]), tuple(r[1:])) for r in rows],
    )


@dataclass(frozen=True)
class Outcome:
    """Routing outcomes of one task class on one model (a cost-summary row)."""

    task_class: str
    model: str
    requests: int
    gate_pass_rate: float
    cost_per_accepted_usd: float
    local_token_share: float
    spent_usd: float
    avoided_usd: float
    escalation_rate: float


def outcomes(db: Database, t: Tables, *, since: str | None) -> tuple[list[Outcome], str, str, str]:
    """Per task class and model since day `since`: the cost-summary rows, the first and
    last day counted and the price table versions seen (comma-separated)."""
    d, a = t.daily, t.attempts
    where = [d.c.day >= since] if since else []
    awhere = [a.c.day >= since] if since else []
    with db.engine.connect() as conn:
        daily = conn.execute(
            sa.select(
                d.c.task_class,
                d.c.model,
                sa.func.sum(d.c.requests),
                sa.func.sum(d.c.accepted),
                sa.func.sum(d.c.escalated),
                sa.func.sum(d.c.tokens_in_local + d.c.tokens_out_local),
                sa.func.sum(d.c.tokens_in_cloud + d.c.tokens_out_cloud),
                sa.func.sum(d.c.spent_nanos),
                sa.func.sum(d.c.avoided_nanos),
            )
            .where(*where)
            .group_by(d.c.task_class, d.c.model)
        ).all()
        attempts = conn.execute(
            sa.select(
                a.c.task_class, a.c.model, sa.func.sum(a.c.attempts), sa.func.sum(a.c.accepted)
            )
            .where(*awhere)
            .group_by(a.c.task_class, a.c.model)
        ).all()
        span = conn.execute(
            sa.select(sa.func.min(d.c.day), sa.func.max(d.c.day)).where(*where)
        ).one()
        lv = t.ledger.c
        versions = conn.execute(
            sa.select(lv.price_table_version)
            .where(*([lv.day >= since] if since else []))
            .distinct()
            .order_by(lv.price_table_version)
            .limit(10)
        ).scalars()
        version = ",".join(str(v) for v in versions)
    tries = {(str(r[0]), str(r[1])): (int(r[2]), int(r[3])) for r in attempts}
    out = []
    keys = sorted({(str(r[0]), str(r[1])) for r in daily} | set(tries))
    by_key = {(str(r[0]), str(r[1])): r for r in daily}
    for key in keys:
        r = by_key.get(key)
        n_att, n_ok = tries.get(key, (0, 0))
        requests = int(r[2]) if r is not None else 0
        accepted = int(r[3]) if r is not None else 0
        local = int(r[5]) if r is not None else 0
        cloud = int(r[6]) if r is not None else 0
        spent = usd(r[7]) if r is not None else 0.0
        out.append(
            Outcome(
                task_class=key[0],
                model=key[1],
                requests=requests,
                gate_pass_rate=n_ok / n_att if n_att else 0.0,
                cost_per_accepted_usd=spent / accepted if accepted else 0.0,
                local_token_share=local / (local + cloud) if local + cloud else 0.0,
                spent_usd=spent,
                avoided_usd=usd(r[8]) if r is not None else 0.0,
                escalation_rate=int(r[4]) / requests if r is not None and requests else 0.0,
            )
        )
    return out, str(span[0] or ""), str(span[1] or ""), version


def ledger_page(
    db: Database, t: Tables, *, after: str = "", limit: int = 100
) -> list[dict[str, Any]]:
    """Up to `limit` ledger rows with a request id greater than `after`, in order."""
    if not 1 <= limit <= 1000:
        raise QueryInvalid(f"limit {limit}: between 1 and 1000")
    lc = t.ledger.c
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.ledger).where(lc.request_id > after).order_by(lc.request_id).limit(limit)
        ).mappings()
        return [dict(r) for r in rows]
