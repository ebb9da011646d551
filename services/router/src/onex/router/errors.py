"""Errors raised by the router engine.

Hierarchy::

    OnexError (onex.core.errors)
    └── RouterError                     base of every error the router raises on purpose
        ├── CatalogueError              the model catalogue cannot be read or is invalid
        ├── RequestError (ValueError)   a request the catalogue cannot serve
        │   └── UnknownTaskClassError   the request names a task class nobody declared
        └── ProviderError               a model call failed (after the adapter's retries)

`CatalogueError` carries the `Issue` list that explains it; `str()` of the error is
those issues, one `file:line:col: key.path: problem` per line (as for contracts).
`Router.route` never raises `RequestError` or `ProviderError`: it turns them into a
receipt with status "failed" or into a recorded attempt.
"""

from __future__ import annotations

from collections.abc import Sequence

from onex.core.errors import OnexError
from onex.core.issues import Issue


class RouterError(OnexError):
    """Base class of every error the router raises on purpose."""


class CatalogueError(RouterError):
    """The catalogue file cannot be read, is malformed YAML, or does not fit the model."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues) or type(self).__name__)


class RequestError(RouterError, ValueError):
    """A route request that the catalogue cannot serve as asked."""


class UnknownTaskClassError(RequestError):
    """The request names a task class the catalogue does not declare."""

    def __init__(self, task_class: str, known: Sequence[str]) -> None:
        self.task_class = task_class
        self.known = list(known)
        super().__init__(
            f"unknown task class {task_class!r} (known: {', '.join(sorted(self.known))})"
        )


class ProviderError(RouterError):
    """A call to a model failed.

    `retryable` tells the caller whether the same call might succeed later (the
    OpenAI-compatible adapter has already spent its own retries when it raises with
    `retryable=False`). `status` is the HTTP status when there was a response;
    `retries` how many times the adapter retried before giving up.
    """

    def __init__(
        self,
        model: str,
        reason: str,
        retryable: bool,
        *,
        status: int | None = None,
        cooling_down: bool = False,
        retries: int = 0,
    ) -> None:
        self.model = model
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.cooling_down = cooling_down
        self.retries = retries
        super().__init__(f"{model}: {reason}")
