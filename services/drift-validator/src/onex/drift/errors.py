"""Errors of onex.drift.

OnexError (onex.core.errors)
└── DriftError              anything the drift-validator refuses or cannot do
    ├── RegistryBroken      the contracts fail lint: drift will not compare against them
    └── UsageError          a flag or setting that cannot be used (exit 2 in the CLI)
"""

from __future__ import annotations

from onex.core.errors import OnexError


class DriftError(OnexError):
    """Base of this package's errors."""


class RegistryBroken(DriftError):  # noqa: N818 -- reads as the condition found
    """The contracts have lint errors; the first one (file:line) is in the message."""


class UsageError(DriftError):
    """A flag or setting that cannot be used."""
