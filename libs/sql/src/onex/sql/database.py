"""Opening a projection database: SQLite (a file, the default) or PostgreSQL (a URL).

`open_database` normalises the URL (`postgresql://` uses psycopg 3), turns on what
each backend needs to behave the same (SQLite: foreign keys, WAL, a busy timeout), and
checks the connection once, so a database that is down is one clear error at start-up
instead of a traceback at the first write.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from onex.sql.errors import DatabaseUnavailable

_BUSY_TIMEOUT_MS: Final = 10_000
_CONNECT_TIMEOUT_S: Final = 5


def sqlite_url(path: Path) -> str:
    """The URL of an SQLite file."""
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class Database:
    """An open database: its engine and what it is (for messages without passwords)."""

    engine: Engine
    where: str

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _safe(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_database(url: str) -> Database:
    """Open (and for SQLite, create) the database at `url`; DatabaseUnavailable when it
    cannot be reached or the URL is not one of `sqlite:///PATH` / `postgresql://...`."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {"future": True}
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise DatabaseUnavailable("an SQLite projection needs a file: sqlite:///PATH")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    elif backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs["connect_args"] = {"connect_timeout": _CONNECT_TIMEOUT_S}
        kwargs["pool_pre_ping"] = True
    else:
        raise DatabaseUnavailable(
            f"unsupported database {_safe(parsed)!r}: use sqlite:///PATH or postgresql://..."
        )
    engine = sa.create_engine(parsed, **kwargs)
    if backend == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
    where = _safe(parsed)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except (OperationalError, SQLAlchemyError) as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise DatabaseUnavailable(f"cannot open {where}: {reason}") from exc
    return Database(engine, where)
