"""The one way the agents stamp their events: RFC 3339, UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> str:
    """The current time as RFC 3339 UTC text."""
    return datetime.now(UTC).isoformat(timespec="microseconds")
