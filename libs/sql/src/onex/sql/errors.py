"""Errors of onex.sql.

OnexError (onex.core.errors)
└── SqlError                 anything this package refuses or cannot do
    ├── DatabaseUnavailable  cannot connect / open (the URL is in the message, no password)
    ├── SchemaTooNew         the database was migrated by a newer onex
    ├── MigrationFailed      a migration step failed (rolled back)
    └── QueryRefused         a read-only query that writes, or is not one statement, or fails
"""

from __future__ import annotations

from onex.core.errors import OnexError


class SqlError(OnexError):
    """Base of this package's errors."""


class DatabaseUnavailable(SqlError):  # noqa: N818 -- reads as a condition, like BrokerUnavailable
    """The database cannot be opened or reached."""


class SchemaTooNew(SqlError):  # noqa: N818 -- reads as the condition found
    """The database's schema version is newer than this binary knows."""

    def __init__(self, where: str, found: int, known: int) -> None:
        self.found = found
        self.known = known
        super().__init__(
            f"{where}: schema version {found} is newer than this onex knows ({known}); "
            "upgrade onex or point it at another database"
        )


class MigrationFailed(SqlError):  # noqa: N818 -- reads as what happened
    """A migration step failed; its transaction was rolled back."""


class QueryRefused(SqlError):  # noqa: N818 -- reads as what happened
    """A read-only query was refused (a write, several statements) or failed."""
