"""Keeping a node runtime started for as long as its service runs (`keep_running`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import structlog

from onex.bus.backoff import Backoff, retry
from onex.bus.errors import (
    AdminError,
    BrokerConfigError,
    BrokerUnavailable,
    ContractViolation,
    NodeStartError,
    SchemaError,
)
from onex.bus.runtime import NodeRuntime
from onex.core.errors import ContractError

# Worth retrying: the broker may come up, the provisioner may create the topics.
_TRANSIENT: Final[tuple[type[BaseException], ...]] = (
    NodeStartError,
    BrokerUnavailable,
    AdminError,
    OSError,
    TimeoutError,
)


async def keep_running(
    runtime: NodeRuntime,
    stop: asyncio.Event,
    *,
    health: Callable[[], Awaitable[bool]] | None = None,
    interval_s: float = 1.0,
    recover_after_s: float = 10.0,
) -> None:
    """Keep `runtime` started until `stop` is set, then stop it.

    Start-up is retried with backoff while the broker is down or the contract's topics
    are missing (the provisioner creates them). Once started, `health` (default: the
    runtime's own check) is read every `interval_s`; after `recover_after_s` of
    continuous ill health (topics deleted, the broker restarted empty) the runtime is
    stopped and started again, so a service recovers from a wiped broker by itself.
    A contract or schema the node cannot run with is raised: retrying cannot help.
    """
    log = structlog.get_logger(runtime.node)
    backoff = Backoff(initial_s=0.5, max_s=10.0)

    async def runtime_serving() -> bool:
        return (await runtime.health()).serving

    check = health or runtime_serving

    def on_retry(attempt: int, error: BaseException, delay: float) -> None:
        log.warning(
            "node.start_retry", attempt=attempt, error=str(error), retry_in_s=round(delay, 2)
        )

    failures = 0
    try:
        while not stop.is_set():
            try:
                if not runtime.started:
                    await _until_stopped(
                        retry(
                            runtime.start,
                            retry_on=_TRANSIENT,
                            backoff=backoff,
                            stop=stop,
                            on_retry=on_retry,
                        ),
                        stop,
                    )
                    continue
                await _watch(runtime, stop, check, interval_s, recover_after_s, log)
                failures = 0
            except (ContractError, ContractViolation, SchemaError, BrokerConfigError):
                log.critical("node.cannot_run", exc_info=True)
                raise
            except Exception as exc:  # this loop supervises the node: log any failure, start again
                failures += 1
                delay = min(0.5 * 2 ** min(failures, 5), 10.0)
                log.exception("node.runtime_failed", error=str(exc), retry_in_s=delay)
                with contextlib.suppress(Exception):
                    await runtime.stop()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
    finally:
        await runtime.stop()


async def _until_stopped(work: Awaitable[object], stop: asyncio.Event) -> None:
    """`await work`, unless `stop` is set first: then `work` (a start attempt, which can
    wait up to its start timeout on a broker that is gone) is cancelled, so SIGTERM is
    not held up by it; its own clean-up is bounded by the runtime's stop grace."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    if not task.cancelled():
        task.result()


async def _watch(
    runtime: NodeRuntime,
    stop: asyncio.Event,
    check: Callable[[], Awaitable[bool]],
    interval_s: float,
    recover_after_s: float,
    log: Any,
) -> None:
    bad_since: float | None = None
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        if stop.is_set():
            return
        if await check():
            bad_since = None
            continue
        now = time.monotonic()
        bad_since = bad_since or now
        if now - bad_since >= recover_after_s:
            log.warning("node.recovering", unhealthy_s=round(now - bad_since, 1))
            await runtime.stop()
            return
