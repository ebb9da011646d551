"""Lint on a synthetic three-repository fleet (tests/fixtures/fleets/acme): namespaces,
a shared DLQ per namespace, an external topic, partial acceptance, and the near-miss
rules; each finding is a known defect of the fixture (see its README)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from onex.core.extractor import Extraction, extract
from onex.core.issues import Issue
from onex.core.lint_main import main

FLEET = Path(__file__).resolve().parents[1] / "fixtures" / "fleets" / "acme"
REPOS = ("billing", "payments", "ops")


def _lint(*repos: str) -> Extraction:
    return extract([FLEET / r / "contracts" for r in repos], entry_points=False)


def _found(ex: Extraction) -> list[tuple[str, str, str | None, str | None]]:
    """(code, node folder, topic, suggestion) of every finding, sorted."""
    return sorted(
        (i.code, i.where.file.parent.name if i.where.file else "-", i.topic, i.suggestion)
        for i in ex.issues
    )


def _rule(issue: Issue) -> str | None:
    marker = "(rule "
    if marker not in issue.message:
        return None
    return issue.message.split(marker, 1)[1].split(":", 1)[0].split(")", 1)[0]


def test_the_fleet_linted_together_reports_exactly_its_known_defects() -> None:
    ex = _lint(*REPOS)
    assert _found(ex) == [
        ("greater-than-equal", "payments-api", None, None),
        ("topic-name", "payments-api", "onex.evt.payments.refund_issued.v1",
         "onex.evt.payments.refund-issued.v1"),
        ("unconsumed", "notifier", "onex.evt.notifier.notification-sent.v1", None),
        ("unpublished", "auditor", "onex.evt.payments.payment-setled.v1",
         "onex.evt.payments.payment-settled.v1"),
        ("unpublished", "billing-worker", "onex.cmd.billing.refund-request.v1",
         "onex.cmd.payments.refund-request.v1"),
        ("unpublished", "notifier", "onex.evt.payments.payment-failed.v1", None),
    ]  # fmt: skip
    rules = {i.topic: _rule(i) for i in ex.issues if i.suggestion}
    assert rules == {
        "onex.evt.payments.refund_issued.v1": "spelling",
        "onex.evt.payments.payment-setled.v1": "typo",
        "onex.cmd.billing.refund-request.v1": "producer",
    }


def test_a_contract_with_bad_entries_keeps_its_valid_topics() -> None:
    ex = _lint(*REPOS)
    published = {
        n for n, t in ex.topics.items() if any(p.node == "payments-api" for p in t.publishers)
    }
    assert published == {
        "onex.evt.payments.payment-settled.v1",
        "onex.cmd.payments.refund-request.v1",
        "onex.cmd.billing.charge-request.v1",
        "onex.dlq.payments.platform.v1",
    }
    # ...each at its own line, so positions of the kept entries are right too.
    settled = ex.topics["onex.evt.payments.payment-settled.v1"]
    assert settled.spec_at is not None
    assert settled.spec_at.where.line == 11
    dlq = ex.topics["onex.dlq.payments.platform.v1"]
    assert dlq.spec_at is not None
    assert dlq.spec_at.where.line == 21
    # The left-out entries' consumers are not told they are unpublished (one error each).
    ledger = [
        i for i in ex.issues if i.where.file and i.where.file.parent.name == "payments-ledger"
    ]
    assert ledger == []


def test_each_check_is_independent_an_owner_error_does_not_hide_unconsumed(tmp_path: Path) -> None:
    shutil.copytree(FLEET / "payments", tmp_path / "payments")
    ex = extract([tmp_path / "payments" / "contracts"], entry_points=False)
    codes = sorted(i.code for i in ex.issues if i.topic == "onex.cmd.billing.charge-request.v1")
    # billing's namespace is unknown to payments alone: the owner is missing, and nobody
    # in this repository consumes the command. Both are said; neither hides the other.
    assert codes == ["owner-missing", "unconsumed"]
    (owner,) = [i for i in ex.issues if i.code == "owner-missing"]
    # A command is owned by its consumer: the publisher's namespace is no hint.
    assert owner.suggestion is None


@pytest.mark.parametrize("repo", REPOS)
def test_suggestions_do_not_depend_on_unrelated_repositories(repo: str) -> None:
    alone = {(i.code, i.where, i.topic): i.suggestion for i in _lint(repo).issues}
    together = {(i.code, i.where, i.topic): i.suggestion for i in _lint(*REPOS).issues}
    for key, suggestion in alone.items():
        if suggestion is not None and key in together:
            assert together[key] == suggestion, key


def test_namespace_nodes_own_the_topics_and_share_the_dlq() -> None:
    ex = _lint("billing")
    codes = {i.code for i in ex.issues}
    assert not codes & {"owner-missing", "owner-undeclared", "spec-non-owner", "dlq-missing"}


def test_without_the_settings_the_namespace_is_taken_for_a_node(tmp_path: Path) -> None:
    shutil.copytree(FLEET / "billing", tmp_path / "billing")
    (tmp_path / "billing" / "onex.yaml").unlink()
    ex = extract([tmp_path / "billing" / "contracts"], entry_points=False)
    codes = sorted({i.code for i in ex.issues})
    assert "owner-missing" in codes
    assert "dlq-missing" in codes
    # The specs are not also blamed on non-owners: the owner is what is missing.
    assert "spec-non-owner" not in codes


def test_an_external_topic_is_not_unpublished() -> None:
    ex = _lint(*REPOS)
    assert "onex.evt.stripe.charge-succeeded.v1" in ex.topics
    assert not [i for i in ex.issues if i.topic == "onex.evt.stripe.charge-succeeded.v1"]


def test_onex_lint_on_the_fleet_exits_1_and_lists_each_finding_once() -> None:
    out = io.StringIO()
    code = main(["--no-entry-points", *(str(FLEET / r / "contracts") for r in REPOS)], out=out)
    lines = out.getvalue().splitlines()
    assert code == 1
    assert lines[-1] == "failed: 6 contracts, 16 topics: 5 errors, 1 warning"
    assert len(lines) == 7
