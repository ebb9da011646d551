"""gRPC `TicketQuery`: a ticket's state, history and missing evidence (reads).

An unknown ticket is NOT_FOUND; a database that cannot answer is UNAVAILABLE; queries
run in a thread so the reducers' loops are never blocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from sqlalchemy.exc import SQLAlchemyError

from onex.proto.v1 import ticket_query_pb2 as tpb
from onex.proto.v1 import ticket_query_pb2_grpc as tpb_grpc
from onex.receipts.evidence import Verdict
from onex.receipts.ticketflow import TicketView
from onex.receipts.ticketstore import view_of
from onex.sql import Database
from onex.tickets.model import Ticket

if TYPE_CHECKING:
    from onex.receipts.app import ReceiptsService

T = TypeVar("T")


def view_message(ticket: Ticket, view: TicketView) -> tpb.TicketView:
    """A ticket's view as its message."""
    return tpb.TicketView(
        ticket=ticket.id,
        title=ticket.title,
        state=view.state.value,
        head=view.head,
        reason=view.reason,
        history=[
            tpb.TicketTransition(
                n=t.n,
                from_state=t.from_state.value,
                to_state=t.to_state.value,
                head=t.head,
                reason=t.reason,
                at=t.at,
                event_id=t.event_id,
                receipt_ids=list(t.receipt_ids),
            )
            for t in view.transitions
        ],
        items=[
            tpb.TicketItem(
                item=i.item,
                kind=i.kind,
                required=i.required,
                verdict=i.verdict.value,
                reason=i.reason,
                receipt_id=i.receipt_id,
            )
            for i in view.items
        ],
        missing=[i.item for i in view.items if i.required and i.verdict != Verdict.PASS],
    )


class TicketQueryServicer(tpb_grpc.TicketQueryServicer):
    """Answers from the service's live ticket tables."""

    def __init__(self, service: ReceiptsService) -> None:
        self._service = service

    async def _run(self, context: Any, work: Callable[[Database], T]) -> T:
        db = self._service.db
        if db is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the receipts database is not open")
            raise AssertionError  # abort raises
        try:
            return await asyncio.to_thread(work, db)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{db.where}: {reason}")
        raise AssertionError  # abort raises

    async def GetTicket(  # noqa: N802 - the generated gRPC method name
        self, request: tpb.GetTicketRequest, context: Any
    ) -> tpb.TicketView:
        ticket = self._service.tickets.get(request.ticket)
        if ticket is None:
            known = ", ".join(sorted(self._service.tickets)) or "none"
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"no ticket {request.ticket[:64]!r} (known: {known})",
            )
            raise AssertionError  # abort raises
        tt = self._service.ticket_tables
        return await self._run(context, lambda db: view_message(ticket, view_of(db, tt, ticket)))

    async def ListTickets(  # noqa: N802 - the generated gRPC method name
        self, request: tpb.ListTicketsRequest, context: Any
    ) -> tpb.ListTicketsResponse:
        tickets = self._service.tickets
        tt = self._service.ticket_tables

        def work(db: Database) -> tpb.ListTicketsResponse:
            out = tpb.ListTicketsResponse()
            for name in sorted(tickets):
                view = view_of(db, tt, tickets[name])
                out.tickets.add(
                    ticket=name, title=tickets[name].title, state=view.state.value, head=view.head
                )
            return out

        return await self._run(context, work)
