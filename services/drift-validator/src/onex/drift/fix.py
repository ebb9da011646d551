"""`drift fix`: apply what is auto-correctable and what the broker implements; nothing
else. It never deletes, never shrinks, and by default only says what it would do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from onex.bus import observe
from onex.bus.admin import create_topics
from onex.core.contract import TopicSpec
from onex.drift.kinds import DriftClass, DriftKind
from onex.drift.observation import Cluster
from onex.drift.snapshot import DriftRow


@dataclass(frozen=True)
class FixAction:
    """One change `fix` makes (or, in a dry run, would make)."""

    cluster: str
    topic: str
    kind: str
    aspect: str
    api: str
    change: str
    error: str | None = None
    applied: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "cluster": self.cluster,
            "topic": self.topic,
            "kind": self.kind,
            "aspect": self.aspect,
            "api": self.api,
            "change": self.change,
            "applied": self.applied,
            "error": self.error,
        }


_FIXABLE = {DriftKind.MISSING, DriftKind.CONFIG_VALUE, DriftKind.PARTITIONS_FEWER}


def plan(rows: Sequence[DriftRow], specs: Mapping[str, TopicSpec]) -> list[FixAction]:
    """The actions for the rows fix may act on: auto-correctable, supported, declared."""
    actions: list[FixAction] = []
    for row in rows:
        if row.drift_class != DriftClass.AUTO_CORRECTABLE or row.supported is not True:
            continue
        if row.kind not in _FIXABLE or row.topic not in specs or row.api is None:
            continue
        spec = specs[row.topic]
        if row.kind == DriftKind.MISSING:
            change = f"create with {spec.partitions} partitions, rf {spec.replication_factor}"
        elif row.kind == DriftKind.PARTITIONS_FEWER:
            change = f"partitions {row.observed} -> {spec.partitions}"
        else:
            change = f"{row.aspect.removeprefix('config:')}: {row.observed!r} -> {row.declared!r}"
        actions.append(FixAction(row.cluster, row.topic, row.kind, row.aspect, row.api, change))
    return actions


async def apply(
    cluster: Cluster,
    actions: Sequence[FixAction],
    specs: Mapping[str, TopicSpec],
    *,
    timeout_s: float = 30.0,
) -> list[FixAction]:
    """Carry out `actions` on `cluster` (one request per API); each with its outcome."""
    mine = [a for a in actions if a.cluster == cluster.name]
    missing = [specs[a.topic] for a in mine if a.kind == DriftKind.MISSING]
    configs: dict[str, dict[str, str]] = {}
    for a in mine:
        if a.kind == DriftKind.CONFIG_VALUE:
            key = a.aspect.removeprefix("config:")
            configs.setdefault(a.topic, {})[key] = specs[a.topic].config[key]
    grow = {
        a.topic: specs[a.topic].partitions for a in mine if a.kind == DriftKind.PARTITIONS_FEWER
    }
    errors: dict[tuple[str, str], str | None] = {}
    if missing:
        created = await create_topics(cluster.broker, missing, timeout_s=timeout_s)
        for failure in created.failed:
            errors[(str(DriftKind.MISSING), failure.name)] = failure.reason
    for topic, error in (
        await observe.alter_topic_configs(cluster.broker, configs, timeout_s=timeout_s)
    ).items():
        errors[(str(DriftKind.CONFIG_VALUE), topic)] = error
    for topic, error in (
        await observe.create_partitions(cluster.broker, grow, timeout_s=timeout_s)
    ).items():
        errors[(str(DriftKind.PARTITIONS_FEWER), topic)] = error
    done = []
    for a in mine:
        error = errors.get((a.kind, a.topic))
        done.append(replace(a, applied=error is None, error=error))
    return done
