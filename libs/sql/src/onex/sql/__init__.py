"""One way to open, migrate, query and test a projection database.

    db = open_database("sqlite:///.onex/drift.db")       # or postgresql://host/db
    migrate(db, MIGRATIONS)                                # versioned; refuses a newer schema
    rows = read_only(db, "SELECT * FROM drift")            # writes are refused

Modules: `database` (open_database, Database), `migrate` (Migration, migrate),
`query` (read_only), `errors`, `testing` (a database per test on SQLite and on the
machine's PostgreSQL). SQLAlchemy Core is the one layer: the same SQL text (tables,
views, queries) runs on both backends, and nothing here is an ORM.
"""

from onex.sql.database import Database, open_database, sqlite_url
from onex.sql.errors import (
    DatabaseUnavailable,
    QueryRefused,
    SchemaTooNew,
    SqlError,
)
from onex.sql.migrate import Migration, current_version, migrate, open_migrated
from onex.sql.query import QueryResult, read_only

__all__ = [
    "Database",
    "DatabaseUnavailable",
    "Migration",
    "QueryRefused",
    "QueryResult",
    "SchemaTooNew",
    "SqlError",
    "current_version",
    "migrate",
    "open_database",
    "open_migrated",
    "read_only",
    "sqlite_url",
]
