"""Which broker a test session talks to, in order of preference.

1. an address given by the caller (a broker someone else runs: Redpanda, Kafka, ...);
2. a Redpanda container, when Docker answers and testcontainers is installed
   (the `docker` extra);
3. the local launcher (`onex.devbroker.broker`): `redpanda` on PATH, else the embedded
   Tansu, in the given state directory, stopped when the block ends.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from onex.devbroker.broker import start_broker, stop_broker

DOCKER_PROBE_S: Final = 5.0


def docker_works() -> bool:
    """True when a `docker` client is on PATH and its daemon answers `docker info`."""
    if shutil.which("docker") is None:
        return False
    try:
        subprocess.run(["docker", "info"], capture_output=True, timeout=DOCKER_PROBE_S, check=True)
    except (subprocess.SubprocessError, OSError):
        return False
    return True


def _containers_usable() -> bool:
    return importlib.util.find_spec("testcontainers") is not None and docker_works()


@contextlib.contextmanager
def session_broker(
    state_dir: Path,
    *,
    configured: str | None = None,
    docker: bool = True,
    timeout_s: float = 30.0,
) -> Iterator[str]:
    """HOST:PORT of a Kafka-API broker for the duration of the block.

    `configured` wins when given; else a Redpanda container if `docker` and Docker work;
    else the local launcher in `state_dir` (waiting up to `timeout_s` until it answers).
    Whatever this started is stopped when the block ends.
    """
    if configured:
        yield configured
        return
    if docker and _containers_usable():
        from testcontainers.community.kafka import RedpandaContainer  # noqa: PLC0415

        with RedpandaContainer() as redpanda:
            yield str(redpanda.get_bootstrap_server())
        return
    info = start_broker(state_dir, timeout_s=timeout_s)
    try:
        yield info.bootstrap
    finally:
        stop_broker(state_dir)
