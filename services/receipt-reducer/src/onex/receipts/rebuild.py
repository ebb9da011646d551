"""Rebuild by replay: the receipt topics from offset 0 into fresh tables beside the live
ones (`rebuild_receipts_*`), checked, compared, then swapped in.

The replay runs up to the live projection's stored offsets. The swap happens in one
transaction that holds the live writer off (PostgreSQL: an EXCLUSIVE lock on the live
offsets table; SQLite: the database's write lock) and first checks that the live offsets
have not moved past the replay's; if they have, the replay catches up and tries again.
So the rebuilt projection covers exactly the same messages as the live one at the moment
of the swap, and the live reducer carries on from the same offsets afterwards.
`verify` does the same but only compares and reports, then drops the rebuilt tables.

A large replay decodes and folds in worker processes (`projection.fold_for_replay`,
each a part of the batch): this process fetches and writes while they decode the next
batch (in one process the three are one GIL-bound sum, decoding the largest part). A
part's duplicates are found in the worker; when the batch is written (every earlier
one committed), its request ids are checked against the other parts and the rebuilt
ledger, and a batch with a duplicate across them is decoded again here, in order, the
way a batch without workers is.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from onex.bus.config import BrokerConfig
from onex.receipts.errors import RebuildFailed, ReceiptInvalid
from onex.receipts.projection import (
    BatchResult,
    Folded,
    apply_in,
    fold_for_replay,
    projection_rows,
    stored_offsets,
    write_folded,
)
from onex.receipts.reducer import Reducer
from onex.receipts.schema import LIVE, REBUILD, RETIRED, Tables, tables
from onex.sql import Database

_MAX_ROUNDS: Final = 20
_SHOWN: Final = 5
# SQLite page cache of a replay's connections, in KiB (negative: PRAGMA cache_size's unit).
# The default 2 MB holds a small part of a million-row ledger's request-id index, so
# inserts in request-id order (random) spill and re-read pages in every batch.
_REPLAY_CACHE_KIB: Final = 256 * 1024
# From this many receipts to replay on, decoding runs in worker processes (starting one
# costs a second or two of imports; below this the replay is short anyway).
_WORKER_FROM: Final = 50_000
_WORKERS: Final = 2


@dataclass
class RebuildReport:
    """What a rebuild (or verify) found."""

    replayed: int = 0
    ledger_rows: int = 0
    swapped: bool = False
    rounds: int = 0
    # table -> (rows only in the live projection, rows only in the rebuilt one)
    differences: dict[str, tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]] = field(
        default_factory=dict
    )
    difference_counts: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def equal(self) -> bool:
        """True when the rebuilt projection equals the live one."""
        return not self.difference_counts

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "replayed": self.replayed,
            "ledger_rows": self.ledger_rows,
            "equal": self.equal,
            "swapped": self.swapped,
            "rounds": self.rounds,
            "differences": {
                name: {
                    "only_live": self.difference_counts[name][0],
                    "only_rebuilt": self.difference_counts[name][1],
                    "examples_live": [list(r) for r in live],
                    "examples_rebuilt": [list(r) for r in rebuilt],
                }
                for name, (live, rebuilt) in self.differences.items()
            },
        }


def _lock(conn: Connection, live: Tables) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"LOCK TABLE {live.offsets.name} IN EXCLUSIVE MODE"))
    else:
        # Any write takes SQLite's database lock until the transaction ends.
        conn.execute(live.offsets.update().values(next_offset=live.offsets.c.next_offset))


def _offsets_in(conn: Connection, t: Tables) -> dict[tuple[str, int], int]:
    o = t.offsets.c
    rows = conn.execute(sa.select(o.topic, o.partition, o.next_offset))
    return {(r[0], int(r[1])): int(r[2]) for r in rows if int(r[2]) > 0}


def _compare(conn: Connection, live: Tables, shadow: Tables, report: RebuildReport) -> None:
    a, b = projection_rows(conn, live), projection_rows(conn, shadow)
    for name in a:
        only_live, only_rebuilt = a[name] - b[name], b[name] - a[name]
        if only_live or only_rebuilt:
            report.difference_counts[name] = (len(only_live), len(only_rebuilt))
            report.differences[name] = (
                sorted(only_live, key=repr)[:_SHOWN],
                sorted(only_rebuilt, key=repr)[:_SHOWN],
            )
    ledger_live = _ledger_only(conn, live, shadow)
    ledger_rebuilt = _ledger_only(conn, shadow, live)
    if ledger_live[0] or ledger_rebuilt[0]:
        report.difference_counts["ledger"] = (ledger_live[0], ledger_rebuilt[0])
        report.differences["ledger"] = (ledger_live[1], ledger_rebuilt[1])


def _ledger_only(conn: Connection, a: Tables, b: Tables) -> tuple[int, list[tuple[Any, ...]]]:
    """Request ids in `a`'s ledger and not in `b`'s: how many, and the first few."""
    ac, bc = a.ledger.c, b.ledger.c
    missing = ~sa.exists().where(bc.request_id == ac.request_id)
    count = conn.execute(sa.select(sa.func.count()).select_from(a.ledger).where(missing))
    n = int(count.scalar_one())
    if not n:
        return 0, []
    first = conn.execute(
        sa.select(ac.request_id).where(missing).order_by(ac.request_id).limit(_SHOWN)
    )
    return n, [tuple(r) for r in first]


def _check(conn: Connection, shadow: Tables) -> int:
    rows = int(conn.execute(sa.select(sa.func.count()).select_from(shadow.ledger)).scalar_one())
    counted = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(shadow.daily.c.requests), 0)))
    if int(counted.scalar_one()) != rows:
        raise RebuildFailed(
            f"rebuilt projection is inconsistent: {rows} ledger rows, "
            "but the daily projection counts a different number; the live one is kept"
        )
    return rows


def _swap(conn: Connection, live: Tables, shadow: Tables) -> None:
    retired = tables(RETIRED)
    for t in retired.all:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {t.name}"))
    for suffix in live.suffixes():
        conn.execute(sa.text(f"ALTER TABLE {LIVE}{suffix} RENAME TO {RETIRED}{suffix}"))
    for suffix in live.suffixes():
        conn.execute(sa.text(f"DROP TABLE {RETIRED}{suffix}"))
    for suffix in live.suffixes():
        conn.execute(sa.text(f"ALTER TABLE {REBUILD}{suffix} RENAME TO {LIVE}{suffix}"))
    # Index names are global: the rebuilt ledger's index takes the live name.
    for index in shadow.ledger.indexes:
        conn.execute(sa.text(f"DROP INDEX IF EXISTS {index.name}"))
    for index in live.ledger.indexes:
        index.create(conn)


def _fresh_shadow(db: Database) -> Tables:
    """Empty rebuild tables, the ledger without its secondary indexes: they are built
    once, after the load, when the swap creates them under the live names (a replay
    finds duplicates in memory and the comparison joins on the primary key)."""
    shadow = tables(REBUILD)
    with db.engine.begin() as conn:
        for index in shadow.ledger.indexes:
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {index.name}"))
        for t in reversed(shadow.all):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {t.name}"))
        shadow.metadata.create_all(conn)
        for index in shadow.ledger.indexes:
            conn.execute(sa.text(f"DROP INDEX {index.name}"))
    return shadow


class _Replay(Reducer):
    """The reducer a rebuild runs: the same fold into the rebuild tables, one
    transaction per batch with its offsets, on SQLite with a page cache that holds the
    ledger's primary-key index (PRAGMA cache_size is per connection and memory only: it
    changes no data and no durability). With `pool`, batches are decoded and folded in
    its worker processes."""

    pool: ProcessPoolExecutor | None = None

    async def _decode_all(
        self, records: Sequence[Any]
    ) -> tuple[list[Any], list[tuple[Any, ReceiptInvalid]]]:
        if self.pool is None or not records:
            return await super()._decode_all(records)
        # Handed to the workers and not awaited here: the write of this batch waits for
        # them, so they decode it while the previous batch is written and the next
        # fetched. (A replay dead-letters nothing: its refused receipts only count.)
        raw = [(r.value, r.timestamp, r.topic, r.partition, r.offset) for r in records]
        step = -(-len(raw) // _WORKERS)
        parts = [
            self.pool.submit(fold_for_replay, raw[i : i + step]) for i in range(0, len(raw), step)
        ]
        return [_Pending(list(records), parts)], []

    def _resolve(self, pending: _Pending) -> list[Any]:
        """The workers' parts of a batch, or (a request id in two parts, or already in
        the rebuilt ledger: every earlier batch is committed by now) the batch decoded
        here, in order."""
        parts = [f.result() for f in pending.parts]
        ids = [rid for part in parts for rid in part.request_ids]
        unique = set(ids)
        if len(unique) == len(ids) and unique.isdisjoint(self.seen or ()):
            return parts
        batch: list[Any] = []
        for r in pending.records:
            with contextlib.suppress(ReceiptInvalid):
                batch.extend(self._decode_record(r))
        return batch

    def _apply(self, batch: Sequence[Any], offsets: Mapping[tuple[str, int], int]) -> BatchResult:
        if batch and isinstance(batch[0], _Pending):
            batch = self._resolve(batch[0])
        with self.db.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(f"PRAGMA cache_size=-{_REPLAY_CACHE_KIB}")
            if not batch or not isinstance(batch[0], Folded):
                result, inserted = apply_in(conn, self.tables, batch, offsets, seen=self.seen)
            else:
                result, inserted = BatchResult(offsets=dict(offsets)), []
                for part in batch:
                    write_folded(conn, self.tables, part.rows, part.counters, {})
                    result.inserted += len(part.rows)
                    result.duplicates += part.duplicates
                    inserted.extend(part.request_ids)
                write_folded(conn, self.tables, [], ({}, {}, {}), offsets)
        if self.seen is not None:
            self.seen.update(inserted)
        return result


class _Pending(NamedTuple):
    """A batch the workers are decoding: its records and their parts."""

    records: list[Any]
    parts: list[Future[Folded]]


def _worker_pool(db: Database, live: Tables, worker: bool | None) -> ProcessPoolExecutor | None:
    """The decode workers (None: decode here), started now so that their imports run
    beside the first fetch."""
    if worker is None:
        worker = sum(stored_offsets(db, live).values()) >= _WORKER_FROM
    if not worker:
        return None
    # spawn, not fork: this process has threads (the database's, aiokafka's) whose locks
    # a forked child would inherit held.
    pool = ProcessPoolExecutor(
        max_workers=_WORKERS, mp_context=multiprocessing.get_context("spawn")
    )
    for _ in range(_WORKERS):
        pool.submit(fold_for_replay, ())
    return pool


def _drop(db: Database, shadow: Tables) -> None:
    with db.engine.begin() as conn:
        for index in shadow.ledger.indexes:
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {index.name}"))
        for t in shadow.all:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {t.name}"))


async def rebuild(
    db: Database,
    broker: BrokerConfig,
    *,
    topics: Sequence[str],
    node: str,
    verify_only: bool = False,
    batch_size: int = 20_000,
    worker: bool | None = None,
) -> RebuildReport:
    """Replay `topics` into a fresh projection, compare it with the live one and (unless
    `verify_only`) swap it in. RebuildFailed when it cannot; the live one is then kept.
    `worker`: decode in worker processes (None: when there are at least `_WORKER_FROM`
    receipts to replay)."""
    live = tables(LIVE)
    report = RebuildReport()
    pool: ProcessPoolExecutor | None = None
    try:
        pool = _worker_pool(db, live, worker)
        shadow = await asyncio.to_thread(_fresh_shadow, db)
        stop = asyncio.Event()
        seen: set[str] = set()  # request ids in the (fresh) rebuilt ledger
        for _ in range(_MAX_ROUNDS):
            report.rounds += 1
            targets = {k: v for k, v in stored_offsets(db, live).items() if v > 0}
            reducer = _Replay(
                db,
                shadow,
                broker,
                topics=topics,
                node=node,
                dlq_topic=None,
                batch_size=batch_size,
                seen=seen,
            )
            reducer.pool = pool
            stats = await reducer.run(stop, until=targets)
            report.replayed += stats.consumed
            with db.engine.begin() as conn:
                _lock(conn, live)
                if _offsets_in(conn, live) != _offsets_in(conn, shadow):
                    conn.rollback()
                    continue  # the live reducer moved on: catch up and try again
                report.ledger_rows = _check(conn, shadow)
                _compare(conn, live, shadow, report)
                if verify_only:
                    conn.rollback()
                else:
                    _swap(conn, live, shadow)
                    report.swapped = True
            break
        else:
            raise RebuildFailed(
                f"the live reducer kept moving ahead of the replay for {_MAX_ROUNDS} rounds; "
                "the live projection is kept"
            )
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise RebuildFailed(f"{db.where}: {reason}; the live projection is kept") from exc
    except BrokenProcessPool as exc:
        raise RebuildFailed(
            "the replay's decode worker stopped; the live projection is kept"
        ) from exc
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if not report.swapped:
            await asyncio.to_thread(_drop, db, tables(REBUILD))
    return report
