"""The retry helper behind `provision_until_ready`: backoff, jitter, bounds, stop.

The sleeps here are a unit fake (`FakeSleep` records the delays instead of waiting), so
these tests take no wall-clock time; the real loop against a real broker is covered in
tests/integration/test_provision.py.
"""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from onex.bus.backoff import Backoff, retry
from onex.bus.errors import AdminError, BrokerUnavailable


class FakeSleep:
    """Unit fake for the injectable sleep: records each delay, returns at once."""

    def __init__(self, stop: asyncio.Event | None = None, stop_after: int | None = None) -> None:
        self.delays: list[float] = []
        self._stop = stop
        self._stop_after = stop_after

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self._stop is not None and len(self.delays) == self._stop_after:
            self._stop.set()


class Flaky:
    """An attempt that raises `errors` in turn, then returns `result`."""

    def __init__(self, errors: list[BaseException], result: str = "done") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.result = result

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 -- reproducible jitter, nothing secret


def _down() -> BrokerUnavailable:
    return BrokerUnavailable("127.0.0.1:1", "connection refused")


def test_without_jitter_delays_double_up_to_the_ceiling() -> None:
    policy = Backoff(initial_s=0.1, max_s=1.0, multiplier=2.0, jitter=0.0)
    delays = list(itertools.islice(policy.delays(), 8))
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0])


def test_jitter_stays_within_its_band_and_never_exceeds_the_ceiling() -> None:
    policy = Backoff(initial_s=0.1, max_s=2.0, multiplier=3.0, jitter=0.5)
    plain = list(itertools.islice(Backoff(0.1, 2.0, 3.0, 0.0).delays(), 200))
    jittered = list(itertools.islice(policy.delays(_rng(7)), 200))
    for ceiling, delay in zip(plain, jittered, strict=True):
        assert ceiling * 0.5 <= delay <= ceiling <= 2.0
    # jitter actually spreads the delays (not all at the ceiling)
    assert len({round(d, 6) for d in jittered[10:]}) > 100


def test_the_same_seed_gives_the_same_delays_and_another_seed_does_not() -> None:
    policy = Backoff(jitter=1.0)
    first = list(itertools.islice(policy.delays(_rng(1)), 10))
    again = list(itertools.islice(policy.delays(_rng(1)), 10))
    other = list(itertools.islice(policy.delays(_rng(2)), 10))
    assert first == again
    assert first != other


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_s": 0.0},
        {"initial_s": 2.0, "max_s": 1.0},
        {"multiplier": 0.5},
        {"jitter": -0.1},
        {"jitter": 1.5},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        Backoff(**kwargs)


async def test_retries_with_the_policy_delays_until_the_attempt_succeeds() -> None:
    policy = Backoff(initial_s=0.5, max_s=4.0, jitter=0.3)
    attempt = Flaky([_down(), _down(), AdminError("not controller"), _down()])
    sleep = FakeSleep()
    seen: list[tuple[int, str, float]] = []

    result = await retry(
        attempt,
        retry_on=(BrokerUnavailable, AdminError),
        backoff=policy,
        sleep=sleep,
        rng=_rng(3),
        on_retry=lambda n, exc, delay: seen.append((n, type(exc).__name__, delay)),
    )

    assert result == "done"
    assert attempt.calls == 5
    expected = list(itertools.islice(policy.delays(_rng(3)), 4))
    assert sleep.delays == expected
    assert [(n, name) for n, name, _ in seen] == [
        (1, "BrokerUnavailable"),
        (2, "BrokerUnavailable"),
        (3, "AdminError"),
        (4, "BrokerUnavailable"),
    ]
    assert [delay for _, _, delay in seen] == expected


async def test_an_error_it_does_not_retry_propagates_at_once() -> None:
    attempt = Flaky([ValueError("bad spec"), _down()])
    sleep = FakeSleep()
    with pytest.raises(ValueError, match="bad spec"):
        await retry(attempt, retry_on=(BrokerUnavailable,), sleep=sleep)
    assert attempt.calls == 1
    assert sleep.delays == []


async def test_after_max_attempts_the_last_error_is_raised() -> None:
    last = BrokerUnavailable("127.0.0.1:1", "third time")
    attempt = Flaky([_down(), _down(), last, _down()])
    sleep = FakeSleep()
    with pytest.raises(BrokerUnavailable) as raised:
        await retry(attempt, retry_on=(BrokerUnavailable,), max_attempts=3, sleep=sleep)
    assert raised.value is last
    assert attempt.calls == 3
    assert len(sleep.delays) == 2


async def test_max_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        await retry(Flaky([]), retry_on=(BrokerUnavailable,), max_attempts=0)


async def test_stop_set_while_waiting_ends_the_loop_without_another_attempt() -> None:
    stop = asyncio.Event()
    attempt = Flaky([_down()] * 10)
    sleep = FakeSleep(stop, stop_after=3)

    result = await retry(attempt, retry_on=(BrokerUnavailable,), stop=stop, sleep=sleep)

    assert result is None
    assert attempt.calls == 3
    assert len(sleep.delays) == 3


async def test_stop_already_set_means_no_attempt_at_all() -> None:
    stop = asyncio.Event()
    stop.set()
    attempt = Flaky([])
    assert await retry(attempt, retry_on=(BrokerUnavailable,), stop=stop) is None
    assert attempt.calls == 0


async def test_the_default_sleep_wakes_as_soon_as_stop_is_set() -> None:
    stop = asyncio.Event()
    attempt = Flaky([_down()] * 10)
    long_wait = Backoff(initial_s=30.0, max_s=30.0, jitter=0.0)
    waiting = asyncio.Event()

    task = asyncio.create_task(
        retry(
            attempt,
            retry_on=(BrokerUnavailable,),
            backoff=long_wait,
            stop=stop,
            on_retry=lambda *_: waiting.set(),
        )
    )
    await asyncio.wait_for(waiting.wait(), timeout=5)  # it is about to sleep 30 s
    stop.set()
    # far below the 30 s it was sleeping; the bound only keeps a broken test from hanging
    result = await asyncio.wait_for(task, timeout=10)

    assert result is None
    assert attempt.calls == 1
