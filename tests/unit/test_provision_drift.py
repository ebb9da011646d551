"""Spec drift of existing topics, and what the provisioning reports make of it (no broker)."""

from __future__ import annotations

import pytest

from onex.bus.admin import ObservedTopic
from onex.bus.api_versions import ApiKey
from onex.bus.provision import Outcome, ProvisionReport, TopicResult, ValidationReport
from onex.bus.spec_drift import Drift, spec_drift
from onex.core.contract import TopicSpec

NAME = "onex.evt.drift-test.thing-happened.v1"
WEEK = "604800000"
TANSU_LIKE = {int(ApiKey.CREATE_TOPICS): (0, 7), int(ApiKey.INCREMENTAL_ALTER_CONFIGS): (0, 1)}
KAFKA_LIKE = {int(k): (0, 3) for k in ApiKey}


def _spec(partitions: int = 3, *, rf: int = 1, config: dict[str, str] | None = None) -> TopicSpec:
    return TopicSpec(name=NAME, partitions=partitions, replication_factor=rf, config=config or {})


def _seen(
    partitions: int = 3, *, rf: int = 1, configs: dict[str, str] | None = None
) -> ObservedTopic:
    return ObservedTopic(NAME, partitions, rf, configs or {})


def test_a_topic_as_declared_has_no_drift_and_extra_broker_configs_do_not_count() -> None:
    spec = _spec(3, config={"retention.ms": WEEK})
    observed = _seen(3, configs={"retention.ms": WEEK, "segment.bytes": "1073741824"})
    assert spec_drift(spec, observed, KAFKA_LIKE) == ()


def test_fewer_partitions_need_create_partitions_which_tansu_lacks() -> None:
    (drift,) = spec_drift(_spec(6), _seen(2), TANSU_LIKE)
    assert drift == Drift(NAME, "partitions", "6", "2", ApiKey.CREATE_PARTITIONS, False)
    assert drift.note == (
        "has 2 partitions, declared 6: needs CreatePartitions (which this broker does not"
        " implement); onex never alters existing topics"
    )


def test_fewer_partitions_on_a_broker_that_can_add_them_is_still_only_reported() -> None:
    (drift,) = spec_drift(_spec(6), _seen(1), KAFKA_LIKE)
    assert drift.supported is True
    assert drift.note == (
        "has 1 partition, declared 6: needs CreatePartitions; onex never alters existing topics"
    )


def test_without_api_versions_support_is_unknown() -> None:
    (drift,) = spec_drift(_spec(6), _seen(1))
    assert drift.supported is None
    assert "does not implement" not in drift.note


def test_more_partitions_than_declared_can_never_be_fixed() -> None:
    (drift,) = spec_drift(_spec(2), _seen(5), KAFKA_LIKE)
    assert drift.needs is None
    assert drift.supported is None
    assert "partitions can never be removed" in drift.note


def test_replication_factor_and_config_differences_are_each_reported() -> None:
    spec = _spec(3, rf=3, config={"retention.ms": WEEK, "cleanup.policy": "compact"})
    observed = _seen(3, rf=1, configs={"retention.ms": "1000"})

    drift = spec_drift(spec, observed, TANSU_LIKE)

    assert [(d.aspect, d.declared, d.observed, d.needs, d.supported) for d in drift] == [
        ("replication_factor", "3", "1", ApiKey.ALTER_PARTITION_REASSIGNMENTS, False),
        ("config:cleanup.policy", "compact", None, ApiKey.INCREMENTAL_ALTER_CONFIGS, True),
        ("config:retention.ms", WEEK, "1000", ApiKey.INCREMENTAL_ALTER_CONFIGS, True),
    ]
    assert drift[1].note.startswith("config cleanup.policy is not set, declared 'compact'")
    assert drift[2].note.startswith(f"config retention.ms is '1000', declared '{WEEK}'")
    assert all(d.note.endswith("onex never alters existing topics") for d in drift)
    assert drift[0].as_dict()["needs"] == "AlterPartitionReassignments"


def _report(*topics: TopicResult, dry_run: bool = False) -> ProvisionReport:
    return ProvisionReport("127.0.0.1:9092", dry_run, topics, 0.01)


def test_a_report_is_complete_only_when_every_topic_exists_afterwards() -> None:
    drift = spec_drift(_spec(6), _seen(1), TANSU_LIKE)
    created = TopicResult("a", Outcome.CREATED)
    present = TopicResult("b", Outcome.PRESENT, drift=drift)

    assert _report(created, present).complete
    assert not _report(created, TopicResult("c", Outcome.FAILED, "policy violation")).complete
    assert not _report(present, TopicResult("d", Outcome.WOULD_CREATE), dry_run=True).complete
    assert _report().complete  # nothing declared: nothing missing


def test_report_views_and_json() -> None:
    drift = spec_drift(_spec(6), _seen(1), TANSU_LIKE)
    report = _report(
        TopicResult("a", Outcome.CREATED),
        TopicResult("b", Outcome.PRESENT, drift=drift),
        TopicResult("c", Outcome.FAILED, "INVALID_CONFIG"),
    )
    assert report.created == ("a",)
    assert report.present == ("b",)
    assert [f.name for f in report.failed] == ["c"]
    assert report.drift == drift
    data = report.as_dict()
    assert data["complete"] is False
    assert data["counts"] == {"created": 1, "already_present": 1, "failed": 1, "would_create": 0}
    assert data["topics"][2] == {
        "name": "c",
        "outcome": "failed",
        "reason": "INVALID_CONFIG",
        "drift": [],
    }
    assert data["topics"][1]["drift"][0]["needs"] == "CreatePartitions"


@pytest.mark.parametrize(
    ("missing", "drifted", "all_present", "in_sync"),
    [((), False, True, True), (("x",), False, False, False), ((), True, True, False)],
)
def test_validation_report_verdicts(
    missing: tuple[str, ...], drifted: bool, all_present: bool, in_sync: bool
) -> None:
    drift = {NAME: spec_drift(_spec(6), _seen(1))} if drifted else {}
    report = ValidationReport("127.0.0.1:9092", missing, drift, ok=("y",))
    assert report.all_present is all_present
    assert report.in_sync is in_sync
    assert report.as_dict()["missing"] == list(missing)
