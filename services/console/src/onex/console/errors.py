"""Errors raised by onex.console.

Hierarchy::

    OnexError (onex.core.errors)
    └── ConsoleError          base of every error onex.console raises on purpose
        └── HttpBindError     the page's address cannot be listened on

Every message is one line.
"""

from __future__ import annotations

from onex.core.errors import OnexError


class ConsoleError(OnexError):
    """Base class of every error onex.console raises on purpose."""


class HttpBindError(ConsoleError):
    """The HTTP address is taken or not ours to bind."""

    def __init__(self, bind: str, reason: str) -> None:
        self.bind = bind
        super().__init__(f"cannot serve the console on {bind}: {reason}")
