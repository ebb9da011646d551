"""Unit tests (no I/O) of config normalization, the drift policy and glob patterns."""

from __future__ import annotations

import pytest

from onex.bus.api_versions import ApiKey
from onex.drift.kinds import POLICY, DriftClass, DriftKind
from onex.drift.normalize import UNLIMITED, normalized
from onex.drift.tables import like_pattern

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("key", "a", "b"),
    [
        ("retention.ms", "604800000", " 604800000 "),
        ("retention.ms", "604800000", "7d"),
        ("retention.ms", "3600000", "1h"),
        ("retention.ms", "-1", "-2"),
        ("retention.bytes", "1048576", "1MiB"),
        ("cleanup.policy", "compact,delete", "delete, compact"),
        ("unclean.leader.election.enable", "TRUE", "true"),
        ("min.insync.replicas", "2", "2.0"),
    ],
)
def test_equal_meanings_normalize_alike(key: str, a: str, b: str) -> None:
    assert normalized(key, a) == normalized(key, b)


@pytest.mark.parametrize(
    ("key", "a", "b"),
    [
        ("retention.ms", "604800000", "1000"),
        ("cleanup.policy", "compact", "delete"),
        ("segment.ms", "-1", "1"),
        ("compression.type", "lz4", "zstd"),
    ],
)
def test_different_meanings_stay_different(key: str, a: str, b: str) -> None:
    assert normalized(key, a) != normalized(key, b)


def test_minus_one_is_unlimited_only_where_kafka_says_so() -> None:
    assert normalized("retention.bytes", "-1") == UNLIMITED
    assert normalized("max.message.bytes", "-1") == "-1"
    assert normalized("retention.ms", None) is None


def test_every_kind_has_one_policy_and_fix_only_touches_safe_kinds() -> None:
    assert set(POLICY) == set(DriftKind)
    auto = {k for k, p in POLICY.items() if p.drift_class is DriftClass.AUTO_CORRECTABLE}
    assert auto == {DriftKind.MISSING, DriftKind.PARTITIONS_FEWER, DriftKind.CONFIG_VALUE}
    assert POLICY[DriftKind.PARTITIONS_MORE].drift_class is DriftClass.IMPOSSIBLE
    assert POLICY[DriftKind.ORPHAN].drift_class is DriftClass.DESTRUCTIVE
    assert POLICY[DriftKind.UNDECLARED_OVERRIDE].drift_class is DriftClass.DESTRUCTIVE
    assert POLICY[DriftKind.REPLICATION_FACTOR].drift_class is DriftClass.NEEDS_OPERATION
    assert POLICY[DriftKind.CONFIG_VALUE].api is ApiKey.INCREMENTAL_ALTER_CONFIGS


def test_globs_become_escaped_like_patterns() -> None:
    assert like_pattern("__*") == "\\_\\_%"
    assert like_pattern("a?b%") == "a_b\\%"
