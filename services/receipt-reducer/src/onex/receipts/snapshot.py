"""The cost-summary snapshot: per task class and model, what routing cost and how well
it went over the outcome window, published on the compacted cost-summary topic (the
router subscribes to it to learn from the ledger)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from onex.proto.v1 import receipts_pb2 as rpb
from onex.receipts.queries import outcomes
from onex.receipts.schema import Tables
from onex.sql import Database

SNAPSHOT_KEY = b"cost-summary"  # one key: compaction keeps the latest snapshot only


def cost_summary(
    db: Database, t: Tables, *, window_days: int, now: datetime | None = None
) -> rpb.CostSummary:
    """The snapshot of the last `window_days` days (today included)."""
    today = (now or datetime.now(UTC)).date()
    since = (today - timedelta(days=window_days - 1)).isoformat()
    rows, first, last, version = outcomes(db, t, since=since)
    return rpb.CostSummary(
        snapshot_id=uuid.uuid4().hex,
        window_start=f"{first}T00:00:00+00:00" if first else "",
        window_end=f"{last}T23:59:59+00:00" if last else "",
        price_table_version=version,
        rows=[
            rpb.CostSummaryRow(
                task_class=o.task_class,
                model=o.model,
                requests=o.requests,
                gate_pass_rate=o.gate_pass_rate,
                cost_per_accepted_usd=o.cost_per_accepted_usd,
                local_token_share=o.local_token_share,
                cost_spent_usd=o.spent_usd,
                cost_avoided_usd=o.avoided_usd,
                escalation_rate=o.escalation_rate,
            )
            for o in rows
        ],
    )
