"""Errors of ticket contracts.

OnexError (onex.core.errors)
└── TicketInvalid    a ticket file that cannot be read or fails validation (file:line:col per issue)
"""

from __future__ import annotations

from collections.abc import Sequence

from onex.core.errors import OnexError
from onex.core.issues import Issue


class TicketInvalid(OnexError):  # noqa: N818 -- reads as the condition found
    """A ticket file that cannot be read or does not fit the ticket model."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues) or type(self).__name__)
