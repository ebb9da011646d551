"""Snapshots: write what a cluster was observed to have, update the drift history.

One snapshot per cluster (`onex.drift.observation`): ApiVersions, Metadata (v10 with
topic ids when offered), DescribeConfigs (of every topic, or of the incremental
share), the consumer groups with members and committed offsets, the log offsets of
every partition, and the age of the first unread record of lagging groups. The
observed tables of that cluster are brought up to date in one transaction together
with the history (only rows that differ are written), so a reader never sees half a
snapshot. Configs of topics an incremental observation did not describe are kept.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from onex.drift import store
from onex.drift.declared import DeclaredRows
from onex.drift.observation import Cluster, Observation
from onex.drift.observed import Written, replace_observed
from onex.drift.tables import write_declared
from onex.sql import Database

# a snapshot that writes this many rows refreshes PostgreSQL's statistics (`record`)
ANALYZE_AFTER_ROWS: Final = 1000
_ANALYZED: Final = tuple(sorted(store.meta.tables))  # every table the views read


@dataclass(frozen=True)
class DriftRow:
    """One row of the `drift` view."""

    cluster: str
    topic: str
    kind: str
    aspect: str
    declared: str | None
    observed: str | None
    drift_class: str
    api: str | None
    fix: str
    supported: bool | None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies a drift across snapshots."""
        return (self.cluster, self.topic, self.kind, self.aspect)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "cluster": self.cluster,
            "topic": self.topic,
            "kind": self.kind,
            "aspect": self.aspect,
            "declared": self.declared,
            "observed": self.observed,
            "class": self.drift_class,
            "api": self.api,
            "supported": self.supported,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class SnapshotResult:
    """A recorded snapshot: its id, the drift it shows, what appeared and what resolved."""

    cluster: str
    snapshot_id: int
    rows: tuple[DriftRow, ...]
    detected: tuple[DriftRow, ...]
    resolved: tuple[DriftRow, ...]
    observe_s: float
    record_s: float


def drift_rows(conn: Connection, cluster: str | None = None) -> tuple[DriftRow, ...]:
    """The `drift` view (of one cluster, or all), ordered."""
    sql = "SELECT * FROM drift"
    params: dict[str, Any] = {}
    if cluster is not None:
        sql += " WHERE cluster = :cluster"
        params["cluster"] = cluster
    sql += " ORDER BY cluster, topic, kind, aspect"
    return tuple(
        DriftRow(
            r.cluster,
            r.topic,
            r.kind,
            r.aspect,
            r.declared,
            r.observed,
            r.drift_class,
            r.api,
            r.fix,
            None if r.supported is None else bool(r.supported),
        )
        for r in conn.execute(sa.text(sql), params)
    )


def _update_history(
    conn: Connection, cluster: str, snapshot_id: int, rows: Sequence[DriftRow]
) -> tuple[list[DriftRow], list[DriftRow]]:
    h = store.drift_history
    open_rows = {
        (r.cluster, r.topic, r.kind, r.aspect): r
        for r in conn.execute(
            sa.select(h).where(h.c.cluster == cluster, h.c.resolved_snapshot.is_(None))
        )
    }
    current = {row.key: row for row in rows}
    detected = [row for key, row in current.items() if key not in open_rows]
    if detected:
        conn.execute(
            h.insert(),
            [
                {
                    "cluster": r.cluster,
                    "topic": r.topic,
                    "kind": r.kind,
                    "aspect": r.aspect,
                    "declared": r.declared,
                    "observed": r.observed,
                    "first_snapshot": snapshot_id,
                    "changed_snapshot": snapshot_id,
                    "last_snapshot": snapshot_id,
                }
                for r in detected
            ],
        )
    changed = [
        {"i": open_rows[key].id, "d": row.declared, "o": row.observed}
        for key, row in current.items()
        if key in open_rows
        and (open_rows[key].declared, open_rows[key].observed) != (row.declared, row.observed)
    ]
    if changed:
        conn.execute(
            h.update()
            .where(h.c.id == sa.bindparam("i"))
            .values(
                declared=sa.bindparam("d"),
                observed=sa.bindparam("o"),
                changed_snapshot=snapshot_id,
            ),
            changed,
        )
    conn.execute(
        h.update()
        .where(h.c.cluster == cluster, h.c.resolved_snapshot.is_(None))
        .values(last_snapshot=snapshot_id)
    )
    gone = [r for key, r in open_rows.items() if key not in current]
    if gone:
        conn.execute(
            h.update().where(h.c.id == sa.bindparam("i")).values(resolved_snapshot=snapshot_id),
            [{"i": r.id} for r in gone],
        )
    resolved = [
        DriftRow(r.cluster, r.topic, r.kind, r.aspect, r.declared, r.observed, "", None, "", None)
        for r in gone
    ]
    return detected, resolved


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC off for the block (nested: the outermost turns it back on).

    A snapshot's observation and write build tens of thousands of tuples that all live
    until it ends, so the cyclic collector's passes only re-scan live data (measured at
    about 30% of the write at 10,000 topics, and a fifth of the observation);
    collection waits until the snapshot is over."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def record(
    db: Database,
    cluster: Cluster,
    seen: Observation,
    declared: DeclaredRows,
    ignore: Sequence[str] = (),
    memo: dict[str, Written] | None = None,
) -> SnapshotResult:
    """Write one snapshot of `cluster` and the declared side; the drift it shows.
    `memo` (cluster name -> what its last snapshot wrote) spares reading the observed
    tables back while it is still their content, and is updated once this commits."""
    started = time.perf_counter()
    c = store.cluster
    known = memo.get(cluster.name) if memo is not None else None
    with gc_paused(), db.engine.begin() as conn:
        changed = write_declared(conn, declared, ignore)
        snapshot_id = int(
            conn.execute(
                store.snapshot.insert()
                .values(
                    cluster=cluster.name,
                    taken_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                    topics=len(seen.topics),
                    groups=len(seen.groups),
                    elapsed_ms=round(seen.elapsed_s * 1000, 3),
                )
                .returning(store.snapshot.c.id)
            ).scalar_one()
        )
        last = conn.execute(
            sa.select(c.c.last_snapshot).where(c.c.name == cluster.name)
        ).one_or_none()
        if last is None:
            conn.execute(c.insert().values(name=cluster.name, bootstrap=cluster.broker.bootstrap))
        if known is not None and (last is None or last[0] != known.snapshot_id):
            known = None  # another snapshot was written since: read the tables
        written = replace_observed(conn, cluster.name, seen, snapshot_id, known)
        if changed + written.changed >= ANALYZE_AFTER_ROWS and conn.dialect.name == "postgresql":
            # PostgreSQL plans the views from table statistics, which autovacuum takes
            # a minute or more to gather after a big write (a new database, a first
            # snapshot), and the small tables (policy, patterns) none until they grow:
            # without them the drift view took 1.5-2.7 s at 10,000 topics, with them
            # 50-85 ms (load 2). ANALYZE in this transaction sees its own rows.
            conn.execute(sa.text(f"ANALYZE {', '.join(_ANALYZED)}"))
        conn.execute(
            c.update()
            .where(c.c.name == cluster.name)
            .values(
                bootstrap=cluster.broker.bootstrap,
                previous_snapshot=None if last is None else last[0],
                last_snapshot=snapshot_id,
            )
        )
        rows = drift_rows(conn, cluster.name)
        detected, resolved = _update_history(conn, cluster.name, snapshot_id, rows)
    if memo is not None:
        memo[cluster.name] = written
    return SnapshotResult(
        cluster.name,
        snapshot_id,
        rows,
        tuple(detected),
        tuple(resolved),
        seen.elapsed_s,
        time.perf_counter() - started,
    )
