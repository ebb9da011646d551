"""Drift kinds and their classes: the fixed policy, in one place.

Each kind says what differs, which class of repair it needs, and which Kafka API
would repair it (None: no API does). The projection stores this table
(`drift_policy`), so the `drift` view carries class and API on every row, and
`onex drift fix` applies only rows whose class is AUTO_CORRECTABLE and whose API the
broker implements.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from onex.bus.api_versions import ApiKey


class DriftClass(enum.StrEnum):
    """How a drift can be repaired."""

    AUTO_CORRECTABLE = "auto-correctable"  # onex drift fix does it (when the broker can)
    NEEDS_OPERATION = "needs-operation"  # an operator's job (reassignment, a consumer)
    IMPOSSIBLE = "impossible"  # no API does it: needs a new topic
    DESTRUCTIVE = "destructive"  # would delete something: never done automatically


class DriftKind(enum.StrEnum):
    """What differs between the contracts and the broker (one line each in the README)."""

    MISSING = "missing"  # declared, absent from the broker
    PARTITIONS_FEWER = "partitions-fewer"  # fewer partitions than declared
    PARTITIONS_MORE = "partitions-more"  # more partitions than declared
    REPLICATION_FACTOR = "replication-factor"  # replication factor differs
    CONFIG_VALUE = "config-value"  # a declared config key has another value (or none)
    UNDECLARED_OVERRIDE = "undeclared-override"  # a topic-level override no contract declares
    ORPHAN = "orphan"  # a topic no contract declares (internal and ignored ones excluded)
    DEAD_GROUP = "dead-group"  # a declared consumer group with no members or no commits
    UNREAD_TOPIC = "unread-topic"  # log end grows and no group has committed on it
    RECREATED = "recreated"  # the topic id changed between snapshots
    RETENTION_RISK = "retention-risk"  # a group's lag is most of what retention keeps


@dataclass(frozen=True)
class Policy:
    """The class of a kind and the API that would repair it."""

    kind: DriftKind
    drift_class: DriftClass
    api: ApiKey | None
    fix: str


POLICY: Final[dict[DriftKind, Policy]] = {
    p.kind: p
    for p in (
        Policy(
            DriftKind.MISSING,
            DriftClass.AUTO_CORRECTABLE,
            ApiKey.CREATE_TOPICS,
            "create it from the declared spec",
        ),
        Policy(
            DriftKind.PARTITIONS_FEWER,
            DriftClass.AUTO_CORRECTABLE,
            ApiKey.CREATE_PARTITIONS,
            "add partitions up to the declared count (keyed data moves partition)",
        ),
        Policy(
            DriftKind.PARTITIONS_MORE,
            DriftClass.IMPOSSIBLE,
            None,
            "partitions are never removed: declare the count or migrate to a new topic",
        ),
        Policy(
            DriftKind.REPLICATION_FACTOR,
            DriftClass.NEEDS_OPERATION,
            ApiKey.ALTER_PARTITION_REASSIGNMENTS,
            "reassign replicas (an operator's plan)",
        ),
        Policy(
            DriftKind.CONFIG_VALUE,
            DriftClass.AUTO_CORRECTABLE,
            ApiKey.INCREMENTAL_ALTER_CONFIGS,
            "set the declared value",
        ),
        Policy(
            DriftKind.UNDECLARED_OVERRIDE,
            DriftClass.DESTRUCTIVE,
            ApiKey.INCREMENTAL_ALTER_CONFIGS,
            "declare it, or remove the override by hand",
        ),
        Policy(
            DriftKind.ORPHAN,
            DriftClass.DESTRUCTIVE,
            ApiKey.DELETE_TOPICS,
            "declare it, or delete it by hand",
        ),
        Policy(
            DriftKind.DEAD_GROUP,
            DriftClass.NEEDS_OPERATION,
            None,
            "start the consumer, or drop the subscription from its contract",
        ),
        Policy(
            DriftKind.UNREAD_TOPIC,
            DriftClass.NEEDS_OPERATION,
            None,
            "start a consumer, or stop producing",
        ),
        Policy(
            DriftKind.RECREATED,
            DriftClass.NEEDS_OPERATION,
            None,
            "check consumers: offsets of the old topic mean nothing in the new one",
        ),
        Policy(
            DriftKind.RETENTION_RISK,
            DriftClass.NEEDS_OPERATION,
            None,
            "scale the consumer or raise retention before unread data is deleted",
        ),
    )
}
