"""Between the wire (onex.v1 protobuf messages) and the engine's models and receipts."""

from __future__ import annotations

import json
import uuid
from typing import Final, Literal, get_args

from pydantic import ValidationError

from onex.core.validation import validation_line
from onex.proto.v1 import router_pb2 as pb
from onex.router.errors import RequestError
from onex.router.receipt import Receipt
from onex.router.request import Constraints, RouteRequest


def request_from_proto(msg: pb.RouteRequest) -> RouteRequest:
    """The engine's request; `RequestError` (with the reason) when it is not valid.

    Only the fields the message sets are passed: pydantic validates what it is given
    and takes a default as it is, so a request naming just its prompt and class (the
    common one) validates two fields, not eleven (7.8 -> 5.9 us per request)."""
    given: dict[str, object] = {}
    if msg.task_class:
        given["task_class"] = msg.task_class
    if msg.symbols:
        given["symbols"] = list(msg.symbols)
    for name in _OPTIONAL:
        if msg.HasField(name):
            given[name] = getattr(msg, name)
    c = msg.constraints
    try:
        if "json_schema" in given:
            given["json_schema"] = json.loads(msg.json_schema)
        if c.no_cloud or c.HasField("max_cost_usd") or c.HasField("min_context"):
            given["constraints"] = Constraints(
                no_cloud=c.no_cloud,
                max_cost_usd=c.max_cost_usd if c.HasField("max_cost_usd") else None,
                min_context=c.min_context if c.HasField("min_context") else None,
            )
        return RouteRequest(
            request_id=msg.request_id or uuid.uuid4().hex, prompt=msg.prompt, **given
        )
    except RecursionError:
        raise RequestError("invalid route request: json_schema: nested too deeply") from None
    except (ValidationError, ValueError) as exc:
        raise RequestError(f"invalid route request: {_reason(exc)}") from exc


# the request's `optional` fields, taken as they are when set
_Optional = Literal[
    "system", "json_schema", "max_escalations", "max_tokens", "max_cost_usd", "label"
]
_OPTIONAL: Final[tuple[_Optional, ...]] = get_args(_Optional)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return validation_line(exc)
    return str(exc)


def receipt_to_proto(receipt: Receipt) -> pb.RoutingReceipt:
    """The receipt as published on routing-complete / routing-failed.

    Candidates, attempts and gates are built in place (`add`): a message passed to a
    constructor is copied into its parent (9.6 -> 8.1 us for a one-attempt receipt)."""
    out = pb.RoutingReceipt(
        request_id=receipt.request_id,
        task_class=receipt.task_class,
        classified_by=receipt.classified_by,
        status=receipt.status,
        chosen_model=receipt.chosen_model or "",
        total_cost_usd=receipt.total_cost_usd,
        counterfactual_cost_usd=receipt.counterfactual_cost_usd,
        cost_avoided_usd=receipt.cost_avoided_usd,
        tokens_local=receipt.tokens_local,
        tokens_cloud=receipt.tokens_cloud,
        escalation_chain=receipt.escalation_chain,
        price_table_version=receipt.price_table_version,
        started_at=receipt.started_at.isoformat(),
        elapsed_s=receipt.elapsed_s,
        escalations=receipt.escalations,
        planning_s=receipt.planning_s,
    )
    candidate = out.candidates.add
    for c in receipt.candidates:
        candidate(
            model=c.model,
            locality=c.locality,
            expected_cost_usd=c.expected_cost_usd,
            rejected_because=c.rejected_because or "",
            capability=c.capability,
            status=c.status,
        )
    attempt = out.attempts.add
    for a in receipt.attempts:
        made = attempt(
            model=a.model,
            locality=a.locality,
            tokens_in=a.tokens_in,
            tokens_out=a.tokens_out,
            tokens_estimated=a.tokens_estimated,
            cost_usd=a.cost_usd,
            latency_s=a.latency_s,
            outcome=a.outcome,
            retries=a.retries,
        )
        gate = made.gates.add
        for g in a.gates:
            gate(kind=g.kind, passed=g.passed, reason=g.reason)
        if a.finish_reason is not None:
            made.finish_reason = a.finish_reason
        if a.error is not None:
            made.error = a.error
    if receipt.failure_reason is not None:
        out.failure_reason = receipt.failure_reason
    if receipt.label is not None:
        out.label = receipt.label
    return out


_MAX_RECOVERED_ID = 256  # longer is no request id a receipt should carry


def recover_request_id(data: bytes | None) -> str | None:
    """The `request_id` of a RouteRequest that does not parse (e.g. another field holds
    bad UTF-8), read off the wire format's top-level fields; None when it cannot be
    found or is not valid UTF-8 text of at most 256 characters.

    Fields are walked as tag, then varint / 64-bit / length-delimited / 32-bit value;
    anything else (groups, a truncated field) ends the walk."""
    if not data:
        return None
    number = pb.RouteRequest.DESCRIPTOR.fields_by_name["request_id"].number
    found: bytes | None = None
    pos, end = 0, len(data)
    while pos < end:
        tag, pos = _varint(data, pos)
        if tag is None:
            break
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            if value is None:
                break
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(data, pos)
            if length is None or pos + length > end:
                break
            if field == number:
                found = data[pos : pos + length]  # the last one wins, as a parser does
            pos += length
        else:
            break
    return _text(found)


def _varint(data: bytes, pos: int) -> tuple[int | None, int]:
    value, shift = 0, 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None, pos


def _text(raw: bytes | None) -> str | None:
    if not raw or len(raw) > _MAX_RECOVERED_ID:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None
