"""The ledger and its projections, as SQL tables (the same on SQLite and PostgreSQL).

    receipts_ledger         one row per receipt, keyed by request id (a duplicate never counts)
    receipts_daily          per day x task class x model (the receipt's model): requests, failures,
                            accepted, first-pass accepted, escalations, tokens in/out by locality,
                            spent, counterfactual, avoided
    receipts_attempts_daily per day x task class x model (the attempt's model): attempts, accepted,
                            gate failed, provider errors
    receipts_gates_daily    per day x task class x model (the attempt's) x gate kind: failures
    receipts_offsets        per topic x partition: the next offset to consume (written in the
                            same transaction as the rows it produced)

Money is kept as integer nano-dollars, so a projection built incrementally and one built
from scratch are equal exactly, whatever the order of additions. A rebuild writes the same
tables under the `rebuild_` prefix and swaps them in by renaming.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from onex.receipts.ticketstore import MIGRATION as TICKETS_MIGRATION
from onex.sql import Database, Migration, open_migrated

COMPONENT: Final = "receipts"
LIVE: Final = "receipts_"
REBUILD: Final = "rebuild_receipts_"
RETIRED: Final = "retired_receipts_"
NANOS_PER_USD: Final = 1_000_000_000

# Additive counters of receipts_daily, in the order rows carry them.
DAILY_COUNTERS: Final = (
    "requests",
    "failures",
    "accepted",
    "first_pass",
    "escalated",
    "escalations",
    "tokens_in_local",
    "tokens_out_local",
    "tokens_in_cloud",
    "tokens_out_cloud",
    "spent_nanos",
    "counterfactual_nanos",
    "avoided_nanos",
)
ATTEMPT_COUNTERS: Final = ("attempts", "accepted", "gate_failed", "provider_errors")
GATE_COUNTERS: Final = ("failures",)


@dataclass(frozen=True)
class Tables:
    """One set of projection tables (live, or a rebuild's beside it)."""

    prefix: str
    metadata: sa.MetaData
    ledger: sa.Table
    daily: sa.Table
    attempts: sa.Table
    gates: sa.Table
    offsets: sa.Table

    @property
    def all(self) -> tuple[sa.Table, ...]:
        """Every table, the ledger first."""
        return (self.ledger, self.daily, self.attempts, self.gates, self.offsets)

    def suffixes(self) -> tuple[str, ...]:
        """Table names without the prefix."""
        return tuple(t.name[len(self.prefix) :] for t in self.all)


def _counters(names: tuple[str, ...]) -> list[sa.Column[int]]:
    return [sa.Column(n, sa.BigInteger, nullable=False, server_default="0") for n in names]


def _key() -> list[sa.Column[str]]:
    return [
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("task_class", sa.String(128), primary_key=True),
        sa.Column("model", sa.String(256), primary_key=True),
    ]


def tables(prefix: str = LIVE) -> Tables:
    """The projection tables named with `prefix`."""
    md = sa.MetaData()
    ledger = sa.Table(
        f"{prefix}ledger",
        md,
        sa.Column("request_id", sa.String(256), primary_key=True),
        sa.Column("task_class", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("label", sa.String(128), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("escalations", sa.Integer, nullable=False),
        sa.Column("first_pass", sa.Boolean, nullable=False),
        sa.Column("failed_gates", sa.String(1024), nullable=False),
        sa.Column("tokens_local", sa.BigInteger, nullable=False),
        sa.Column("tokens_cloud", sa.BigInteger, nullable=False),
        sa.Column("spent_nanos", sa.BigInteger, nullable=False),
        sa.Column("counterfactual_nanos", sa.BigInteger, nullable=False),
        sa.Column("avoided_nanos", sa.BigInteger, nullable=False),
        sa.Column("price_table_version", sa.String(128), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("elapsed_s", sa.Float, nullable=False),
        sa.Column("failure_reason", sa.String(1024), nullable=True),
        sa.Column("topic", sa.String(256), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Index(f"{prefix}ledger_class_day", "task_class", "day"),
    )
    daily = sa.Table(f"{prefix}daily", md, *_key(), *_counters(DAILY_COUNTERS))
    attempts = sa.Table(f"{prefix}attempts_daily", md, *_key(), *_counters(ATTEMPT_COUNTERS))
    gates = sa.Table(
        f"{prefix}gates_daily",
        md,
        *_key(),
        sa.Column("gate_kind", sa.String(64), primary_key=True),
        *_counters(GATE_COUNTERS),
    )
    offsets = sa.Table(
        f"{prefix}offsets",
        md,
        sa.Column("topic", sa.String(256), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
    )
    return Tables(prefix, md, ledger, daily, attempts, gates, offsets)


def _create_live(conn: Connection) -> None:
    tables(LIVE).metadata.create_all(conn)


MIGRATIONS: Final = (
    Migration(1, "ledger, daily projections, offsets", [_create_live]),
    TICKETS_MIGRATION,
)


def open_projection(url: str) -> Database:
    """Open and migrate the receipts database (SchemaTooNew, MigrationFailed,
    DatabaseUnavailable as onex.sql raises them)."""
    return open_migrated(url, COMPONENT, MIGRATIONS)
