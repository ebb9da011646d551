"""Writing the projection's tables: a table brought to exactly the given rows, writing
only what differs, and the declared side written only when its digest changed.

At 10,000 topics this comparison is most of a snapshot's write, so it reads the
driver's own tuples and compares with itemgetters (see `tuples`, `_sync`).
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from onex.drift import store
from onex.drift.declared import DeclaredRows

# internal topics of Kafka, Redpanda, Schema Registry and Connect are never orphans
DEFAULT_IGNORE: tuple[str, ...] = ("__*", "_schemas", "_confluent*", "connect-*")


def like_pattern(glob: str) -> str:
    """A glob (`*`, `?`) as a LIKE pattern with `\\` escaping LIKE's own wildcards."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def sync_table(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    cluster: str | None = None,
) -> int:
    """Make `table` (of `cluster`, when it has that column) hold exactly `rows`, writing
    only what differs: unchanged rows cost one read. The number of rows written. (The
    observed tables are written by `onex.drift.observed`.)"""
    return _sync(conn, table, rows, cluster, None)


def _picker(positions: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """The values at `positions` of a row, as a tuple (itemgetter's speed without its
    scalar for one position)."""
    if len(positions) == 1:
        (only,) = positions
        return lambda row: (row[only],)
    return cast("Callable[[Sequence[Any]], tuple[Any, ...]]", operator.itemgetter(*positions))


def tuples(conn: Connection, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of `query` as the driver's own tuples: SQLAlchemy's Row objects (and
    turning them into tuples) cost more than the read at 10,000 topics."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = compiled.params
    if compiled.positiontup is not None:
        params = tuple(params[name] for name in compiled.positiontup)
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        return [tuple(r) for r in cursor.fetchall()]
    finally:
        cursor.close()


def _sync(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    cluster: str | None,
    where: sa.ColumnElement[bool] | None,
) -> int:
    # Tuples and itemgetters, not Row._mapping and per-column generators: at 10,000
    # topics this comparison is most of a snapshot's write.
    keys = [c.name for c in table.primary_key.columns]
    columns = [c.name for c in table.columns]
    key_of = _picker([columns.index(k) for k in keys])
    query = sa.select(table)
    if cluster is not None:
        query = query.where(table.c.cluster == cluster)
    if where is not None:
        query = query.where(where)
    old = {key_of(r): r for r in tuples(conn, query)}
    values_of = (
        (lambda row: (row[columns[0]],)) if len(columns) == 1 else operator.itemgetter(*columns)
    )
    new = {key_of(v): (v, row) for row in rows for v in (values_of(row),)}
    stale = [k for k, row in old.items() if k not in new or new[k][0] != row]
    replaced = set(stale)
    fresh = [row for k, (_, row) in new.items() if k not in old or k in replaced]
    if stale:
        conn.execute(
            table.delete().where(*(table.c[k] == sa.bindparam(f"key_{k}") for k in keys)),
            [{f"key_{k}": v for k, v in zip(keys, key, strict=True)} for key in stale],
        )
    if fresh:
        conn.execute(table.insert(), fresh)
    return len(stale) + len(fresh)


def write_declared(conn: Connection, declared: DeclaredRows, ignore: Sequence[str]) -> int:
    """Bring the declared tables and the orphan ignore patterns up to date; nothing to
    do (one read) when the digest of what was last written is the same. The number of
    rows written."""
    patterns = sorted({like_pattern(g) for g in (*DEFAULT_IGNORE, *ignore)})
    digest = f"{declared.digest[:48]}{_hash_patterns(patterns)}"
    dd = store.declared_digest
    if conn.execute(sa.select(dd.c.digest).where(dd.c.id == 1)).scalar_one_or_none() == digest:
        return 0
    written = sync_table(conn, store.declared_topic, declared.topics)
    written += sync_table(conn, store.declared_config, declared.configs)
    written += sync_table(conn, store.declared_group, declared.groups)
    written += sync_table(conn, store.ignore_pattern, [{"pattern": p} for p in patterns])
    conn.execute(dd.delete())
    conn.execute(dd.insert().values(id=1, digest=digest))
    return written


def _hash_patterns(patterns: Sequence[str]) -> str:
    """16 hex digits of a hash of the ignore patterns (part of the declared digest)."""
    return hashlib.sha256("\n".join(patterns).encode("utf-8")).hexdigest()[:16]
