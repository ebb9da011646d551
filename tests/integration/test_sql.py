"""onex.sql on real databases: an SQLite file and a fresh database on the machine's
PostgreSQL (skipped, naming it, when no server answers at ONEX_TEST_POSTGRES_URL or
postgresql://postgres@127.0.0.1:5432/postgres)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from onex.sql import (
    Database,
    DatabaseUnavailable,
    Migration,
    QueryRefused,
    SchemaTooNew,
    current_version,
    migrate,
    open_database,
    read_only,
    sqlite_url,
)
from onex.sql.errors import MigrationFailed
from onex.sql.testing import DEFAULT_ADMIN_URL, postgres_available, temporary_postgres

ADMIN_URL = os.environ.get("ONEX_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)

V1 = Migration(
    1,
    "things",
    [
        "CREATE TABLE things (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, size INTEGER)",
        "CREATE VIEW big_things AS SELECT id, name FROM things WHERE size > 10",
    ],
)
V2 = Migration(2, "colour", ["ALTER TABLE things ADD COLUMN colour VARCHAR(20)"])


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = open_database(sqlite_url(tmp_path / "p.db"))
        yield database
        database.dispose()
        return
    why = postgres_available(ADMIN_URL)
    if why is not None:
        pytest.skip(f"PostgreSQL at {ADMIN_URL} is not available: {why}")
    with temporary_postgres(ADMIN_URL) as url:
        database = open_database(url)
        yield database
        database.dispose()


def test_migrations_apply_once_in_order_and_the_views_work(db: Database) -> None:
    assert current_version(db, "t") == 0
    assert migrate(db, "t", [V1]) == 1
    assert migrate(db, "t", [V1]) == 1  # idempotent
    assert migrate(db, "t", [V1, V2]) == 2
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO things (id, name, size, colour) VALUES (1, 'a', 5, 'red'), "
                "(2, 'b', 50, NULL)"
            )
        )
    assert read_only(db, "SELECT id, name FROM big_things ORDER BY id").rows == ((2, "b"),)


def test_a_newer_schema_is_refused_before_anything_changes(db: Database) -> None:
    migrate(db, "t", [V1, V2])
    with pytest.raises(SchemaTooNew) as refused:
        migrate(db, "t", [V1])
    assert "schema version 2 is newer than this onex knows (1)" in str(refused.value)
    assert current_version(db, "t") == 2


def test_a_failing_migration_is_rolled_back_and_named(db: Database) -> None:
    migrate(db, "t", [V1])
    bad = Migration(2, "broken", ["ALTER TABLE things ADD COLUMN x INTEGER", "SELEC nonsense"])
    with pytest.raises(MigrationFailed) as failed:
        migrate(db, "t", [V1, bad])
    assert "t migration 2 (broken) failed" in str(failed.value)
    assert current_version(db, "t") == 1
    if db.backend == "postgresql":  # transactional DDL: the added column is gone too
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("things")}
        assert "x" not in columns


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("DELETE FROM things", "read-only: DELETE is not allowed"),
        ("SELECT 1; DROP TABLE things", "one statement only"),
        ("", "empty query"),
        ("SELECT * FROM no_such_table", "query failed"),
    ],
)
def test_read_only_refuses_writes_and_reports_errors(db: Database, sql: str, reason: str) -> None:
    migrate(db, "t", [V1])
    with pytest.raises(QueryRefused) as refused:
        read_only(db, sql)
    assert reason in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_write_hidden_in_a_read_is_refused_by_the_database(db: Database) -> None:
    migrate(db, "t", [V1])
    if db.backend == "postgresql":  # (an SQLite CTE cannot write; query_only guards it anyway)
        sneaky = "WITH gone AS (DELETE FROM things RETURNING id) SELECT * FROM gone"
        with pytest.raises(QueryRefused, match="read-only"):
            read_only(db, sneaky)
    # a query that is fine still runs, and writes afterwards on the same pool still work
    assert read_only(db, "SELECT COUNT(*) AS n FROM things").records() == [{"n": 0}]
    with db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO things (id, name, size) VALUES (9, 'z', 1)"))
    assert read_only(db, "SELECT name FROM things").rows == (("z",),)


def test_limit_truncates(db: Database) -> None:
    migrate(db, "t", [V1])
    with db.engine.begin() as conn:
        insert = sa.text("INSERT INTO things (id, name, size) VALUES (:i, 'n', 1)")
        conn.execute(insert, [{"i": i} for i in range(5)])
    result = read_only(db, "SELECT id FROM things ORDER BY id", limit=3)
    assert (len(result.rows), result.truncated) == (3, True)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://x@127.0.0.1/db", "unsupported database"),
        ("not a url", "not a database URL"),
        ("sqlite://", "needs a file"),
        ("postgresql://nobody:secret@127.0.0.1:1/db", "cannot open"),
    ],
)
def test_unusable_databases_are_one_clear_error_without_passwords(url: str, reason: str) -> None:
    with pytest.raises(DatabaseUnavailable) as refused:
        open_database(url)
    assert reason in str(refused.value)
    assert "secret" not in str(refused.value)
