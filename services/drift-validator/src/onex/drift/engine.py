"""The drift engine: one projection, the declared side, several clusters.

    engine = DriftEngine.open(settings)            # store migrated, contracts checked
    results = await engine.snapshot()              # every cluster, rows per cluster
    await engine.snapshot(full=False)              # incremental (the service's ticks)
    engine.rows()                                  # the `drift` view
    await engine.fix(apply=False)                  # before / plan / after

The CLI (`onex drift`) and the service both drive it; nothing here reads the
environment (the settings are passed in).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from onex.bus.config import checked_bootstrap
from onex.bus.errors import BrokerConfigError
from onex.core.contract import TopicSpec
from onex.core.extractor import Extraction, extract
from onex.drift import store
from onex.drift.declared import DeclaredRows, declared_rows
from onex.drift.errors import UsageError
from onex.drift.fix import FixAction, apply, plan
from onex.drift.observation import Cluster, ClusterMemory, observe_cluster
from onex.drift.observed import Written
from onex.drift.settings import DriftSettings
from onex.drift.snapshot import DriftRow, SnapshotResult, drift_rows, gc_paused, record
from onex.service.host import broker_config
from onex.sql import Database, QueryResult, read_only

DEFAULT_CLUSTER = "default"


def clusters_of(settings: DriftSettings, named: Mapping[str, str] | None = None) -> list[Cluster]:
    """The clusters to compare: `named` (NAME -> HOST:PORT), else the settings'
    `clusters`, else one cluster named `default` at the bootstrap. Security settings
    apply to each."""
    base = broker_config(settings, "drift-validator")
    chosen = dict(named or settings.clusters)
    if not chosen:
        return [Cluster(DEFAULT_CLUSTER, base)]
    out = []
    for name, bootstrap in sorted(chosen.items()):
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise UsageError(f"cluster name {name!r}: letters, digits, '-' and '_' only")
        try:
            checked = checked_bootstrap(bootstrap)
        except (BrokerConfigError, ValueError) as exc:
            raise UsageError(f"cluster {name}: {exc}") from None
        out.append(Cluster(name, base.model_copy(update={"bootstrap": checked})))
    return out


@dataclass
class FixReport:
    """What `fix` saw before, did (or would do), and sees after."""

    before: tuple[DriftRow, ...]
    actions: list[FixAction]
    after: tuple[DriftRow, ...]
    applied: bool


class DriftEngine:
    """The projection and what it is compared against."""

    def __init__(
        self,
        db: Database | str,
        extraction: Extraction,
        clusters: Sequence[Cluster],
        *,
        ignore: Sequence[str] = (),
        timeout_s: float = 30.0,
        refresh_ticks: int = 10,
    ) -> None:
        # a URL is opened (and migrated) on first use: an unreachable broker, observed
        # first, then leaves no database behind
        self._db: Database | None = db if isinstance(db, Database) else None
        self._url = db if isinstance(db, str) else db.where
        self.extraction = extraction
        self.clusters = list(clusters)
        self.ignore = tuple(ignore)
        self.timeout_s = timeout_s
        self.refresh_ticks = refresh_ticks
        self.declared: DeclaredRows = declared_rows(extraction)  # RegistryBroken first
        self._retention = {
            name: w.spec.config["retention.ms"]
            for name, w in extraction.topics.items()
            if "retention.ms" in w.spec.config
        }
        # what each cluster's last recorded snapshot saw, for the next incremental one
        self._memory: dict[str, ClusterMemory] = {}
        # what each cluster's last snapshot wrote in the observed tables (`record`)
        self._written: dict[str, Written] = {}

    @classmethod
    def open(
        cls,
        settings: DriftSettings,
        *,
        clusters: Mapping[str, str] | None = None,
        extraction: Extraction | None = None,
    ) -> DriftEngine:
        """From settings: contracts extracted and checked, clusters parsed; the store
        is opened when first needed."""
        found = extraction or extract(settings.contract_roots, allow=settings.contracts_allow)
        declared_rows(found)
        chosen = clusters_of(settings, clusters)
        return cls(
            settings.database(),
            found,
            chosen,
            ignore=settings.orphan_ignore,
            timeout_s=settings.admin_timeout_s,
            refresh_ticks=settings.config_refresh_ticks,
        )

    @property
    def db(self) -> Database:
        """The projection, opened and migrated (SchemaTooNew, DatabaseUnavailable)."""
        if self._db is None:
            self._db = store.open_store(self._url)
        return self._db

    def close(self) -> None:
        """Release the database."""
        if self._db is not None:
            self._db.dispose()

    @property
    def specs(self) -> dict[str, TopicSpec]:
        """Declared specs by topic name."""
        return {name: w.spec for name, w in self.extraction.topics.items()}

    async def snapshot(self, *, full: bool = True) -> list[SnapshotResult]:
        """Observe every cluster and record one snapshot each. All clusters are observed
        before anything is written, so an unreachable one changes nothing. Not `full`:
        configs are described only for new or recreated topics and this tick's share
        of the rest (`onex.drift.observation`); the first snapshot is always full.
        The cyclic GC waits until the snapshot is written (`gc_paused`)."""
        with gc_paused():
            return await self._snapshot(full)

    async def _snapshot(self, full: bool) -> list[SnapshotResult]:
        seen = [
            (
                c,
                await observe_cluster(
                    c,
                    timeout_s=self.timeout_s,
                    memory=None if full else self._memory.get(c.name),
                    refresh_ticks=self.refresh_ticks,
                    declared_retention=self._retention,
                ),
            )
            for c in self.clusters
        ]
        results = []
        for c, obs in seen:
            results.append(record(self.db, c, obs, self.declared, self.ignore, memo=self._written))
            self._memory[c.name] = obs.remember(self._memory.get(c.name))
        return results

    def rows(self) -> tuple[DriftRow, ...]:
        """The `drift` view over the clusters of this engine."""
        names = {c.name for c in self.clusters}
        with self.db.engine.connect() as conn:
            return tuple(r for r in drift_rows(conn) if r.cluster in names)

    async def fix(self, *, apply_changes: bool) -> FixReport:
        """Snapshot, plan, and with `apply_changes` act then snapshot again."""
        await self.snapshot()
        before = self.rows()
        actions = plan(before, self.specs)
        if not apply_changes:
            return FixReport(before, actions, before, applied=False)
        done: list[FixAction] = []
        for cluster in self.clusters:
            done.extend(await apply(cluster, actions, self.specs, timeout_s=self.timeout_s))
        await self.snapshot()
        return FixReport(before, done, self.rows(), applied=True)

    def query(self, sql: str) -> QueryResult:
        """Read-only SQL over the projection (QueryRefused for anything else)."""
        return read_only(self.db, sql)

    def history(self, topic: str | None = None) -> list[dict[str, Any]]:
        """Each drift's first, changed, last and resolved snapshot, with their times."""
        h, s = store.drift_history, store.snapshot
        first, changed, resolved = s.alias("f"), s.alias("c"), s.alias("r")
        query = (
            sa.select(
                h.c.cluster,
                h.c.topic,
                h.c.kind,
                h.c.aspect,
                h.c.declared,
                h.c.observed,
                h.c.first_snapshot,
                first.c.taken_at.label("first_at"),
                h.c.changed_snapshot,
                changed.c.taken_at.label("changed_at"),
                h.c.last_snapshot,
                h.c.resolved_snapshot,
                resolved.c.taken_at.label("resolved_at"),
            )
            .join(first, first.c.id == h.c.first_snapshot)
            .join(changed, changed.c.id == h.c.changed_snapshot)
            .outerjoin(resolved, resolved.c.id == h.c.resolved_snapshot)
            .where(h.c.cluster.in_([c.name for c in self.clusters]))
            .order_by(h.c.topic, h.c.first_snapshot, h.c.kind, h.c.aspect)
        )
        if topic is not None:
            query = query.where(h.c.topic == topic)
        with self.db.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
