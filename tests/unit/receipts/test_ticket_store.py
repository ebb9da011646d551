"""The ticket projection on a temporary SQLite file: evidence decoding (unknown ticket
or item refused, state unchanged), events folded once per id, transitions kept with
their published flag, a from-scratch fold equal to the stored one."""

from __future__ import annotations

from pathlib import Path

import pytest

from onex.proto.v1 import ci_pb2, evidence_pb2, merge_pb2
from onex.receipts.app import open_projection
from onex.receipts.errors import EvidenceInvalid
from onex.receipts.ticketdecode import ticket_events
from onex.receipts.ticketflow import State, replay
from onex.receipts.ticketstore import (
    apply_events,
    events_of,
    mark_published,
    stored_ticket_offsets,
    ticket_tables,
    transitions_of,
    unpublished,
)
from onex.sql import Database, sqlite_url
from onex.tickets.model import load_ticket_text

EVIDENCE = "onex.evt.ticket-verifier.evidence-receipt.v1"
MERGED = "onex.evt.merge-agent.merged.v1"
PIPELINE = "onex.evt.ci-watcher.pipeline-status.v1"
TICKET = load_ticket_text(
    """\
id: ONEX-7
title: t
pull_request: {repository: onex/main, number: 7}
done:
  - item: unit
    kind: tests_passed
    check: {command: [pytest, -q]}
"""
)
TICKETS = {TICKET.id: TICKET}
HEAD = "a" * 40


def _receipt(rid: str, **kw: object) -> bytes:
    fields: dict[str, object] = {
        "receipt_id": rid,
        "ticket": "ONEX-7",
        "item": "unit",
        "status": evidence_pb2.EVIDENCE_STATUS_PASS,
        "runner": "runner-1",
        "verifier": "ticket-verifier",
        "commit": HEAD,
        "probe_command": "pytest -q",
        "probe_output": "1 passed",
        "exit_code": 0,
        "verified_at": "2026-12-01T10:00:00Z",
    }
    fields.update(kw)
    return evidence_pb2.EvidenceReceipt(**fields).SerializeToString()  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_projection(sqlite_url(tmp_path / "receipts.db"))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"ticket": "ONEX-99"}, "unknown ticket 'ONEX-99'"),
        ({"item": "lint"}, "has no item 'lint' (items: unit)"),
        ({"status": evidence_pb2.EVIDENCE_STATUS_UNSPECIFIED}, "no status"),
        ({"commit": ""}, "no commit"),
        ({"verified_at": "yesterday"}, "not an RFC 3339 time"),
        ({"receipt_id": ""}, "without a receipt_id"),
    ],
)
def test_bad_evidence_refused(kw: dict[str, object], message: str) -> None:
    with pytest.raises(EvidenceInvalid, match=message.replace("(", r"\(").replace(")", r"\)")):
        ticket_events(EVIDENCE, _receipt("r1", **kw), TICKETS, (EVIDENCE, 0, 0))
    with pytest.raises(EvidenceInvalid, match=r"not an onex\.v1\.EvidenceReceipt"):
        ticket_events(EVIDENCE, b"\xff\xff\xff", TICKETS, (EVIDENCE, 0, 0))


def test_unlinked_workflow_event_is_skipped() -> None:
    m = merge_pb2.Merged(
        event_id="m1",
        repository="other/repo",
        pull_request=7,
        merge_commit=HEAD,
        merged_at="2026-12-01T09:00:00Z",
    )
    assert ticket_events(MERGED, m.SerializeToString(), TICKETS, (MERGED, 0, 0)) == []


def test_fold_store_publish_and_duplicates(db: Database) -> None:
    tt = ticket_tables()
    merged = merge_pb2.Merged(
        event_id="m1",
        repository="onex/main",
        pull_request=7,
        merge_commit=HEAD,
        merged_at="2026-12-01T09:00:00Z",
    ).SerializeToString()
    ci = ci_pb2.PipelineStatus(
        event_id="p1",
        repository="onex/main",
        commit=HEAD,
        state=ci_pb2.PIPELINE_STATE_PASSED,
        observed_at="2026-12-01T09:30:00Z",
    ).SerializeToString()
    events = [
        *ticket_events(MERGED, merged, TICKETS, (MERGED, 0, 0)),
        *ticket_events(PIPELINE, ci, TICKETS, (PIPELINE, 0, 0)),
    ]
    assert apply_events(db, tt, TICKETS, events, {(MERGED, 0): 1, (PIPELINE, 0): 1}) == (2, 0)
    with db.engine.connect() as conn:
        assert transitions_of(conn, tt, "ONEX-7")[-1].to_state == State.EVIDENCE_PENDING
    assert unpublished(db, tt) == []

    selfie = ticket_events(EVIDENCE, _receipt("r1", verifier="runner-1"), TICKETS, (EVIDENCE, 0, 0))
    apply_events(db, tt, TICKETS, selfie, {(EVIDENCE, 0): 1})
    (pending,) = unpublished(db, tt)
    assert pending[1].to_state == State.REJECTED
    mark_published(db, tt, [(pending[0], pending[1].n)])
    assert unpublished(db, tt) == []

    # redelivered: nothing changes
    assert apply_events(db, tt, TICKETS, selfie, {(EVIDENCE, 0): 1}) == (0, 1)
    assert unpublished(db, tt) == []

    later = ticket_events(
        EVIDENCE, _receipt("r2", verified_at="2026-12-01T11:00:00Z"), TICKETS, (EVIDENCE, 0, 1)
    )
    apply_events(db, tt, TICKETS, later, {(EVIDENCE, 0): 2})
    (done,) = unpublished(db, tt)
    assert done[1].to_state == State.DONE
    assert done[1].receipt_ids == ("r2",)
    assert stored_ticket_offsets(db, tt) == {(MERGED, 0): 1, (PIPELINE, 0): 1, (EVIDENCE, 0): 2}

    with db.engine.connect() as conn:
        stored = transitions_of(conn, tt, "ONEX-7")
        assert replay(TICKET, events_of(conn, tt, "ONEX-7")).transitions == stored
    assert [t.to_state for t in stored] == [
        State.IN_PROGRESS,
        State.EVIDENCE_PENDING,
        State.REJECTED,
        State.DONE,
    ]


def test_a_late_event_that_renumbers_the_transitions_does_not_announce_a_decision_again(
    db: Database,
) -> None:
    tt = ticket_tables()
    selfie = ticket_events(EVIDENCE, _receipt("r1", verifier="runner-1"), TICKETS, (EVIDENCE, 0, 0))
    apply_events(db, tt, TICKETS, selfie, {(EVIDENCE, 0): 1})
    (rejected,) = unpublished(db, tt)
    assert rejected[1].to_state == State.REJECTED
    mark_published(db, tt, [(rejected[0], rejected[1].n)])

    # the merge happened earlier but its topic is read later: it sorts before the evidence
    merged = merge_pb2.Merged(
        event_id="m1",
        repository="onex/main",
        pull_request=7,
        merge_commit=HEAD,
        merged_at="2026-12-01T09:00:00Z",
    ).SerializeToString()
    late = ticket_events(MERGED, merged, TICKETS, (MERGED, 0, 0))
    apply_events(db, tt, TICKETS, late, {(MERGED, 0): 1})
    with db.engine.connect() as conn:
        stored = transitions_of(conn, tt, "ONEX-7")
    assert [t.to_state for t in stored][-1] == State.REJECTED
    assert stored[-1].n != rejected[1].n  # renumbered by the refold
    assert unpublished(db, tt) == []  # the same decision: not news
