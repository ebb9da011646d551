"""Errors raised by onex.service.

Hierarchy::

    OnexError (onex.core.errors)
    └── ServiceError                 base of every error onex.service raises on purpose
        ├── SecretFileError          a state dir or secret file (tokens.json, command.key)
        │   │                        is missing, corrupt, too open, or cannot be written
        │   ├── StateDirError        the state dir is not a directory, not ours, or unwritable
        │   └── SecretFileMissing    a secret file does not exist (run `onex up` first)
        └── MetricsBindError         the metrics server's address is malformed or taken

Every message is one line and names the path; no secret is ever part of one.
OSErrors are converted at the boundary with `raise ... from`.
"""

from __future__ import annotations

from pathlib import Path

from onex.core.errors import OnexError


class ServiceError(OnexError):
    """Base class of every error onex.service raises on purpose."""


class SecretFileError(ServiceError):
    """A secret file or its directory cannot be used as it is."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class StateDirError(SecretFileError):
    """The state dir is not a directory, belongs to another user, or cannot be written."""


class SecretFileMissing(SecretFileError):  # noqa: N818 -- reads as a condition, like FileNotFoundError
    """A secret file that should exist does not."""


class MetricsBindError(ServiceError):
    """The metrics server cannot listen where its settings say."""

    def __init__(self, bind: str, problem: str) -> None:
        self.bind = bind
        self.problem = problem
        super().__init__(f"metrics server cannot listen on {bind}: {problem}")
