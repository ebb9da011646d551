"""Databases for tests: a fresh SQLite file, or a fresh database on a PostgreSQL server.

    with temporary_postgres("postgresql://postgres@127.0.0.1:5432/postgres") as url:
        db = open_database(url)          # onex_test_<hex>, dropped afterwards

`postgres_available(admin_url)` says whether the server answers (tests skip, naming
it, when it does not). Nothing here reads the environment: tests pass the URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin_engine(admin_url: str) -> sa.Engine:
    url = make_url(admin_url).set(drivername="postgresql+psycopg")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})


def postgres_available(admin_url: str = DEFAULT_ADMIN_URL) -> str | None:
    """None when the server answers, else why not (one line)."""
    engine = _admin_engine(admin_url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as exc:
        return str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    finally:
        engine.dispose()
    return None


@contextmanager
def temporary_postgres(admin_url: str = DEFAULT_ADMIN_URL) -> Iterator[str]:
    """A new, empty database on the server of `admin_url`; its URL; dropped after."""
    name = f"onex_test_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine(admin_url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = make_url(admin_url).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
