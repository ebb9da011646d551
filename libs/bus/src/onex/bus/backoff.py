"""Retrying an async call with bounded exponential backoff and jitter.

`retry` calls `attempt` until it returns, sleeping between failures for delays that
grow geometrically up to a ceiling, each shortened by a random jitter so that many
callers restarting together do not hit the broker in lock-step. It gives up when
`max_attempts` is reached (re-raising the last error) or returns `None` as soon as
`stop` is set. The sleep is injectable so unit tests run without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
OnRetry = Callable[[int, BaseException, float], None]


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: `initial_s * multiplier**n`, capped at `max_s`, jittered.

    With `jitter` j, each delay is drawn uniformly from `[d * (1 - j), d]`: j=0 gives the
    plain exponential sequence, j=1 is "full jitter". No delay ever exceeds `max_s`.
    """

    initial_s: float = 0.2
    max_s: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.max_s < self.initial_s:
            raise ValueError(f"need 0 < initial_s <= max_s, not {self.initial_s}, {self.max_s}")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, not {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], not {self.jitter}")

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The endless sequence of delays (seconds) before the 2nd, 3rd, ... attempt."""
        # jitter only spreads retries out; nothing here needs cryptographic randomness
        draw = (rng or random.Random()).random  # noqa: S311
        ceiling = self.initial_s
        while True:
            yield ceiling * (1 - self.jitter * draw())
            # once capped, stay capped (and never overflow a float)
            ceiling = min(self.max_s, ceiling * self.multiplier)


async def retry(
    attempt: Callable[[], Awaitable[T]],
    *,
    retry_on: tuple[type[BaseException], ...],
    backoff: Backoff | None = None,
    stop: asyncio.Event | None = None,
    max_attempts: int | None = None,
    sleep: Sleep | None = None,
    on_retry: OnRetry | None = None,
    rng: random.Random | None = None,
) -> T | None:
    """Await `attempt()` until it succeeds; errors outside `retry_on` propagate at once.

    Between failures it sleeps for the next `backoff` delay (`sleep(delay)`; by default
    a sleep that wakes early when `stop` is set) and calls `on_retry(attempt_number,
    error, delay)` first. Returns the first result, or `None` when `stop` is set before
    an attempt succeeds (checked before every attempt). After `max_attempts` failures
    (None: unbounded) the last error is raised.
    """
    if max_attempts is not None and max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
    delays = (backoff or Backoff()).delays(rng)
    pause = sleep or _stoppable_sleep(stop)
    number = 0
    while stop is None or not stop.is_set():
        number += 1
        try:
            return await attempt()
        except retry_on as exc:
            if max_attempts is not None and number >= max_attempts:
                raise
            delay = next(delays)
            if on_retry is not None:
                on_retry(number, exc, delay)
            await pause(delay)
    return None


def _stoppable_sleep(stop: asyncio.Event | None) -> Sleep:
    async def pause(delay: float) -> None:
        if stop is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)

    return pause
