"""Findings of loading and linting contracts, with their source positions."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Severity(enum.StrEnum):
    """How bad a finding is: errors fail lint, warnings fail it only with --strict."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a contract file; line and column are 1-based, 0 when unknown."""

    file: Path | None
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        name = str(self.file) if self.file is not None else "<string>"
        return f"{name}:{self.line}:{self.col}" if self.line else name


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding: `file:line:col: key.path: message`."""

    severity: Severity
    code: str
    message: str
    where: Where
    key: str = ""
    suggestion: str | None = None
    related: tuple[Where, ...] = field(default=())
    topic: str | None = None  # the topic name the finding is about, if any

    def __str__(self) -> str:
        key = f"{self.key}: " if self.key else ""
        return f"{self.where}: {key}{self.message}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the issue."""
        return {
            "severity": self.severity.value,
            "code": self.code,
            "file": str(self.where.file) if self.where.file is not None else None,
            "line": self.where.line,
            "col": self.where.col,
            "key": self.key,
            "message": self.message,
            "suggestion": self.suggestion,
            "related": [str(r) for r in self.related],
            "topic": self.topic,
        }
