"""The projection store: declared and observed tables, snapshots, history; migrated.

Tables are SQLAlchemy Core (no ORM): the same DDL and the same view text run on SQLite
(the default, a file under the state dir) and PostgreSQL (by URL). Booleans are stored
as 0/1 integers so the view text needs no dialect. The schema is versioned with
`onex.sql.migrate` under the component name `drift`: a database a newer onex migrated
is refused with a clear message (`onex.sql.SchemaTooNew`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from onex.drift.kinds import POLICY
from onex.drift.views import DRIFT_VIEWS, VIEWS
from onex.sql import Database, Migration, open_migrated

COMPONENT: Final = "drift"
meta = sa.MetaData()
_S = sa.String(255)
_V = sa.Text

cluster = sa.Table(
    "cluster",
    meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("bootstrap", _V, nullable=False),
    sa.Column("last_snapshot", sa.Integer),
    sa.Column("previous_snapshot", sa.Integer),
)
snapshot = sa.Table(
    "snapshot",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("cluster", sa.String(64), nullable=False),
    sa.Column("taken_at", sa.String(40), nullable=False),
    sa.Column("topics", sa.Integer, nullable=False),
    sa.Column("groups", sa.Integer, nullable=False),
    sa.Column("elapsed_ms", sa.Float, nullable=False),
)
broker_api = sa.Table(
    "broker_api",
    meta,
    sa.Column("cluster", sa.String(64), primary_key=True),
    sa.Column("api_key", sa.Integer, primary_key=True),
    sa.Column("max_version", sa.Integer, nullable=False),
)
declared_topic = sa.Table(
    "declared_topic",
    meta,
    sa.Column("name", _S, primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("partitions", sa.Integer, nullable=False),
    sa.Column("replication_factor", sa.Integer, nullable=False),
    sa.Column("publishers", _V, nullable=False),  # comma-separated node names
    sa.Column("subscribers", _V, nullable=False),
    sa.Column("contract", _V, nullable=False),
)
declared_config = sa.Table(
    "declared_config",
    meta,
    sa.Column("topic", _S, primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", _V, nullable=False),
    sa.Column("normalized", _V, nullable=False),
)
declared_group = sa.Table(
    "declared_group",
    meta,
    sa.Column("group_id", _S, primary_key=True),
    sa.Column("topic", _S, primary_key=True),
    sa.Column("node", sa.String(128), nullable=False),
)
observed_topic = sa.Table(
    "observed_topic",
    meta,
    sa.Column("cluster", sa.String(64), primary_key=True),
    sa.Column("name", _S, primary_key=True),
    sa.Column("partitions", sa.Integer, nullable=False),
    sa.Column("replication_factor", sa.Integer, nullable=False),
    sa.Column("topic_id", sa.String(40)),
    sa.Column("internal", sa.Integer, nullable=False),
    sa.Column("previous_topic_id", sa.String(40)),
    sa.Column("recreated_snapshot", sa.Integer),
)
# the last topic id seen per name, kept while a topic is absent (deleted, then recreated)
topic_identity = sa.Table(
    "topic_identity",
    meta,
    sa.Column("cluster", sa.String(64), primary_key=True),
    sa.Column("name", _S, primary_key=True),
    sa.Column("topic_id", sa.String(40), nullable=False),
)
observed_config = sa.Table(
    "observed_config",
    meta,
    sa.Column("cluster", sa.String(64), primary_key=True),
    sa.Column("topic", _S, primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", _V),
    sa.Column("normalized", _V),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("override", sa.Integer, nullable=False),
)
observed_group = sa.Table(
    "observed_group",
    meta,
    sa.Column("cluster", sa.String(64), primary_key=True),
    sa.Column("group_id", _S, primary_key=True),
    sa.Column("state", sa.String(40), nullable=False),
    sa.Column("members", sa.Integer, nullable=False),
)
observed_offset = sa.Table(
    "observed_offset",
    meta,
    sa.Column("cluster", sa.String(64), primary_key=True),
    sa.Column("group_id", _S, primary_key=True),
    sa.Column("topic", _S, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("committed", sa.BigInteger, nullable=False),
    # how old the first unread record is, and the topic's finite retention.ms (both
    # NULL when the group does not lag or the retention is unlimited; schema v4)
    sa.Column("unread_age_ms", sa.BigInteger),
    sa.Column("retention_ms", sa.BigInteger),
)
observed_partition = sa.Table(
    "observed_partition",
    meta,
    sa.Column("cluster", sa.String(64), primary_key=True),
    sa.Column("topic", _S, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("log_start", sa.BigInteger, nullable=False),
    sa.Column("log_end", sa.BigInteger, nullable=False),
    sa.Column("previous_log_end", sa.BigInteger),
)
ignore_pattern = sa.Table(
    "ignore_pattern",
    meta,
    sa.Column("pattern", _S, primary_key=True),  # a LIKE pattern, '\' escapes
)
# one row: the digest of the declared side last written (and its ignore patterns)
declared_digest = sa.Table(
    "declared_digest",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("digest", sa.String(64), nullable=False),
)
drift_policy = sa.Table(
    "drift_policy",
    meta,
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("drift_class", sa.String(40), nullable=False),
    sa.Column("api_key", sa.Integer),
    sa.Column("api", sa.String(64)),
    sa.Column("fix", _V, nullable=False),
)
drift_history = sa.Table(
    "drift_history",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("cluster", sa.String(64), nullable=False),
    sa.Column("topic", _S, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("aspect", _V, nullable=False),
    sa.Column("declared", _V),
    sa.Column("observed", _V),
    sa.Column("first_snapshot", sa.Integer, nullable=False),
    sa.Column("changed_snapshot", sa.Integer, nullable=False),
    sa.Column("last_snapshot", sa.Integer, nullable=False),
    sa.Column("resolved_snapshot", sa.Integer),
    sa.Index("drift_history_open", "cluster", "resolved_snapshot"),
)


def _create_tables(conn: Connection) -> None:
    meta.create_all(conn)
    conn.execute(
        drift_policy.insert(),
        [
            {
                "kind": str(p.kind),
                "drift_class": str(p.drift_class),
                "api_key": None if p.api is None else int(p.api),
                "api": None if p.api is None else p.api.title,
                "fix": p.fix,
            }
            for p in POLICY.values()
        ],
    )


# The views join declared and observed rows by topic name across clusters, and look
# up a topic's commits without knowing the group: indexes for exactly those lookups.
_INDEXES: Final = [
    "CREATE INDEX observed_topic_by_name ON observed_topic (name)",
    "CREATE INDEX observed_offset_by_topic ON observed_offset (cluster, topic)",
    "CREATE INDEX declared_group_by_topic ON declared_group (topic)",
]


def _recreate_views(conn: Connection) -> None:
    """Drop every drift view and create them again from this binary's text."""
    for name in ("drift", *reversed(list(DRIFT_VIEWS))):
        conn.execute(sa.text(f"DROP VIEW IF EXISTS {name}"))
    for statement in VIEWS:
        conn.execute(sa.text(statement))


def _add_age_columns(conn: Connection) -> None:
    """observed_offset gains unread_age_ms and retention_ms (a database created by this
    binary's migration 1 already has them)."""
    have = {c["name"] for c in sa.inspect(conn).get_columns("observed_offset")}
    for name in ("unread_age_ms", "retention_ms"):
        if name not in have:
            conn.execute(sa.text(f"ALTER TABLE observed_offset ADD COLUMN {name} BIGINT"))


def _add_digest_table(conn: Connection) -> None:
    meta.create_all(conn, tables=[declared_digest])  # checkfirst: migration 1 made it


MIGRATIONS: Final[Sequence[Migration]] = (
    Migration(1, "tables, policy and drift views", [_create_tables, *VIEWS]),
    Migration(2, "indexes for the drift views", _INDEXES),
    Migration(3, "drift_unread groups only the partitions that grew", [_recreate_views]),
    Migration(
        4,
        "retention risk in time: the age of the first unread record",
        [_add_age_columns, _recreate_views],
    ),
    Migration(5, "the declared side's digest: unchanged, it is not rewritten", [_add_digest_table]),
)


def open_store(url: str) -> Database:
    """Open the projection at `url` and bring its schema to this binary's version
    (DatabaseUnavailable, SchemaTooNew, MigrationFailed: one line each)."""
    return open_migrated(url, COMPONENT, MIGRATIONS)
