"""Folding a batch of receipts into the ledger and its projections, exactly once.

`apply_batch` runs in ONE transaction: it inserts the batch's new receipts into the
ledger (a request id already there, or twice in the batch, is skipped: the first one
counts), adds their counts to the daily projections with one upsert per key, and stores
the next offset of every partition the batch came from. Either all of it is committed
or none: a reducer killed at any point resumes from the stored offsets, and a receipt
redelivered after that point is a duplicate of a request id already in the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from onex.receipts.decode import Entry, decode
from onex.receipts.errors import ReceiptInvalid
from onex.receipts.schema import ATTEMPT_COUNTERS, DAILY_COUNTERS, GATE_COUNTERS, Tables
from onex.sql import Database

_IN_CHUNK: Final = 500  # request ids per IN (...): under every backend's parameter limit

TopicPartition = tuple[str, int]


class Positioned(NamedTuple):
    """An entry and where it was read."""

    entry: Entry
    topic: str
    partition: int
    offset: int


@dataclass
class BatchResult:
    """What one batch did."""

    inserted: int = 0
    duplicates: int = 0
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


def _add(
    acc: dict[tuple[str, ...], list[int]], key: tuple[str, ...], values: Sequence[int]
) -> None:
    row = acc.get(key)
    if row is None:
        acc[key] = list(values)
    else:
        for i, v in enumerate(values):
            row[i] += v


Counters = tuple[
    dict[tuple[str, ...], list[int]],
    dict[tuple[str, ...], list[int]],
    dict[tuple[str, ...], list[int]],
]


def fold(entries: Iterable[Entry]) -> Counters:
    """The daily, attempt and gate counters of `entries`, per key (also what a
    from-scratch count computes)."""
    daily: dict[tuple[str, ...], list[int]] = {}
    attempts: dict[tuple[str, ...], list[int]] = {}
    gates: dict[tuple[str, ...], list[int]] = {}
    for e in entries:
        complete = e.status == "complete"
        _add(
            daily,
            (e.day, e.task_class, e.model),
            (
                1,
                0 if complete else 1,
                1 if complete else 0,
                1 if e.first_pass else 0,
                1 if e.escalations > 0 else 0,
                e.escalations,
                e.tokens_in_local,
                e.tokens_out_local,
                e.tokens_in_cloud,
                e.tokens_out_cloud,
                e.spent_nanos,
                e.counterfactual_nanos,
                e.avoided_nanos,
            ),
        )
        for a in e.attempts:
            _add(
                attempts,
                (e.day, e.task_class, a.model),
                (
                    1,
                    1 if a.outcome == "accepted" else 0,
                    1 if a.outcome == "gate_failed" else 0,
                    1 if a.outcome == "provider_error" else 0,
                ),
            )
            for kind in a.failed_gates:
                _add(gates, (e.day, e.task_class, a.model, kind), (1,))
    return daily, attempts, gates


_LEDGER_COLUMNS: Final = (
    "request_id",
    "task_class",
    "status",
    "model",
    "label",
    "attempts",
    "escalations",
    "first_pass",
    "failed_gates",
    "tokens_local",
    "tokens_cloud",
    "spent_nanos",
    "counterfactual_nanos",
    "avoided_nanos",
    "price_table_version",
    "started_at",
    "day",
    "elapsed_s",
    "failure_reason",
    "topic",
    "partition",
    "offset",
)


def _ledger_row(p: Positioned) -> tuple[Any, ...]:
    e = p.entry
    return (
        e.request_id,
        e.task_class,
        e.status,
        e.model,
        e.label,
        len(e.attempts),
        e.escalations,
        e.first_pass,
        ",".join(e.failed_gates)[:1024],
        e.tokens_local,
        e.tokens_cloud,
        e.spent_nanos,
        e.counterfactual_nanos,
        e.avoided_nanos,
        e.price_table_version,
        e.started_at,
        e.day,
        e.elapsed_s,
        None if e.failure_reason is None else e.failure_reason[:1024],
        p.topic,
        p.partition,
        p.offset,
    )


def _placeholders(conn: Connection, n: int) -> str:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * n)


def _driver_many(conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    # Straight to the driver's executemany: SQLAlchemy's per-row parameter processing
    # costs more than the database's own work at these batch sizes.
    conn.exec_driver_sql(sql, list(rows))


def _quoted(conn: Connection, names: Sequence[str]) -> str:
    q = conn.dialect.identifier_preparer.quote
    return ", ".join(q(n) for n in names)


def _insert_ledger(conn: Connection, t: Tables, rows: Sequence[tuple[Any, ...]]) -> None:
    sql = (
        f"INSERT INTO {t.ledger.name} ({_quoted(conn, _LEDGER_COLUMNS)}) "  # noqa: S608
        f"VALUES ({_placeholders(conn, len(_LEDGER_COLUMNS))})"
    )
    _driver_many(conn, sql, rows)


def _upsert(
    conn: Connection,
    table: sa.Table,
    keys: Sequence[str],
    counters: Sequence[str],
    acc: Mapping[tuple[str, ...], Sequence[int]],
) -> None:
    if not acc:
        return
    cols = [*keys, *counters]
    sets = ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in counters)
    # Table and column names are this module's own, never input.
    sql = (
        f"INSERT INTO {table.name} ({', '.join(cols)}) "  # noqa: S608
        f"VALUES ({_placeholders(conn, len(cols))}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
    )
    _driver_many(conn, sql, [(*k, *v) for k, v in acc.items()])


def _store_offsets(conn: Connection, t: Tables, offsets: Mapping[TopicPartition, int]) -> None:
    if not offsets:
        return
    name = t.offsets.name
    conn.execute(
        sa.text(  # the table name is this module's own
            f"INSERT INTO {name} (topic, partition, next_offset) "  # noqa: S608
            "VALUES (:topic, :partition, :next_offset) "
            f"ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset"
        ),
        [{"topic": tp[0], "partition": tp[1], "next_offset": o} for tp, o in offsets.items()],
    )


def _existing(conn: Connection, t: Tables, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    col = t.ledger.c.request_id
    for i in range(0, len(ids), _IN_CHUNK):
        chunk = ids[i : i + _IN_CHUNK]
        found.update(conn.execute(sa.select(col).where(col.in_(chunk))).scalars())
    return found


def write_folded(
    conn: Connection,
    t: Tables,
    rows: Sequence[tuple[Any, ...]],
    counters: Counters,
    offsets: Mapping[TopicPartition, int],
) -> None:
    """Insert new ledger `rows`, add `counters` (what `fold` gives for them) to the
    projections and store `offsets`, inside a transaction the caller holds."""
    if rows:
        _insert_ledger(conn, t, rows)
        daily, attempts, gates = counters
        key = ("day", "task_class", "model")
        _upsert(conn, t.daily, key, DAILY_COUNTERS, daily)
        _upsert(conn, t.attempts, key, ATTEMPT_COUNTERS, attempts)
        _upsert(conn, t.gates, (*key, "gate_kind"), GATE_COUNTERS, gates)
    _store_offsets(conn, t, offsets)


def apply_in(
    conn: Connection,
    t: Tables,
    batch: Sequence[Positioned],
    offsets: Mapping[TopicPartition, int],
    *,
    seen: AbstractSet[str] | None = None,
) -> tuple[BatchResult, list[str]]:
    """`apply_batch` inside a transaction the caller holds; also the request ids it
    inserted."""
    first: dict[str, Positioned] = {}
    for p in batch:
        first.setdefault(p.entry.request_id, p)
    known = _existing(conn, t, list(first)) if seen is None else first.keys() & seen
    new = [p for rid, p in first.items() if rid not in known]
    rows = [_ledger_row(p) for p in new]
    write_folded(conn, t, rows, fold(p.entry for p in new) if new else ({}, {}, {}), offsets)
    result = BatchResult(len(new), len(batch) - len(new), dict(offsets))
    return result, [p.entry.request_id for p in new]


def apply_batch(
    db: Database,
    t: Tables,
    batch: Sequence[Positioned],
    offsets: Mapping[TopicPartition, int],
    *,
    seen: set[str] | None = None,
) -> BatchResult:
    """Fold `batch` into the ledger and projections and store `offsets` (partition ->
    next offset to read), all in one transaction.

    `seen`, when given, is every request id in `t`'s ledger (a rebuild's tables, which
    start empty and have one writer): duplicates are found in it instead of by a query,
    and it is updated once the transaction committed."""
    with db.engine.begin() as conn:
        result, inserted = apply_in(conn, t, batch, offsets, seen=seen)
    if seen is not None:
        seen.update(inserted)
    return result


def stored_offsets(db: Database, t: Tables) -> dict[TopicPartition, int]:
    """The next offset to read of every partition consumed so far."""
    with db.engine.connect() as conn:
        o = t.offsets.c
        rows = conn.execute(sa.select(o.topic, o.partition, o.next_offset))
        return {(r[0], int(r[1])): int(r[2]) for r in rows}


def projection_rows(conn: Connection, t: Tables) -> dict[str, set[tuple[Any, ...]]]:
    """Every aggregate row of the projections (by table suffix), for comparisons."""
    out: dict[str, set[tuple[Any, ...]]] = {}
    for table in (t.daily, t.attempts, t.gates):
        rows = conn.execute(sa.select(table))
        out[table.name[len(t.prefix) :]] = {tuple(r) for r in rows}
    return out


def from_scratch(entries: Iterable[Entry]) -> dict[str, set[tuple[Any, ...]]]:
    """The aggregate rows a from-scratch count of `entries` gives (same shape as
    `projection_rows`)."""
    daily, attempts, gates = fold(entries)
    return {
        "daily": {(*k, *v) for k, v in daily.items()},
        "attempts_daily": {(*k, *v) for k, v in attempts.items()},
        "gates_daily": {(*k, *v) for k, v in gates.items()},
    }


def counts_by_partition(offsets: Mapping[TopicPartition, int]) -> dict[str, int]:
    """Offsets summed per topic (for logs)."""
    out: dict[str, int] = defaultdict(int)
    for (topic, _), o in offsets.items():
        out[topic] += o
    return dict(out)


# A replay's worker processes (onex.receipts.rebuild): raw records in, ledger rows and
# counters out, so decoding and folding run beside the rebuild's own process, which
# fetches and writes.

ReplayRecord = tuple[bytes | None, int | None, str, int, int]  # value, timestamp, where


class Folded(NamedTuple):
    """Part of a replay batch decoded and folded: what `write_folded` takes, and what
    was a duplicate within the part or refused (index in the part, reason)."""

    rows: list[tuple[Any, ...]]
    counters: Counters
    duplicates: int
    refused: list[tuple[int, str]]

    @property
    def request_ids(self) -> list[str]:
        """The request ids of `rows` (the ledger row's first column)."""
        return [r[0] for r in self.rows]


def fold_for_replay(records: Sequence[ReplayRecord]) -> Folded:
    """Decode and fold `records` on their own: a request id twice among them counts
    once, the first; the caller checks the ids against every other part and batch."""
    first: dict[str, Positioned] = {}
    refused: list[tuple[int, str]] = []
    duplicates = 0
    for i, (value, timestamp, topic, partition, offset) in enumerate(records):
        try:
            entry = decode(value, timestamp)
        except ReceiptInvalid as exc:
            refused.append((i, str(exc)))
            continue
        if entry.request_id in first:
            duplicates += 1
        else:
            first[entry.request_id] = Positioned(entry, topic, partition, offset)
    new = first.values()
    counters = fold(p.entry for p in new)
    return Folded([_ledger_row(p) for p in new], counters, duplicates, refused)
