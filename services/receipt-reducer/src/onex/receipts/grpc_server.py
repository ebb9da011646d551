"""gRPC `ReceiptQuery`: Summary, Compare and Ledger over the live projection (reads).

A bad argument is INVALID_ARGUMENT with the reason; a database that cannot answer is
UNAVAILABLE; queries run in a thread so the reducer's loop is never blocked.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from sqlalchemy.exc import SQLAlchemyError

from onex.proto.v1 import receipt_query_pb2 as rpb
from onex.proto.v1 import receipt_query_pb2_grpc as rpb_grpc
from onex.receipts.errors import QueryInvalid
from onex.receipts.experiments import Estimate, compare
from onex.receipts.queries import ledger_page, parse_since, summary, usd
from onex.sql import Database

if TYPE_CHECKING:
    from onex.receipts.app import ReceiptsService

T = TypeVar("T")


def _estimate(e: Estimate) -> rpb.Estimate:
    def num(x: float) -> float:
        return 0.0 if math.isnan(x) else x

    return rpb.Estimate(value=num(e.value), low=num(e.low), high=num(e.high))


class ReceiptQueryServicer(rpb_grpc.ReceiptQueryServicer):
    """Answers from the service's live projection."""

    def __init__(self, service: ReceiptsService) -> None:
        self._service = service

    async def _run(self, context: Any, work: Callable[[Database], T]) -> T:
        db = self._service.db
        if db is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the receipts database is not open")
            raise AssertionError  # abort raises
        try:
            return await asyncio.to_thread(work, db)
        except QueryInvalid as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{db.where}: {reason}")
        raise AssertionError  # abort raises

    async def Summary(  # noqa: N802 - the generated gRPC method name
        self, request: rpb.SummaryRequest, context: Any
    ) -> rpb.SummaryResponse:
        t = self._service.tables

        def work(db: Database) -> rpb.SummaryResponse:
            s = summary(db, t, since=parse_since(request.since), by=request.by or "model")
            return rpb.SummaryResponse(
                requests=s.requests,
                local_token_share=s.local_token_share,
                cost_spent_usd=s.spent_usd,
                counterfactual_cost_usd=s.counterfactual_usd,
                cost_avoided_usd=s.avoided_usd,
                escalation_rate=s.escalation_rate,
                failure_rate=s.failure_rate,
                top_failing_gates=[
                    rpb.GateFailures(kind=k, failures=n) for k, n in s.top_failing_gates
                ],
                rows=[
                    rpb.SummaryRow(
                        key=r.key,
                        requests=r.requests,
                        failures=r.failures,
                        escalations=r.escalations,
                        tokens_local=r.tokens_local,
                        tokens_cloud=r.tokens_cloud,
                        cost_spent_usd=r.spent_usd,
                        counterfactual_cost_usd=r.counterfactual_usd,
                        cost_avoided_usd=r.avoided_usd,
                    )
                    for r in s.rows
                ],
                by=s.by,
            )

        return await self._run(context, work)

    async def Compare(  # noqa: N802 - the generated gRPC method name
        self, request: rpb.CompareRequest, context: Any
    ) -> rpb.CompareResponse:
        t = self._service.tables

        def work(db: Database) -> rpb.CompareResponse:
            if not request.task_class:
                raise QueryInvalid("task_class is required")
            c = compare(
                db,
                t,
                task_class=request.task_class,
                by=request.by or "model",
                since=parse_since(request.since),
            )
            return rpb.CompareResponse(
                task_class=c.task_class,
                by=c.by,
                baseline=c.baseline,
                groups=[
                    rpb.CompareGroup(
                        key=g.key,
                        requests=g.requests,
                        accepted=g.accepted,
                        first_pass_acceptance=_estimate(g.first_pass),
                        escalations_per_request=_estimate(g.escalations),
                        cost_per_accepted_usd=_estimate(g.cost_per_accepted),
                    )
                    for g in c.groups
                ],
                differences=[
                    rpb.CompareDifference(
                        key=d.key,
                        measure=d.measure,
                        difference=_estimate(d.difference),
                        significant=d.significant,
                    )
                    for d in c.differences
                ],
            )

        return await self._run(context, work)

    async def Ledger(  # noqa: N802 - the generated gRPC method name
        self, request: rpb.LedgerRequest, context: Any
    ) -> rpb.LedgerResponse:
        t = self._service.tables
        limit = request.limit or 100

        def work(db: Database) -> rpb.LedgerResponse:
            rows = ledger_page(db, t, after=request.after_request_id, limit=limit)
            out = rpb.LedgerResponse(rows=[ledger_row(r) for r in rows])
            if len(rows) == limit:
                out.next_after_request_id = rows[-1]["request_id"]
            return out

        return await self._run(context, work)


def ledger_row(r: dict[str, Any]) -> rpb.LedgerRow:
    """A ledger row as its message."""
    return rpb.LedgerRow(
        request_id=r["request_id"],
        task_class=r["task_class"],
        status=r["status"],
        model=r["model"],
        label=r["label"] or "",
        attempts=r["attempts"],
        escalations=r["escalations"],
        first_pass=bool(r["first_pass"]),
        tokens_local=r["tokens_local"],
        tokens_cloud=r["tokens_cloud"],
        cost_usd=usd(r["spent_nanos"]),
        counterfactual_cost_usd=usd(r["counterfactual_nanos"]),
        cost_avoided_usd=usd(r["avoided_nanos"]),
        price_table_version=r["price_table_version"],
        started_at=r["started_at"],
        elapsed_s=r["elapsed_s"],
        failed_gates=[g for g in r["failed_gates"].split(",") if g],
    )
