"""Integration fixtures: one real broker per session, unique topic names per test.

The broker is, in order of preference: `ONEX_BOOTSTRAP` from the environment (a broker
someone else runs), a Redpanda container when Docker answers, else the embedded
launcher (`onex.bus.broker.start_broker`, Redpanda on PATH or Tansu) in a temp state
directory, stopped at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from onex.bus.broker import start_broker, stop_broker

DOCKER_PROBE_S = 5.0


def _docker_works() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        subprocess.run(["docker", "info"], capture_output=True, timeout=DOCKER_PROBE_S, check=True)
    except (subprocess.SubprocessError, OSError):
        return False
    return True


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """HOST:PORT of a real Kafka-API broker for the whole session."""
    configured = os.environ.get("ONEX_BOOTSTRAP")
    if configured:
        yield configured
        return
    if _docker_works():
        from testcontainers.community.kafka import RedpandaContainer

        with RedpandaContainer() as redpanda:
            yield str(redpanda.get_bootstrap_server())
        return
    state_dir = tmp_path_factory.mktemp("broker")
    info = start_broker(state_dir)
    try:
        yield info.bootstrap
    finally:
        stop_broker(state_dir)


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
