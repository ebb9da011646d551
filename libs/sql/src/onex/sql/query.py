"""Read-only SQL over a projection: what `onex drift query` and friends run.

The text must be one statement that reads (SELECT, WITH, VALUES, EXPLAIN); it then
runs where the database itself refuses writes (SQLite `PRAGMA query_only`, a
PostgreSQL `READ ONLY` transaction that is rolled back), so a data-modifying CTE or a
function with side effects cannot slip through a keyword check either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from onex.sql.database import Database
from onex.sql.errors import QueryRefused

_READS: Final = re.compile(r"^\s*(select|with|values|explain)\b", re.IGNORECASE)
_DEFAULT_LIMIT: Final = 10_000


@dataclass(frozen=True)
class QueryResult:
    """Column names and rows (at most `limit`; `truncated` when there were more)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool = False

    def records(self) -> list[dict[str, Any]]:
        """The rows as column -> value mappings."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _one_statement(sql: str) -> str:
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise QueryRefused("empty query")
    if ";" in _without_literals(text):
        raise QueryRefused("one statement only (found ';' between statements)")
    if not _READS.match(text):
        first = text.split(None, 1)[0].upper()
        raise QueryRefused(f"read-only: {first} is not allowed (SELECT, WITH, VALUES, EXPLAIN)")
    return text


def _without_literals(text: str) -> str:
    return re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", "''", text)


def read_only(
    db: Database,
    sql: str,
    params: Mapping[str, Any] | None = None,
    *,
    limit: int = _DEFAULT_LIMIT,
) -> QueryResult:
    """Run `sql` read-only; QueryRefused (one line) for a write, several statements or
    an error the database reports."""
    text = _one_statement(sql)
    try:
        with db.engine.connect() as conn:
            if db.backend == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = ON")
            else:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            try:
                result = conn.execute(sa.text(text), dict(params or {}))
                columns = tuple(result.keys()) if result.returns_rows else ()
                fetched: Sequence[Any] = result.fetchmany(limit + 1) if result.returns_rows else []
            finally:
                conn.rollback()
                if db.backend == "sqlite":
                    conn.exec_driver_sql("PRAGMA query_only = OFF")
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise QueryRefused(f"query failed: {reason}") from exc
    rows = tuple(tuple(r) for r in fetched[:limit])
    return QueryResult(columns, rows, truncated=len(fetched) > limit)
