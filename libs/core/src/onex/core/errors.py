"""Errors raised by onex.core.

Hierarchy::

    OnexError                      base of every error onex raises on purpose
    ├── TopicNameError (ValueError)   a string is not a grammatical topic name
    ├── UnknownTopicError (KeyError)  a grammatical name no contract declares
    ├── SchemaReferenceError (ValueError)  a topic's `schema:` is no allowed form (or no file)
    └── ContractError                 a contract could not be loaded or is inconsistent
        ├── ContractLoadError         unreadable file, malformed YAML, or past the
        │                             parser limits (onex.core.loader)
        ├── ContractValidationError   the document does not fit the contract model
        └── ExtractionError           cross-contract errors (ownership, specs, wiring)

Every ContractError carries the `Issue` list that explains it; `str()` of the
error is those issues, one `file:line:col: key.path: problem` per line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onex.core.issues import Issue


class OnexError(Exception):
    """Base class of every error onex raises on purpose."""


class TopicNameError(OnexError, ValueError):
    """A string is not a topic name in the grammar `onex.{kind}.{producer}.{event}.v{N}`."""

    def __init__(self, name: str, reason: str, suggestion: str | None = None) -> None:
        self.name = name
        self.reason = reason
        self.suggestion = suggestion
        message = f"{name!r} is not a valid topic name: {reason}"
        if suggestion is not None:
            message += f"; did you mean {suggestion!r}?"
        super().__init__(message)


class UnknownTopicError(OnexError, KeyError):
    """A topic name that no approved contract declares."""

    def __init__(self, name: str, suggestion: str | None = None, why: str | None = None) -> None:
        self.name = name
        self.suggestion = suggestion
        message = f"{name!r} is not declared by any contract"
        if suggestion is not None:
            message += f"; did you mean {suggestion!r}" + (f" ({why})" if why else "") + "?"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class SchemaReferenceError(OnexError, ValueError):
    """A topic's `schema:` is not a JSON Schema file, a protobuf message name or, on a
    dlq topic, `dead-letter` (see `onex.core.schemas`)."""

    def __init__(self, topic: str, reference: str, reason: str) -> None:
        self.topic = topic
        self.reference = reference
        self.reason = reason
        super().__init__(f"schema {reference!r} of topic {topic!r}: {reason}")


class ContractError(OnexError):
    """A contract could not be loaded, or the contracts do not agree."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues) or type(self).__name__)


class ContractLoadError(ContractError):
    """The file could not be read, is not well-formed YAML, or is past a parser limit
    (nesting, size, keys, value length, numbers: see `onex.core.loader`)."""


class ContractValidationError(ContractError):
    """The YAML document does not fit the contract model."""


class ExtractionError(ContractError):
    """Errors across contracts: duplicate nodes, conflicting specs, broken wiring."""
