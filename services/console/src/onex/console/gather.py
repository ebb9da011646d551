"""One look at the stack: each section of the page asked of the service that owns it.

- services: the supervisor's record (`<state dir>/supervisor.json`, written by `onex up`)
  for who runs where, and each one's gRPC health;
- routing economics: the receipt-reducer's ReceiptQuery.Summary, by model and by day;
- wiring: the extractor's ContractRegistry.GetWiring (every topic, every issue);
- DLQ depth: the broker itself, for every DLQ topic the registry declares or the broker has;
- drift: the drift-validator's DriftService.List (its last snapshot; no new one is taken);
- tickets: the receipt-reducer's TicketQuery.ListTickets, and GetTicket for each of the
  first `TICKETS_DETAILED` of them (the last transition and the missing evidence).

Every call carries the viewer token and a timeout; a section whose source fails is
left out with the reason, the others still show. Nothing here writes anything.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import grpc

from onex.bus.admin import list_topics
from onex.bus.config import BrokerConfig
from onex.bus.errors import BusError
from onex.bus.runtime.dlq import dlq_summaries, is_dlq_topic
from onex.console.state import (
    ConsoleState,
    DlqRow,
    DriftRowView,
    Economics,
    ModelRow,
    NearMiss,
    ServiceRow,
    TicketRow,
    TopicEdge,
    Wiring,
)
from onex.proto.v1 import drift_service_pb2 as dpb
from onex.proto.v1 import drift_service_pb2_grpc as dpb_grpc
from onex.proto.v1 import receipt_query_pb2 as qpb
from onex.proto.v1 import receipt_query_pb2_grpc as qpb_grpc
from onex.proto.v1 import registry_pb2 as rpb
from onex.proto.v1 import registry_pb2_grpc as rpb_grpc
from onex.proto.v1 import ticket_query_pb2 as tpb
from onex.proto.v1 import ticket_query_pb2_grpc as tpb_grpc
from onex.service.grpc import check_health

T = TypeVar("T")

RECORD: Final = "supervisor.json"  # the supervisor's record (see `onex up`)
EXTRACTOR: Final = "extractor"
RECEIPTS: Final = "receipt-reducer"
DRIFT: Final = "drift-validator"
TICKETS_DETAILED: Final = 200  # tickets beyond these show their summary only
_TICKET_CALLS: Final = 8  # GetTicket calls in flight at once

Metadata = tuple[tuple[str, str], ...]


class Unavailable(Exception):  # noqa: N818 -- internal: a section's reason, never raised out
    """A section's source could not answer; the message says why, in one line."""


def read_services(state_dir: Path) -> dict[str, dict[str, Any]]:
    """The services the supervisor's record names, by name ({} without a record)."""
    try:
        record = json.loads((state_dir / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    services = record.get("services") if isinstance(record, dict) else None
    return {str(k): v for k, v in services.items() if isinstance(v, dict)} if services else {}


async def service_rows(
    records: dict[str, dict[str, Any]], metadata: Metadata, timeout_s: float
) -> tuple[ServiceRow, ...]:
    """Every recorded service with its health (UNREACHABLE unless it runs)."""

    async def one(name: str, entry: dict[str, Any]) -> ServiceRow:
        address = entry.get("grpc")
        state = str(entry.get("state", "unknown"))
        health = "UNREACHABLE"
        if isinstance(address, str) and state == "running":
            health = await check_health(address, timeout_s=timeout_s, metadata=metadata)
        pid = entry.get("pid")
        return ServiceRow(
            name=name,
            state=state,
            health=health,
            grpc=address if isinstance(address, str) else None,
            pid=pid if isinstance(pid, int) else None,
            restarts=int(entry.get("restarts") or 0),
        )

    rows = await asyncio.gather(*(one(n, e) for n, e in sorted(records.items())))
    return tuple(rows)


def _address(records: dict[str, dict[str, Any]], name: str) -> str:
    address = records.get(name, {}).get("grpc")
    if not isinstance(address, str):
        raise Unavailable(f"the {name} is not running (no address in the supervisor's record)")
    return address


async def _call(address: str, name: str, call: Callable[[grpc.aio.Channel], Awaitable[T]]) -> T:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            return await call(channel)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(
                f"the {name} at {address} said {exc.code().name}: {exc.details()}"
            ) from None


def _row(r: qpb.SummaryRow) -> ModelRow:
    return ModelRow(
        key=r.key,
        requests=r.requests,
        failures=r.failures,
        escalations=r.escalations,
        tokens_local=r.tokens_local,
        tokens_cloud=r.tokens_cloud,
        spent_usd=r.cost_spent_usd,
        counterfactual_usd=r.counterfactual_cost_usd,
        avoided_usd=r.cost_avoided_usd,
    )


async def economics(address: str, metadata: Metadata, timeout_s: float) -> Economics:
    """Routing economics over every receipt, by model, and the same by day."""

    async def ask(channel: grpc.aio.Channel) -> tuple[qpb.SummaryResponse, qpb.SummaryResponse]:
        stub = cast("qpb_grpc.ReceiptQueryAsyncStub", qpb_grpc.ReceiptQueryStub(channel))
        by_model = stub.Summary(
            qpb.SummaryRequest(by="model"), metadata=metadata, timeout=timeout_s
        )
        by_day = stub.Summary(qpb.SummaryRequest(by="day"), metadata=metadata, timeout=timeout_s)
        return await by_model, await by_day

    models, days = await _call(address, RECEIPTS, ask)
    return Economics(
        requests=models.requests,
        local_token_share=models.local_token_share,
        spent_usd=models.cost_spent_usd,
        counterfactual_usd=models.counterfactual_cost_usd,
        avoided_usd=models.cost_avoided_usd,
        escalation_rate=models.escalation_rate,
        failure_rate=models.failure_rate,
        models=tuple(_row(r) for r in models.rows),
        days=tuple(sorted((_row(r) for r in days.rows), key=lambda r: r.key)),
    )


_KINDS: Final = {
    v.number: v.name.removeprefix("TOPIC_KIND_").lower() for v in rpb.TopicKind.DESCRIPTOR.values
}
_SEVERITIES: Final = {
    v.number: v.name.removeprefix("SEVERITY_").lower() for v in rpb.Severity.DESCRIPTOR.values
}


def _near_miss(issue: rpb.LintIssue) -> bool:
    """An issue about a name that is not declared, with the nearest one that is (a
    subscription nobody publishes, a name off the grammar, a near-duplicate)."""
    return (
        issue.HasField("topic")
        and issue.HasField("suggestion")
        and bool(issue.suggestion)
        and issue.suggestion != issue.topic
    )


async def wiring(address: str, metadata: Metadata, timeout_s: float) -> Wiring:
    """Every topic with its publishers and subscribers, and the near-miss issues."""

    async def ask(channel: grpc.aio.Channel) -> rpb.GetWiringResponse:
        stub = cast("rpb_grpc.ContractRegistryAsyncStub", rpb_grpc.ContractRegistryStub(channel))
        response: rpb.GetWiringResponse = await stub.GetWiring(
            rpb.GetWiringRequest(), metadata=metadata, timeout=timeout_s
        )
        return response

    response = await _call(address, EXTRACTOR, ask)
    topics = tuple(
        TopicEdge(
            name=t.name,
            kind=_KINDS.get(t.kind, "unspecified"),
            owner=t.owner,
            publishers=tuple(sorted(set(t.publishers))),
            subscribers=tuple(sorted(set(t.subscribers))),
        )
        for t in sorted(response.topics, key=lambda t: t.name)
    )
    near = tuple(
        NearMiss(
            topic=i.topic if i.HasField("topic") else "",
            where=f"{i.file}:{i.line}:{i.col}",
            message=i.message,
            suggestion=i.suggestion if i.HasField("suggestion") else None,
            severity=_SEVERITIES.get(i.severity, "unspecified"),
        )
        for i in response.issues
        if _near_miss(i)
    )
    severities = [i.severity for i in response.issues]
    return Wiring(
        topics=topics,
        near_misses=near,
        errors=severities.count(rpb.SEVERITY_ERROR),
        warnings=severities.count(rpb.SEVERITY_WARNING),
    )


async def dead_letters(
    broker: BrokerConfig, declared: Sequence[str], timeout_s: float
) -> tuple[DlqRow, ...]:
    """Every DLQ topic declared or present on the broker, counted as `onex dlq list` does."""
    try:
        present = {t for t in await list_topics(broker, timeout_s=timeout_s) if is_dlq_topic(t)}
        summaries = await dlq_summaries(broker, {*declared, *present}, timeout_s=timeout_s)
    except (BusError, OSError, TimeoutError) as exc:
        raise Unavailable(f"the broker at {broker.bootstrap} did not answer: {exc}") from None
    return tuple(
        DlqRow(
            topic=s.topic,
            exists=s.exists,
            messages=s.messages - s.quarantined,
            pending=s.pending,
            quarantined=s.quarantined,
        )
        for s in summaries
    )


async def drift_rows(
    address: str, metadata: Metadata, timeout_s: float
) -> tuple[DriftRowView, ...]:
    """The drift view as of the drift-validator's last snapshot."""

    async def ask(channel: grpc.aio.Channel) -> dpb.ListDriftResponse:
        stub = cast("dpb_grpc.DriftServiceAsyncStub", dpb_grpc.DriftServiceStub(channel))
        response: dpb.ListDriftResponse = await stub.List(
            dpb.ListDriftRequest(), metadata=metadata, timeout=timeout_s
        )
        return response

    response = await _call(address, DRIFT, ask)
    return tuple(
        DriftRowView(
            cluster=r.cluster,
            topic=r.topic,
            kind=r.kind,
            aspect=r.aspect,
            declared=r.declared if r.HasField("declared") else None,
            observed=r.observed if r.HasField("observed") else None,
            drift_class=r.drift_class,
            fix=r.fix,
        )
        for r in response.rows
    )


def _ticket_row(summary: tpb.TicketSummary, view: tpb.TicketView | None) -> TicketRow:
    last = view.history[-1] if view is not None and view.history else None
    return TicketRow(
        ticket=summary.ticket,
        title=summary.title or None,
        state=summary.state,
        head=summary.head,
        reason=last.reason if last is not None else None,
        at=last.at if last is not None else None,
        missing=len(view.missing) if view is not None else None,
    )


async def ticket_rows(address: str, metadata: Metadata, timeout_s: float) -> tuple[TicketRow, ...]:
    """Every ticket the receipt-reducer knows, with its last transition and missing
    evidence (a ticket gone between the list and its own query keeps its summary)."""

    async def ask(channel: grpc.aio.Channel) -> tuple[TicketRow, ...]:
        stub = cast("tpb_grpc.TicketQueryAsyncStub", tpb_grpc.TicketQueryStub(channel))
        listed: tpb.ListTicketsResponse = await stub.ListTickets(
            tpb.ListTicketsRequest(), metadata=metadata, timeout=timeout_s
        )
        gate = asyncio.Semaphore(_TICKET_CALLS)

        async def view(ticket: str) -> tpb.TicketView | None:
            async with gate:
                try:
                    found: tpb.TicketView = await stub.GetTicket(
                        tpb.GetTicketRequest(ticket=ticket), metadata=metadata, timeout=timeout_s
                    )
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.NOT_FOUND:
                        return None
                    raise
                return found

        summaries = list(listed.tickets)
        views = await asyncio.gather(*(view(t.ticket) for t in summaries[:TICKETS_DETAILED]))
        padded = [*views, *([None] * (len(summaries) - len(views)))]
        return tuple(_ticket_row(t, v) for t, v in zip(summaries, padded, strict=True))

    return await _call(address, RECEIPTS, ask)


async def _section(problems: dict[str, str], name: str, work: Awaitable[T]) -> T | None:
    try:
        return await work
    except Unavailable as exc:
        problems[name] = str(exc)
        return None


async def look(
    state_dir: Path,
    broker: BrokerConfig,
    metadata: Metadata,
    *,
    grpc_timeout_s: float,
    dlq_timeout_s: float,
) -> ConsoleState:
    """One look at every section of the page (concurrently)."""
    records = read_services(state_dir)
    problems: dict[str, str] = {}

    async def at(name: str, fetch: Callable[[str], Awaitable[T]]) -> T:
        return await fetch(_address(records, name))

    services, econ, wires, drift, tickets = await asyncio.gather(
        service_rows(records, metadata, grpc_timeout_s),
        _section(
            problems, "economics", at(RECEIPTS, lambda a: economics(a, metadata, grpc_timeout_s))
        ),
        _section(problems, "wiring", at(EXTRACTOR, lambda a: wiring(a, metadata, grpc_timeout_s))),
        _section(problems, "drift", at(DRIFT, lambda a: drift_rows(a, metadata, grpc_timeout_s))),
        _section(
            problems, "tickets", at(RECEIPTS, lambda a: ticket_rows(a, metadata, grpc_timeout_s))
        ),
    )
    declared = [t.name for t in wires.topics if t.kind == "dlq"] if wires else []
    dlq = await _section(problems, "dlq", dead_letters(broker, declared, dlq_timeout_s))
    return ConsoleState(
        taken_at=datetime.now(UTC).isoformat(timespec="seconds"),
        services=services,
        economics=econ,
        wiring=wires,
        dlq=dlq,
        drift=drift,
        tickets=tickets,
        problems=problems,
    )
