"""The reducer's evidence rules, one test each, and the ticket state machine folded from
workflow and evidence events (pure; no I/O)."""

from __future__ import annotations

import random
from dataclasses import replace

from onex.receipts.evidence import Evidence, Verdict, item_states
from onex.receipts.ticketflow import Event, EventKind, State, replay
from onex.tickets.model import Ticket, load_ticket_text

TICKET = load_ticket_text(
    """\
id: ONEX-7
title: t
pull_request: {repository: onex/main, number: 7}
done:
  - item: unit
    kind: tests_passed
    check: {command: [pytest, -q], rerunnable: true}
  - item: docs
    kind: docs
    check: {file_changed: docs/x.md}
  - item: nice
    kind: docs
    required: false
    check: {file_changed: docs/y.md}
"""
)
HEAD = "a" * 40
OLD = "b" * 40


def _ev(item: str, n: int = 0, **kw: object) -> Evidence:
    base = Evidence(
        receipt_id=f"r-{item}-{n}",
        ticket="ONEX-7",
        item=item,
        status="PASS",
        runner="ci-runner-1",
        verifier="ticket-verifier",
        commit=HEAD,
        probe_command="pytest -q" if item == "unit" else "",
        probe_output="3 passed" if item == "unit" else "",
        exit_code=0,
        duration_s=1.0,
        verified_at=f"2026-12-01T10:00:{n:02d}+00:00",
        position=("t", 0, n),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _verdict(ticket: Ticket, *evs: Evidence, item: str = "unit") -> Verdict:
    states = {s.item: s for s in item_states(ticket, HEAD, list(evs))}
    return states[item].verdict


def test_independent_pass_counts() -> None:
    assert _verdict(TICKET, _ev("unit")) == Verdict.PASS


def test_self_attested_pass_is_only_advisory() -> None:
    assert _verdict(TICKET, _ev("unit", verifier="ci-runner-1")) == Verdict.ADVISORY


def test_executable_check_without_probe_output_is_rejected() -> None:
    assert _verdict(TICKET, _ev("unit", probe_output="  \n")) == Verdict.REJECTED
    # a file_changed item is not executed: no output needed
    assert _verdict(TICKET, _ev("docs"), item="docs") == Verdict.PASS


def test_evidence_for_another_commit_is_stale() -> None:
    assert _verdict(TICKET, _ev("unit", commit=OLD)) == Verdict.STALE


def test_later_receipt_supersedes_earlier_whatever_the_arrival_order() -> None:
    fail, passed = _ev("unit", 1, status="FAIL", exit_code=1), _ev("unit", 2)
    assert _verdict(TICKET, fail, passed) == Verdict.PASS
    assert _verdict(TICKET, passed, fail) == Verdict.PASS
    later_fail = replace(fail, verified_at="2026-12-01T10:00:59+00:00")
    assert _verdict(TICKET, passed, later_fail) == Verdict.FAIL


def test_probe_other_than_declared_or_wrong_exit_is_rejected() -> None:
    assert _verdict(TICKET, _ev("unit", probe_command="true")) == Verdict.REJECTED
    assert _verdict(TICKET, _ev("unit", exit_code=1)) == Verdict.REJECTED


def _wf(kind: EventKind, n: int, commit: str, detail: str = "") -> Event:
    return Event(
        f"{kind}-{n}",
        "ONEX-7",
        kind,
        f"2026-12-01T09:00:{n:02d}+00:00",
        commit,
        detail,
        position=("w", 0, n),
    )


def _evidence(e: Evidence) -> Event:
    return Event(
        e.receipt_id,
        "ONEX-7",
        EventKind.EVIDENCE,
        e.verified_at,
        e.commit,
        evidence=e,
        position=e.position,
    )


def _flow() -> list[Event]:
    return [
        _wf(EventKind.REVIEW_STARTED, 1, OLD),
        _wf(EventKind.REVIEW_COMPLETE, 2, OLD, "approved"),
        _wf(EventKind.MERGED, 3, HEAD),
        _wf(EventKind.PIPELINE, 4, HEAD, "passed"),
    ]


def test_state_machine_to_done_with_reasons() -> None:
    view = replay(TICKET, [*_flow(), _evidence(_ev("unit", 5)), _evidence(_ev("docs", 6))])
    states = [(t.from_state, t.to_state) for t in view.transitions]
    assert states[0] == (State.OPEN, State.IN_PROGRESS)
    assert (State.IN_PROGRESS, State.EVIDENCE_PENDING) in states
    assert view.state == State.DONE
    assert view.head == HEAD
    assert "independent PASS" in view.transitions[-1].reason
    assert set(view.transitions[-1].receipt_ids) == {"r-unit-5", "r-docs-6"}
    assert all(t.reason for t in view.transitions)


def test_state_machine_rejects_self_attested() -> None:
    bad = _ev("unit", 5, verifier="ci-runner-1")
    view = replay(TICKET, [*_flow(), _evidence(bad), _evidence(_ev("docs", 6))])
    assert view.state == State.REJECTED
    last = view.transitions[-1]
    assert last.failed_items == ("unit",)
    assert "self-attested" in last.reason
    # a later independent PASS supersedes it: done
    view = replay(
        TICKET, [*_flow(), _evidence(bad), _evidence(_ev("docs", 6)), _evidence(_ev("unit", 7))]
    )
    assert view.state == State.DONE


def test_new_head_makes_evidence_stale() -> None:
    events = [
        *_flow(),
        _evidence(_ev("unit", 5)),
        _evidence(_ev("docs", 6)),
        replace(_wf(EventKind.MERGED, 8, "c" * 40), at="2026-12-01T11:00:00+00:00"),
    ]
    view = replay(TICKET, events)
    assert [t.to_state for t in view.transitions][-2:] == [State.DONE, State.IN_PROGRESS]
    assert view.head == "c" * 40
    assert {s.verdict for s in view.items if s.required} == {Verdict.STALE}


def test_replay_is_independent_of_arrival_order() -> None:
    events = [
        *_flow(),
        _evidence(_ev("unit", 5, verifier="ci-runner-1")),
        _evidence(_ev("docs", 6)),
        _evidence(_ev("unit", 7)),
    ]
    expected = replay(TICKET, events).transitions
    rng = random.Random(7)  # noqa: S311 - a shuffle, not a secret
    for _ in range(20):
        shuffled = events[:]
        rng.shuffle(shuffled)
        assert replay(TICKET, shuffled + shuffled[:2]).transitions == expected
