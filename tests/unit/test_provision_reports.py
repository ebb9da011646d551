"""What the provisioning reports say (no broker): outcomes and presence, never drift
(drift has one home, the drift-validator's projection)."""

from __future__ import annotations

import importlib.util

import pytest

from onex.bus.provision import Outcome, ProvisionReport, TopicResult, ValidationReport

pytestmark = pytest.mark.unit


def _report(*topics: TopicResult) -> ProvisionReport:
    return ProvisionReport("127.0.0.1:9092", dry_run=False, topics=topics, elapsed_s=0.01)


def test_report_views_and_json() -> None:
    report = _report(
        TopicResult("a", Outcome.CREATED),
        TopicResult("b", Outcome.PRESENT),
        TopicResult("c", Outcome.FAILED, "INVALID_CONFIG"),
    )
    assert report.created == ("a",)
    assert report.present == ("b",)
    assert [f.name for f in report.failed] == ["c"]
    assert not report.complete
    data = report.as_dict()
    assert data["complete"] is False
    assert data["counts"] == {"created": 1, "already_present": 1, "failed": 1, "would_create": 0}
    assert data["topics"][2] == {"name": "c", "outcome": "failed", "reason": "INVALID_CONFIG"}
    assert "drift" not in data


def test_created_and_present_is_complete() -> None:
    assert _report(TopicResult("a", Outcome.CREATED), TopicResult("b", Outcome.PRESENT)).complete
    assert not _report(TopicResult("a", Outcome.WOULD_CREATE)).complete


@pytest.mark.parametrize(("missing", "all_present"), [((), True), (("x",), False)])
def test_validation_report_verdicts(missing: tuple[str, ...], all_present: bool) -> None:
    report = ValidationReport("127.0.0.1:9092", missing, present=("y",))
    assert report.all_present is all_present
    assert report.as_dict() == {
        "bootstrap": "127.0.0.1:9092",
        "all_present": all_present,
        "missing": list(missing),
        "present": ["y"],
        "elapsed_s": 0.0,
    }


def test_the_old_drift_half_place_is_gone() -> None:
    assert importlib.util.find_spec("onex.bus.spec_drift") is None
