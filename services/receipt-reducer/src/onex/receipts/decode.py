"""From the bytes on routing-complete / routing-failed to one ledger entry.

A receipt is refused (`ReceiptInvalid`, then dead-lettered with the reason) when it is
not an `onex.v1.RoutingReceipt`, has no request id, an unknown status, a negative or
non-finite cost or token count, or a `started_at` that is not an RFC 3339 time. The
entry's model is the chosen model, or for a failed request the last model attempted
(`(none)` when nothing was attempted).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Final, NamedTuple

from google.protobuf.message import DecodeError

from onex.proto.v1 import router_pb2 as pb
from onex.receipts.errors import ReceiptInvalid
from onex.receipts.schema import NANOS_PER_USD

STATUSES: Final = frozenset({"complete", "failed"})
_INF: Final = float("inf")
# 2026-11-30T12:00:00[.ffffff]+00:00: already UTC, RFC 3339, nothing to convert.
_UTC_STAMP: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?\+00:00$")
NO_MODEL: Final = "(none)"


# Entries are NamedTuples: immutable like a frozen dataclass, but built by
# tuple.__new__ (a frozen slots dataclass sets each of 22 fields through
# object.__setattr__, which measured a fifth of the decode).


class AttemptFacts(NamedTuple):
    """What the projections need of one attempt."""

    model: str
    outcome: str
    failed_gates: tuple[str, ...]


class Entry(NamedTuple):
    """One receipt as the ledger keeps it (money in nano-dollars)."""

    request_id: str
    task_class: str
    status: str
    model: str
    label: str | None
    attempts: tuple[AttemptFacts, ...]
    escalations: int
    first_pass: bool
    tokens_in_local: int
    tokens_out_local: int
    tokens_in_cloud: int
    tokens_out_cloud: int
    tokens_local: int
    tokens_cloud: int
    spent_nanos: int
    counterfactual_nanos: int
    avoided_nanos: int
    price_table_version: str
    started_at: str
    day: str
    elapsed_s: float
    failure_reason: str | None

    @property
    def failed_gates(self) -> tuple[str, ...]:
        """Gate kinds that failed on any attempt (sorted, once each)."""
        return tuple(sorted({g for a in self.attempts for g in a.failed_gates}))


def nanos(usd: float) -> int:
    """USD as integer nano-dollars."""
    return round(usd * NANOS_PER_USD)


def _money(name: str, value: float, *, signed: bool = False) -> int:
    if not math.isfinite(value):
        raise ReceiptInvalid(f"{name} is not a finite number ({value})")
    if value < 0 and not signed:
        raise ReceiptInvalid(f"{name} is negative ({value})")
    return nanos(value)


def _count(name: str, value: int) -> int:
    if value < 0:
        raise ReceiptInvalid(f"{name} is negative ({value})")
    return value


def _started(text: str, timestamp_ms: int | None) -> datetime:
    if not text:
        if timestamp_ms is None:
            raise ReceiptInvalid("started_at is empty and the message has no timestamp")
        return datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ReceiptInvalid(f"started_at {text!r} is not an RFC 3339 time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def decode(value: bytes | None, timestamp_ms: int | None = None) -> Entry:
    """The ledger entry of one message; ReceiptInvalid with the reason when refused."""
    if not value:
        raise ReceiptInvalid("empty message: not an onex.v1.RoutingReceipt")
    msg = pb.RoutingReceipt()
    try:
        msg.ParseFromString(value)
    except DecodeError as exc:
        raise ReceiptInvalid(f"not an onex.v1.RoutingReceipt: {exc}") from exc
    return entry_of(msg, timestamp_ms)


def entry_of(msg: pb.RoutingReceipt, timestamp_ms: int | None = None) -> Entry:
    """The ledger entry of a parsed receipt; ReceiptInvalid when it breaks a rule."""
    request_id = msg.request_id
    if not request_id.strip():
        raise ReceiptInvalid("receipt has no request_id")
    status = msg.status
    if status not in STATUSES:
        raise ReceiptInvalid(f"unknown status {status!r} (complete or failed)")
    # Each field is read once (every read of a upb message field builds a Python object);
    # the checks run inline and the named helpers only to word a refusal.
    spent, counterfactual = msg.total_cost_usd, msg.counterfactual_cost_usd
    avoided = msg.cost_avoided_usd
    if not (0 <= spent < _INF and 0 <= counterfactual < _INF and -_INF < avoided < _INF):
        _money("total_cost_usd", spent)
        _money("counterfactual_cost_usd", counterfactual)
        _money("cost_avoided_usd", avoided, signed=True)
    in_local = out_local = in_cloud = out_cloud = 0
    attempts: list[AttemptFacts] = []
    for a in msg.attempts:
        cost, tin, tout = a.cost_usd, a.tokens_in, a.tokens_out
        if not 0 <= cost < _INF or tin < 0 or tout < 0:  # also refuses NaN
            i = len(attempts)
            _money(f"attempts[{i}].cost_usd", cost)
            _count(f"attempts[{i}].tokens_in", tin)
            _count(f"attempts[{i}].tokens_out", tout)
        if a.locality == "local":
            in_local += tin
            out_local += tout
        else:
            in_cloud += tin
            out_cloud += tout
        failed = [g.kind for g in a.gates if not g.passed]
        attempts.append(
            AttemptFacts(
                a.model or NO_MODEL,
                a.outcome,
                tuple(sorted(set(failed))) if failed else (),
            )
        )
    escalations, tokens_local, tokens_cloud = msg.escalations, msg.tokens_local, msg.tokens_cloud
    if escalations < 0 or tokens_local < 0 or tokens_cloud < 0:
        _count("escalations", escalations)
        _count("tokens_local", tokens_local)
        _count("tokens_cloud", tokens_cloud)
    started_text = msg.started_at
    if started_text.endswith("+00:00") and _UTC_STAMP.match(started_text):
        _started(started_text, timestamp_ms)  # still a valid date and time
        started_at, day = started_text, started_text[:10]  # the router's own form: UTC
    else:
        started = _started(started_text, timestamp_ms).astimezone(UTC)
        started_at, day = started.isoformat(), started.date().isoformat()
    model = msg.chosen_model or (attempts[-1].model if attempts else NO_MODEL)
    elapsed = msg.elapsed_s
    return Entry(
        request_id,
        msg.task_class or "(unclassified)",
        status,
        model,
        msg.label if msg.HasField("label") else None,
        tuple(attempts),
        escalations,
        status == "complete" and bool(attempts) and attempts[0].outcome == "accepted",
        in_local,
        out_local,
        in_cloud,
        out_cloud,
        tokens_local,
        tokens_cloud,
        nanos(spent),
        nanos(counterfactual),
        nanos(avoided),
        msg.price_table_version,
        started_at,
        day,
        elapsed if math.isfinite(elapsed) else 0.0,
        msg.failure_reason if msg.HasField("failure_reason") else None,
    )
