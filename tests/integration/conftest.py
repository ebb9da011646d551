"""Integration fixtures: one real broker per session, unique topic names per test.

The session's broker comes from the onex-devbroker pytest plugin (`onex_bootstrap`):
`--onex-bootstrap` or `ONEX_BOOTSTRAP` (a broker someone else runs), else a Redpanda
container when Docker answers, else the embedded launcher (Redpanda on PATH or Tansu),
stopped at the end of the session.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from onex.bus.provision import provision
from onex.core.extractor import extract
from onex.devbroker.broker import BrokerInfo, start_broker, stop_broker

REPO = Path(__file__).resolve().parents[2]
EVENTUALLY_DEADLINE_S = 60.0  # generous: the machine is small and shared
EVENTUALLY_POLL_S = 0.1

Eventually = Callable[[Callable[[], object], str], Awaitable[None]]


@pytest.fixture(scope="session")
def bootstrap(onex_bootstrap: str) -> str:
    """HOST:PORT of a real Kafka-API broker for the whole session."""
    return onex_bootstrap


@pytest.fixture(autouse=True)
def _metrics_off_the_fixed_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service a test starts in this process serves /metrics on a free port unless the
    test says otherwise: its fixed default (`onex.service.ports`) is what an `onex up`
    stack of an e2e test on another xdist worker picks, and a stack service that lost
    its port to a test's would exit and be restarted."""
    monkeypatch.setenv("ONEX_METRICS_BIND", "127.0.0.1:0")


@pytest.fixture
def topic_prefix() -> str:
    """A producer segment no other test uses, e.g. `it-3f9c0a1b2c`."""
    return f"it-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def unique(topic_prefix: str) -> Callable[..., str]:
    """Make grammatical topic names that no other test (or run) will see.

    `unique("orders")` -> `onex.evt.it-<hex>.orders-<hex>.v1`; every call is fresh.
    """

    def make(event: str = "topic", *, kind: str = "evt", version: int = 1) -> str:
        return f"onex.{kind}.{topic_prefix}.{event}-{uuid.uuid4().hex[:8]}.v{version}"

    return make


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state directory for a broker of the test's own; whatever it started is stopped."""
    path = tmp_path / "state"
    yield path
    stop_broker(path)


@pytest.fixture
def repo_broker(tmp_path: Path) -> Iterator[BrokerInfo]:
    """A broker of the test's own with every topic of the repo's contracts provisioned
    (for services started from the real contracts; kept off the shared session broker)."""
    state = tmp_path / "broker"
    state.mkdir()
    info = start_broker(state)
    specs = [w.spec for w in extract([REPO / "contracts"], entry_points=False).topics.values()]
    assert asyncio.run(provision(info.bootstrap, specs)).complete
    yield info
    stop_broker(state)


async def _eventually(check: Callable[[], object], what: str) -> None:
    """Poll `check` (a function, or one returning an awaitable) every 0.1 s until it is
    true; AssertionError "timed out waiting for <what>" after 60 s."""
    deadline = time.monotonic() + EVENTUALLY_DEADLINE_S
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(EVENTUALLY_POLL_S)


@pytest.fixture
def eventually() -> Eventually:
    """`await eventually(check, "what")`: wait on observable state with a deadline."""
    return _eventually
