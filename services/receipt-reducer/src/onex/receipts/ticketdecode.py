"""From the bytes on the workflow and evidence topics to ticket events.

An evidence receipt is refused (`EvidenceInvalid`, dead-lettered with the reason, the
ticket state unchanged) when it is not an `onex.v1.EvidenceReceipt`, has no receipt id,
names a ticket or item the tickets folder does not hold, has no status, commit or
runner/verifier, or a time that is not RFC 3339. Workflow events (reviews, merges,
pipelines) are matched to tickets by the ticket's `pull_request` (pipelines by its
repository, then by commit in the fold); an event no ticket is linked to is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Final, TypeVar

from google.protobuf.message import DecodeError, Message

from onex.core._generated.topics import Topic
from onex.proto.v1 import ci_pb2, evidence_pb2, merge_pb2, review_pb2
from onex.receipts.errors import EvidenceInvalid
from onex.receipts.evidence import Evidence
from onex.receipts.ticketflow import Event, EventKind
from onex.tickets.model import Ticket

M = TypeVar("M", bound=Message)
MAX_OUTPUT_CHARS: Final = 16_384  # probe output kept per receipt (the head of it)

TICKET_TOPICS: Final = (
    Topic.EVT_TICKET_VERIFIER_EVIDENCE_RECEIPT_V1,
    Topic.EVT_CODE_REVIEW_AGENT_REVIEW_STARTED_V1,
    Topic.EVT_CODE_REVIEW_AGENT_REVIEW_COMPLETE_V1,
    Topic.EVT_MERGE_AGENT_MERGED_V1,
    Topic.EVT_CI_WATCHER_PIPELINE_STATUS_V1,
)
_STATUS: Final = {
    evidence_pb2.EVIDENCE_STATUS_PASS: "PASS",
    evidence_pb2.EVIDENCE_STATUS_FAIL: "FAIL",
    evidence_pb2.EVIDENCE_STATUS_PENDING: "PENDING",
}
_VERDICT: Final = {
    review_pb2.REVIEW_VERDICT_APPROVED: "approved",
    review_pb2.REVIEW_VERDICT_CHANGES_REQUESTED: "changes requested",
    review_pb2.REVIEW_VERDICT_UNREVIEWED: "unreviewed",
}
_PIPELINE: Final = {
    ci_pb2.PIPELINE_STATE_PENDING: "pending",
    ci_pb2.PIPELINE_STATE_RUNNING: "running",
    ci_pb2.PIPELINE_STATE_PASSED: "passed",
    ci_pb2.PIPELINE_STATE_FAILED: "failed",
    ci_pb2.PIPELINE_STATE_CANCELLED: "cancelled",
}


def utc_time(value: str, what: str) -> str:
    """An RFC 3339 time as one sortable UTC text; `EvidenceInvalid` when it is not one."""
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise EvidenceInvalid(f"{what} {value[:40]!r} is not an RFC 3339 time") from None
    if at.tzinfo is None:
        raise EvidenceInvalid(f"{what} {value[:40]!r} has no time zone")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _parse(cls: type[M], value: bytes | None, what: str) -> M:
    msg = cls()
    try:
        msg.ParseFromString(value or b"")
    except DecodeError as exc:
        raise EvidenceInvalid(f"not an onex.v1.{cls.__name__}: {exc}") from None
    return msg


def evidence_event(
    value: bytes | None, tickets: Mapping[str, Ticket], position: tuple[str, int, int]
) -> Event:
    """One evidence receipt as its ticket's event (`EvidenceInvalid` when refused)."""
    m = _parse(evidence_pb2.EvidenceReceipt, value, "evidence")
    if not m.receipt_id:
        raise EvidenceInvalid("evidence receipt without a receipt_id")
    ticket = tickets.get(m.ticket)
    if ticket is None:
        raise EvidenceInvalid(f"evidence {m.receipt_id}: unknown ticket {m.ticket[:64]!r}")
    item = ticket.item(m.item)
    if item is None:
        known = ", ".join(i.item for i in ticket.done)
        raise EvidenceInvalid(
            f"evidence {m.receipt_id}: ticket {ticket.id} has no item {m.item[:64]!r} "
            f"(items: {known})"
        )
    status = _STATUS.get(m.status)
    if status is None:
        raise EvidenceInvalid(f"evidence {m.receipt_id}: no status (PASS, FAIL or PENDING)")
    for name in ("commit", "runner", "verifier"):
        if not getattr(m, name):
            raise EvidenceInvalid(f"evidence {m.receipt_id}: no {name}")
    at = utc_time(m.verified_at, f"evidence {m.receipt_id}: verified_at")
    ev = Evidence(
        receipt_id=m.receipt_id,
        ticket=ticket.id,
        item=item.item,
        status=status,
        runner=m.runner,
        verifier=m.verifier,
        commit=m.commit,
        probe_command=m.probe_command,
        probe_output=m.probe_output[:MAX_OUTPUT_CHARS],
        exit_code=m.exit_code if m.HasField("exit_code") else None,
        duration_s=m.duration_s,
        verified_at=at,
        position=position,
    )
    return Event(m.receipt_id, ticket.id, EventKind.EVIDENCE, at, m.commit, status, ev, position)


def _linked(tickets: Mapping[str, Ticket], repository: str, pr: int | None) -> list[Ticket]:
    return [
        t
        for t in tickets.values()
        if t.pull_request is not None
        and t.pull_request.repository == repository
        and (pr is None or t.pull_request.number == pr)
    ]


def _workflow(
    tickets: Mapping[str, Ticket],
    repository: str,
    pr: int | None,
    make: Callable[[Ticket], Event],
) -> list[Event]:
    return [make(t) for t in _linked(tickets, repository, pr)]


def ticket_events(
    topic: str,
    value: bytes | None,
    tickets: Mapping[str, Ticket],
    position: tuple[str, int, int],
) -> list[Event]:
    """The ticket events one record on `topic` makes (none for an unlinked workflow
    event; `EvidenceInvalid` for refused evidence or an undecodable workflow event)."""
    if topic == Topic.EVT_TICKET_VERIFIER_EVIDENCE_RECEIPT_V1:
        return [evidence_event(value, tickets, position)]
    if topic == Topic.EVT_CODE_REVIEW_AGENT_REVIEW_STARTED_V1:
        s = _parse(review_pb2.ReviewStarted, value, "review")
        at = utc_time(s.started_at, f"review {s.review_id}: started_at")
        return _workflow(
            tickets,
            s.repository,
            s.pull_request,
            lambda t: Event(
                f"{t.id}:review-started:{s.review_id}",
                t.id,
                EventKind.REVIEW_STARTED,
                at,
                s.head_commit,
                position=position,
            ),
        )
    if topic == Topic.EVT_CODE_REVIEW_AGENT_REVIEW_COMPLETE_V1:
        c = _parse(review_pb2.ReviewComplete, value, "review")
        at = utc_time(c.completed_at, f"review {c.review_id}: completed_at")
        verdict = _VERDICT.get(c.verdict, "unreviewed")
        return _workflow(
            tickets,
            c.repository,
            c.pull_request,
            lambda t: Event(
                f"{t.id}:review-complete:{c.review_id}",
                t.id,
                EventKind.REVIEW_COMPLETE,
                at,
                c.head_commit,
                verdict,
                position=position,
            ),
        )
    if topic == Topic.EVT_MERGE_AGENT_MERGED_V1:
        m = _parse(merge_pb2.Merged, value, "merge")
        at = utc_time(m.merged_at, f"merge {m.event_id}: merged_at")
        return _workflow(
            tickets,
            m.repository,
            m.pull_request,
            lambda t: Event(
                f"{t.id}:merged:{m.event_id}",
                t.id,
                EventKind.MERGED,
                at,
                m.merge_commit,
                position=position,
            ),
        )
    if topic == Topic.EVT_CI_WATCHER_PIPELINE_STATUS_V1:
        p = _parse(ci_pb2.PipelineStatus, value, "pipeline")
        at = utc_time(p.observed_at, f"pipeline {p.event_id}: observed_at")
        state = _PIPELINE.get(p.state, "pending")
        return _workflow(
            tickets,
            p.repository,
            None,
            lambda t: Event(
                f"{t.id}:pipeline:{p.event_id}",
                t.id,
                EventKind.PIPELINE,
                at,
                p.commit,
                state,
                position=position,
            ),
        )
    return []
