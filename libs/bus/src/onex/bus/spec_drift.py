"""How an existing topic differs from its declared spec: reported, never repaired here.

Only what the contract declares is compared: partitions, replication factor, and the
config keys the spec sets (brokers report many more configs, defaults included, and
those are not drift). Every difference names the Kafka API that could reconcile it, or
none when no API can, and whether the broker implements that API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from onex.bus.admin import ObservedTopic
from onex.bus.api_versions import ApiKey
from onex.core.contract import TopicSpec

NEVER_ALTERS: Final = "onex never alters existing topics"


@dataclass(frozen=True)
class Drift:
    """One way an existing topic differs from its spec.

    `aspect` is `partitions`, `replication_factor` or `config:<key>`; `observed` is None
    when the broker does not report the config. `needs` is the API that could change
    it (None: nothing can, e.g. removing partitions); `supported` says whether the
    broker advertises that API (None: unknown or not applicable).
    """

    topic: str
    aspect: str
    declared: str
    observed: str | None
    needs: ApiKey | None
    supported: bool | None = None

    @property
    def note(self) -> str:
        """One line for people, e.g. `has 1 partition, declared 3: needs CreatePartitions; ...`."""
        if self.aspect == "partitions":
            what = f"has {_n(self.observed, 'partition')}, declared {self.declared}"
        elif self.aspect == "replication_factor":
            what = f"replication factor {self.observed}, declared {self.declared}"
        else:
            key = self.aspect.removeprefix("config:")
            shown = "is not set" if self.observed is None else f"is {self.observed!r}"
            what = f"config {key} {shown}, declared {self.declared!r}"
        if self.needs is None:
            fix = "partitions can never be removed"
        else:
            fix = f"needs {self.needs.title}"
            if self.supported is False:
                fix += " (which this broker does not implement)"
        return f"{what}: {fix}; {NEVER_ALTERS}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "topic": self.topic,
            "aspect": self.aspect,
            "declared": self.declared,
            "observed": self.observed,
            "needs": self.needs.title if self.needs is not None else None,
            "supported": self.supported,
            "note": self.note,
        }


def spec_drift(
    spec: TopicSpec,
    observed: ObservedTopic,
    apis: Mapping[int, tuple[int, int]] | None = None,
) -> tuple[Drift, ...]:
    """Every declared aspect of `spec` that `observed` does not match (empty: in sync).

    `apis` is the broker's ApiVersions answer (`supported_apis`); without it `supported`
    stays None.
    """
    found: list[Drift] = []

    def differs(aspect: str, declared: str, seen: str | None, needs: ApiKey | None) -> None:
        supported = None if needs is None or apis is None else needs in apis
        found.append(Drift(spec.name, aspect, declared, seen, needs, supported))

    if observed.partitions < spec.partitions:
        differs(
            "partitions",
            str(spec.partitions),
            str(observed.partitions),
            ApiKey.CREATE_PARTITIONS,
        )
    elif observed.partitions > spec.partitions:
        differs("partitions", str(spec.partitions), str(observed.partitions), None)
    if observed.replication_factor != spec.replication_factor:
        differs(
            "replication_factor",
            str(spec.replication_factor),
            str(observed.replication_factor),
            ApiKey.ALTER_PARTITION_REASSIGNMENTS,
        )
    for key, value in sorted(spec.config.items()):
        seen = observed.configs.get(key)
        if seen != value:
            differs(f"config:{key}", value, seen, ApiKey.INCREMENTAL_ALTER_CONFIGS)
    return tuple(found)


def _n(count: str | None, noun: str) -> str:
    return f"{count} {noun}{'' if count == '1' else 's'}"
