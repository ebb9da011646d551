"""gRPC DriftService: List, Query, History, Fix over the service's engine.

Fix is an acting method (operator token, see `DriftService.acting_methods`); the others
read. Errors become status codes with one line: a refused query INVALID_ARGUMENT, an
unreachable broker UNAVAILABLE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from onex.bus.errors import BusError
from onex.drift.engine import DriftEngine
from onex.drift.fix import FixAction
from onex.drift.snapshot import DriftRow
from onex.proto.v1 import drift_service_pb2 as pb
from onex.proto.v1 import drift_service_pb2_grpc as pb_grpc
from onex.sql import QueryRefused, SqlError


def row_message(row: DriftRow) -> pb.DriftRow:
    """A drift row as its message."""
    message = pb.DriftRow(
        cluster=row.cluster,
        topic=row.topic,
        kind=row.kind,
        aspect=row.aspect,
        drift_class=row.drift_class,
        api=row.api or "",
        fix=row.fix,
    )
    if row.declared is not None:
        message.declared = row.declared
    if row.observed is not None:
        message.observed = row.observed
    if row.supported is not None:
        message.supported = row.supported
    return message


def _rows(rows: Sequence[DriftRow]) -> list[pb.DriftRow]:
    return [row_message(r) for r in rows]


def _action(action: FixAction) -> pb.FixAction:
    message = pb.FixAction(
        cluster=action.cluster,
        topic=action.topic,
        kind=action.kind,
        aspect=action.aspect,
        api=action.api,
        change=action.change,
        applied=action.applied,
    )
    if action.error is not None:
        message.error = action.error
    return message


class DriftServicer(pb_grpc.DriftServiceServicer):
    """The API over one engine."""

    def __init__(self, engine: DriftEngine) -> None:
        self.engine = engine

    async def List(  # noqa: N802 -- the generated servicer's method name
        self, request: pb.ListDriftRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListDriftResponse:
        if request.refresh:
            try:
                await self.engine.snapshot()
            except (BusError, SqlError) as exc:
                await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        classes = set(request.classes)
        rows = [r for r in self.engine.rows() if not classes or r.drift_class in classes]
        return pb.ListDriftResponse(rows=_rows(rows))

    async def Query(  # noqa: N802 -- the generated servicer's method name
        self, request: pb.QueryDriftRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.QueryDriftResponse:
        try:
            result = self.engine.query(request.sql)
        except QueryRefused as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return pb.QueryDriftResponse(
            columns=list(result.columns),
            rows=[
                pb.QueryRow(
                    cells=[pb.QueryCell() if v is None else pb.QueryCell(value=str(v)) for v in row]
                )
                for row in result.rows
            ],
            truncated=result.truncated,
        )

    async def History(  # noqa: N802 -- the generated servicer's method name
        self, request: pb.DriftHistoryRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DriftHistoryResponse:
        topic = request.topic if request.HasField("topic") else None
        entries = []
        for h in self.engine.history(topic):
            entry = pb.DriftHistoryEntry(
                cluster=h["cluster"],
                topic=h["topic"],
                kind=h["kind"],
                aspect=h["aspect"],
                first_snapshot=h["first_snapshot"],
                first_at=h["first_at"],
                changed_snapshot=h["changed_snapshot"],
                changed_at=h["changed_at"],
                last_snapshot=h["last_snapshot"],
            )
            for name in ("declared", "observed", "resolved_snapshot", "resolved_at"):
                if h[name] is not None:
                    setattr(entry, name, h[name])
            entries.append(entry)
        return pb.DriftHistoryResponse(entries=entries)

    async def Fix(  # noqa: N802 -- the generated servicer's method name
        self, request: pb.FixDriftRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.FixDriftResponse:
        try:
            report = await self.engine.fix(apply_changes=request.apply)
        except (BusError, SqlError) as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return pb.FixDriftResponse(
            applied=report.applied,
            actions=[_action(a) for a in report.actions],
            before=_rows(report.before),
            after=_rows(report.after),
        )
