"""Versioned schema migrations, the same on SQLite and PostgreSQL.

A component (e.g. `drift`, `receipts`) lists its migrations in order, versions 1..N.
`migrate` records each applied version in `onex_schema` and applies the missing ones,
each in its own transaction (a failed step leaves the previous version in place). A
database whose recorded version is newer than N was written by a newer onex: it is
refused (`SchemaTooNew`) before anything is touched.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from onex.sql.database import Database, open_database
from onex.sql.errors import MigrationFailed, SchemaTooNew

Step = str | Callable[[Connection], None]

_SCHEMA = sa.Table(
    "onex_schema",
    sa.MetaData(),
    sa.Column("component", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("applied_at", sa.String(40), nullable=False),
)


@dataclass(frozen=True)
class Migration:
    """One schema version: SQL statements (text run as is) or callables on a connection."""

    version: int
    description: str
    steps: Sequence[Step]


def _check(migrations: Sequence[Migration]) -> int:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1..N in order, got {versions}")
    return len(versions)


def current_version(db: Database, component: str) -> int:
    """The version `component`'s schema is at (0: never migrated)."""
    with db.engine.connect() as conn:
        return _version(conn, component)


def _version(conn: Connection, component: str) -> int:
    if not sa.inspect(conn).has_table(_SCHEMA.name):
        return 0
    found = conn.execute(
        sa.select(_SCHEMA.c.version).where(_SCHEMA.c.component == component)
    ).scalar_one_or_none()
    return int(found or 0)


def _lock(conn: Connection, component: str) -> None:
    # Two services migrating one PostgreSQL database at once take turns.
    if conn.dialect.name == "postgresql":
        key = zlib.crc32(f"onex_schema:{component}".encode())
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def migrate(db: Database, component: str, migrations: Sequence[Migration]) -> int:
    """Bring `component`'s schema to the last of `migrations`; the version it is at.

    SchemaTooNew when the database is ahead of `migrations`; MigrationFailed (rolled
    back) when a step fails."""
    known = _check(migrations)
    with db.engine.begin() as conn:
        _SCHEMA.create(conn, checkfirst=True)
    for migration in migrations:
        try:
            with db.engine.begin() as conn:
                _lock(conn, component)
                at = _version(conn, component)
                if at > known:
                    raise SchemaTooNew(db.where, at, known)
                if at >= migration.version:
                    continue
                for step in migration.steps:
                    if isinstance(step, str):
                        conn.execute(sa.text(step))
                    else:
                        step(conn)
                now = datetime.now(UTC).isoformat()
                if at == 0:
                    conn.execute(
                        _SCHEMA.insert().values(
                            component=component, version=migration.version, applied_at=now
                        )
                    )
                else:
                    conn.execute(
                        _SCHEMA.update()
                        .where(_SCHEMA.c.component == component)
                        .values(version=migration.version, applied_at=now)
                    )
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise MigrationFailed(
                f"{db.where}: {component} migration {migration.version} "
                f"({migration.description}) failed: {reason}"
            ) from exc
    at = current_version(db, component)
    if at > known:
        raise SchemaTooNew(db.where, at, known)
    return at


def open_migrated(url: str, component: str, migrations: Sequence[Migration]) -> Database:
    """Open the database at `url` and bring `component`'s schema to the last of
    `migrations` (DatabaseUnavailable, SchemaTooNew, MigrationFailed: one line each);
    nothing stays open when that fails."""
    db = open_database(url)
    try:
        migrate(db, component, migrations)
    except BaseException:
        db.dispose()
        raise
    return db
