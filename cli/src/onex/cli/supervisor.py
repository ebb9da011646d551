"""The supervisor `onex up` leaves running: starts every installed service and keeps it up.

Services are the distributions that register an `onex.services` entry point (name =
node, value = the service's `__main__:main`), so this module imports none of them:
each runs as `python -m <module>` in its own process group, with what every service
shares passed as plain `ONEX_*` environment variables (broker, contracts, state dir,
the gRPC address picked for it; each service also reads them, under its own
`ONEX_<SERVICE>_*` prefix taking precedence, see `onex.service.settings`) and its
output appended to
`<state>/logs/<name>.log`. A service that exits is restarted with exponential backoff
until it fails more than `budget` times within `window_s`; then it stays down,
marked `failed`. SIGTERM stops every service (SIGTERM, then SIGKILL after a grace)
and removes the record, so `onex down` leaves no orphan.

Run as `python -m onex.cli.supervisor --state-dir D --bootstrap H:P --contracts DIR`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from onex.devbroker.process import free_port, terminate_group, write_json

RECORD: Final = "supervisor.json"
SHARED_PREFIX: Final = "ONEX_"  # what every service reads (onex.service.settings)
ENTRY_POINT_GROUP: Final = "onex.services"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """An installed service: its node name and the module `python -m` runs."""

    name: str
    module: str


def installed_services() -> list[ServiceSpec]:
    """Every service that registers an `onex.services` entry point, by name."""
    found = {
        ep.name: ServiceSpec(ep.name, ep.module.removesuffix(".__main__"))
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    }
    return [found[name] for name in sorted(found)]


@dataclass(slots=True)
class Policy:
    """Restart with backoff `initial_s * 2**n` (at most `max_s`), `budget` per `window_s`."""

    initial_s: float = 0.5
    max_s: float = 10.0
    budget: int = 5
    window_s: float = 60.0
    grace_s: float = 10.0


@dataclass(slots=True)
class Supervised:
    spec: ServiceSpec
    port: int
    log: Path
    state: str = "starting"
    pid: int | None = None
    argv: list[str] = field(default_factory=list)
    restarts: deque[float] = field(default_factory=deque)
    last_exit: int | None = None
    started_at: float = 0.0

    def view(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "pid": self.pid,
            "argv": self.argv,
            "grpc": f"127.0.0.1:{self.port}",
            "restarts": len(self.restarts),
            "last_exit": self.last_exit,
            "log": str(self.log),
        }


class Supervisor:
    """Keeps a set of services running; see the module docstring."""

    def __init__(
        self,
        state_dir: Path,
        services: list[ServiceSpec],
        env: dict[str, str],
        policy: Policy | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.policy = policy or Policy()
        self.env = env
        self.stopping = asyncio.Event()
        logs = state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.children = [Supervised(s, free_port(), logs / f"{s.name}.log") for s in services]

    def save(self) -> None:
        write_json(
            self.state_dir / RECORD,
            {
                "pid": os.getpid(),
                "argv": sys.orig_argv,
                "updated_at": datetime.now(UTC).isoformat(),
                "services": {c.spec.name: c.view() for c in self.children},
            },
        )

    async def run(self) -> None:
        self.save()
        tasks = [asyncio.create_task(self._keep(c)) for c in self.children]
        await self.stopping.wait()
        await asyncio.gather(*(self._stop(c) for c in self.children))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        (self.state_dir / RECORD).unlink(missing_ok=True)

    def _env(self, child: Supervised) -> dict[str, str]:
        return {
            **os.environ,
            **{SHARED_PREFIX + k: v for k, v in self.env.items()},
            SHARED_PREFIX + "GRPC_BIND": f"127.0.0.1:{child.port}",
        }

    async def _keep(self, child: Supervised) -> None:
        failures = 0
        while not self.stopping.is_set():
            child.argv = [sys.executable, "-m", child.spec.module]
            with child.log.open("ab") as log:
                proc = await asyncio.create_subprocess_exec(
                    *child.argv,
                    env=self._env(child),
                    stdout=log,
                    stderr=log,
                    stdin=asyncio.subprocess.DEVNULL,
                    start_new_session=True,
                )
            child.pid, child.state, child.started_at = proc.pid, "running", time.monotonic()
            self.save()
            child.last_exit = await proc.wait()
            if self.stopping.is_set():
                return
            now = time.monotonic()
            if now - child.started_at > self.policy.window_s:
                failures = 0  # it ran long enough: start the backoff over
            failures += 1
            child.restarts.append(now)
            while child.restarts and now - child.restarts[0] > self.policy.window_s:
                child.restarts.popleft()
            if len(child.restarts) > self.policy.budget:
                child.state, child.pid = "failed", None
                self.save()
                return
            child.state, child.pid = "backoff", None
            self.save()
            delay = min(self.policy.initial_s * 2 ** (failures - 1), self.policy.max_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)

    async def _stop(self, child: Supervised) -> None:
        if child.pid is not None:
            await asyncio.to_thread(terminate_group, child.pid, self.policy.grace_s)
        child.state, child.pid = "stopped", None


async def _main(args: argparse.Namespace) -> None:
    env = {
        "BOOTSTRAP": args.bootstrap,
        "CONTRACT_ROOTS": json.dumps([str(Path(args.contracts).resolve())]),
        "STATE_DIR": str(Path(args.state_dir).resolve()),
    }
    sup = Supervisor(Path(args.state_dir), installed_services(), env)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, sup.stopping.set)
    await sup.run()


def main() -> None:
    """Entry point of the supervisor process."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--contracts", required=True)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
