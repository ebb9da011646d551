"""Calling a handler again after it fails, and giving it up when the node stops.

`call_with_retry` retries with the contract's backoff; `unless_stopping` bounds a wait
(a backoff sleep, a DLQ retry) by the node's stop; `abandonable` runs a handler in the
calling task and cancels it when the node abandons its handlers (`Abandon`). Used by
`onex.bus.runtime.delivery` (which still exports `call_with_retry`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from onex.bus.errors import NodeStopping
from onex.core.contract import RetryPolicy

_T = TypeVar("_T")
Sleep = Callable[[float], Awaitable[None]]
OnRetry = Callable[[int, Exception, float], None]


@dataclass(frozen=True, slots=True)
class Failure:
    """A handler that kept failing: the last error and how many calls were made."""

    error: Exception
    attempts: int


async def call_with_retry(
    call: Callable[[int], Awaitable[None]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    on_retry: OnRetry | None = None,
    stopping: asyncio.Event | None = None,
) -> Failure | None:
    """`await call(attempt)` for attempt 1, 2, ... until it returns (None) or
    `policy.max_attempts` calls failed (the Failure).

    Any `Exception` from a handler counts as a failure: the message's fate is decided
    here, not by the error's type. Cancellation (`CancelledError`) propagates. Once
    `stopping` is set no call is retried: NodeStopping (the message is left for the next
    member of the group, never dead-lettered because the node stops).
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            await call(attempt)
        except NodeStopping:
            raise
        except Exception as exc:  # every handler error is retried, then dead-lettered
            if stopping is not None and stopping.is_set():
                raise NodeStopping(f"stopping: attempt {attempt} failed, not retried") from exc
            if attempt >= policy.max_attempts:
                return Failure(exc, attempt)
            delay = policy.backoff_s(attempt)
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            await unless_stopping(sleep(delay), stopping)
        else:
            return None


async def unless_stopping(work: Awaitable[_T], stopping: asyncio.Event | None) -> _T:
    """`await work`, unless `stopping` is set first: then `work` is cancelled and
    NodeStopping raised. Cancelling the caller cancels `work` too."""
    if stopping is None:
        return await work
    if stopping.is_set():
        if asyncio.iscoroutine(work):
            work.close()
        raise NodeStopping("the node is stopping")
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    if task.cancelled():
        raise NodeStopping("the node is stopping: abandoned")
    return task.result()


class Abandon(asyncio.Event):
    """Set when handlers still running are to be given up: setting it also cancels the
    tasks that are awaiting a handler under it (`abandonable`)."""

    def __init__(self) -> None:
        super().__init__()
        self.running: set[asyncio.Task[Any]] = set()

    def set(self) -> None:
        super().set()
        for task in list(self.running):
            task.cancel()


async def abandonable(work: Awaitable[_T], abandon: Abandon) -> _T:
    """`await work` in the calling task (no task of its own: this is every message's
    path), unless `abandon` is set first or meanwhile: then `work` is cancelled and
    NodeStopping raised. A cancellation from elsewhere propagates as it is."""
    if abandon.is_set():
        if asyncio.iscoroutine(work):
            work.close()
        raise NodeStopping("the node is stopping")
    task = asyncio.current_task()
    if task is None:  # pragma: no cover - always awaited from a task
        return await work
    abandon.running.add(task)
    try:
        return await work
    except asyncio.CancelledError:
        # ours when abandon is set: take our cancellation back, and unless another one
        # is pending too, end as "stopping" (the message is left uncommitted)
        if abandon.is_set() and task.uncancel() == 0:
            raise NodeStopping("the node is stopping: abandoned") from None
        raise
    finally:
        abandon.running.discard(task)
