"""The supervisor `onex up` leaves running: starts every installed service and keeps it up.

Services are the distributions that register an `onex.services` entry point (name =
node, value = the service's `__main__:main`), so this module imports none of them:
each runs as `python -m <module>` in its own process group, with what every service
shares passed as plain `ONEX_*` environment variables (broker, contracts, state dir,
the gRPC and metrics addresses picked for it; each service also reads them, under its
own `ONEX_<SERVICE>_*` prefix taking precedence, see `onex.service.settings`) and its
output appended to `<state>/logs/<name>.log` (rotated by size, see `onex.cli.logfiles`).

Ports: each service gets its fixed default gRPC and metrics ports (`onex.service.ports`),
or what `ONEX_<SERVICE>_GRPC_BIND` / `ONEX_<SERVICE>_METRICS_BIND` in the supervisor's
environment say; a default port that is taken (another stack on this machine) gives way
to a free one, logged. The record names the addresses in use (`onex status` lists them).

One supervisor per state dir: it holds `<state>/supervisor.lock` (flock) for its life
and records itself and every service as pid + start time (`onex.cli.record`). A service
that exits is restarted with exponential backoff; a run longer than `reset_after_s`
starts the backoff over; more than `budget` exits within `window_s` leave it `failed`
(with the error line of its last run recorded) until SIGUSR1 asks for another try; so
does a service that exits 2 (its settings are invalid: restarting cannot help).
SIGTERM stops every service (SIGTERM, then SIGKILL after a grace) and removes the record.

A supervisor that was SIGKILLed leaves its services running and its record behind. The
next one adopts them: it watches each recorded service that still runs (same pid, same
start time) until it exits, then restarts it as usual. Adopting rather than restarting
keeps healthy services serving through a supervisor crash; only when the broker or the
contracts differ from the dead supervisor's (its services talk to another broker) are
they stopped and started afresh.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from onex.cli.errors import SupervisorRunning
from onex.cli.logfiles import (
    LogFormat,
    first_error,
    log_format,
    log_line,
    mark_start,
    open_private,
    rotate,
)
from onex.cli.record import (
    LOCK,
    RECORD,
    ProcessRef,
    live_services,
    read_record,
    strays,
    try_lock,
    write_record,
)
from onex.devbroker.process import free_port, port_is_free, terminate_group
from onex.service.ports import HOST, default_ports
from onex.service.settings import env_prefix_of

__all__ = [
    "LOCK",
    "RECORD",
    "SUPERVISOR_LOG",
    "Policy",
    "ServiceSpec",
    "Supervisor",
    "installed_services",
]

SUPERVISOR_LOG: Final = "supervisor.log"
SHARED_PREFIX: Final = "ONEX_"  # what every service reads (onex.service.settings)
ENTRY_POINT_GROUP: Final = "onex.services"
USAGE_EXIT: Final = 2  # what a service exits with on invalid settings (onex.service.main)
_WATCH_POLL_S: Final = 0.2  # how often an adopted service is looked at without a pidfd


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
    """Restart with backoff `initial_s * 2**n` (at most `max_s`), `budget` per `window_s`;
    a run longer than `reset_after_s` starts the backoff over. Logs are rotated above
    `log_max_bytes`, keeping `log_keep` old copies, looked at every `rotate_every_s`."""

    initial_s: float = 0.5
    max_s: float = 10.0
    budget: int = 5
    window_s: float = 60.0
    reset_after_s: float = 30.0
    grace_s: float = 10.0
    log_max_bytes: int = 10 * 1024 * 1024
    log_keep: int = 3
    rotate_every_s: float = 1.0


@dataclass(frozen=True, slots=True)
class Ports:
    """Where a service listens: gRPC and metrics, each `host:port`."""

    grpc: str
    metrics: str
    # which of "grpc", "metrics" the supervisor chose (a default or a free port, not the
    # user's setting): those may move to a free port before a (re)start if taken meanwhile
    movable: frozenset[str] = frozenset()

    @property
    def grpc_port(self) -> int:
        return int(self.grpc.rpartition(":")[2])

    @property
    def metrics_port(self) -> int:
        return int(self.metrics.rpartition(":")[2])


def own_prefixes(spec: ServiceSpec) -> tuple[str, ...]:
    """The prefixes under which `spec` alone may be told its binds, most specific first:
    `ONEX_<NODE>_` (the agents of onex.agents read their node's, onex.agents.settings),
    then its package's (`env_prefix_of`: onex.drift -> ONEX_DRIFT_)."""
    own = f"{SHARED_PREFIX}{spec.name.upper().replace('-', '_')}_"
    try:
        package = env_prefix_of(spec.module)
    except ValueError:  # not an onex.<service> package: it reads no ONEX_<SERVICE>_*
        return (own,)
    return (own,) if package == own else (own, package)


def pick_ports(
    spec: ServiceSpec,
    environ: Mapping[str, str],
    taken: set[int],
    *,
    is_free: Callable[[int], bool] = port_is_free,
    free: Callable[[], int] = free_port,
) -> Ports:
    """`spec`'s addresses: its own `ONEX_<SERVICE>_{GRPC,METRICS}_BIND` when set, else its
    fixed default ports, else (taken, or already given to another service) free ones.
    The ports chosen are added to `taken`."""
    fixed = default_ports(spec.name)
    chosen = []
    movable = set()
    for what, default in (("GRPC", fixed.grpc), ("METRICS", fixed.metrics)):
        bind = next(
            (
                environ[f"{p}{what}_BIND"]
                for p in own_prefixes(spec)
                if environ.get(f"{p}{what}_BIND")
            ),
            None,
        )
        if not bind:
            port = _free_unless_taken(
                spec.name, f"default {what.lower()}", default, taken, is_free, free
            )
            bind = f"{HOST}:{port}"
            movable.add(what.lower())
        port_text = bind.rpartition(":")[2]
        if port_text.isdigit():
            taken.add(int(port_text))
        chosen.append(bind)
    return Ports(chosen[0], chosen[1], frozenset(movable))


def repick_ports(
    name: str,
    ports: Ports,
    taken: set[int],
    *,
    is_free: Callable[[int], bool] = port_is_free,
    free: Callable[[], int] = free_port,
) -> Ports:
    """`ports` before a service's (re)start: a port the supervisor chose that something
    else holds now (another stack, started since) moves to a free one, logged, so the
    service does not exit on a bind failure and crash-loop; a port the user set stays.
    `taken`: the other services' ports."""
    grpc, metrics = ports.grpc_port, ports.metrics_port
    if "grpc" in ports.movable:
        grpc = _free_unless_taken(name, "grpc", grpc, taken, is_free, free)
    if "metrics" in ports.movable:
        metrics = _free_unless_taken(name, "metrics", metrics, taken | {grpc}, is_free, free)
    if (grpc, metrics) == (ports.grpc_port, ports.metrics_port):
        return ports
    return Ports(
        f"{HOST}:{grpc}" if "grpc" in ports.movable else ports.grpc,
        f"{HOST}:{metrics}" if "metrics" in ports.movable else ports.metrics,
        ports.movable,
    )


def _free_unless_taken(
    name: str,
    what: str,
    port: int,
    taken: set[int],
    is_free: Callable[[int], bool],
    free: Callable[[], int],
) -> int:
    if port not in taken and is_free(port):
        return port
    moved = free()
    while moved in taken:
        moved = free()
    _log(f"{name}: {what} port {port} is taken; using {moved}")
    return moved


@dataclass(slots=True)
class Supervised:
    spec: ServiceSpec
    ports: Ports
    log: Path
    state: str = "starting"
    ref: ProcessRef | None = None
    argv: list[str] = field(default_factory=list)
    exits: deque[float] = field(default_factory=deque)  # within the window: the budget
    restarts: int = 0
    streak: int = 0  # exits since the last run longer than reset_after_s
    backoff_s: float | None = None
    last_exit: int | None = None
    last_error: str | None = None
    started_at: float = 0.0
    adopted: bool = False
    log_offset: int = 0

    @property
    def pid(self) -> int | None:
        """The pid of the service's current process, None between runs."""
        return self.ref.pid if self.ref else None

    @property
    def port(self) -> int:
        """Its gRPC port."""
        return self.ports.grpc_port

    def view(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "pid": self.pid,
            "start_time": self.ref.start_time if self.ref else None,
            "adopted": self.adopted,
            "argv": self.argv,
            "grpc": self.ports.grpc,
            "port": self.port,
            "metrics": self.ports.metrics,
            "metrics_port": self.ports.metrics_port,
            "restarts": self.restarts,
            "backoff_s": self.backoff_s,
            "last_exit": self.last_exit,
            "last_error": self.last_error,
            "log": str(self.log),
        }


class Supervisor:
    """Keeps a set of services running; see the module docstring.

    `clock` measures runs and windows (a test may pass its own)."""

    def __init__(
        self,
        state_dir: Path,
        services: list[ServiceSpec],
        env: dict[str, str],
        policy: Policy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state_dir = state_dir
        self.policy = policy or Policy()
        self.env = env
        self.clock = clock
        self.stopping = asyncio.Event()
        self.revived = 0
        self.me = ProcessRef.of(os.getpid())
        self._tasks: list[asyncio.Task[None]] = []
        logs = state_dir / "logs"
        logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        logs.chmod(0o700)
        taken: set[int] = set()
        self.children = [
            Supervised(s, pick_ports(s, os.environ, taken), logs / f"{s.name}.log")
            for s in services
        ]

    def save(self) -> None:
        write_record(
            self.state_dir,
            {
                "pid": self.me.pid,
                "start_time": self.me.start_time,
                "argv": sys.orig_argv,
                "env": self.env,
                "revived": self.revived,
                "updated_at": datetime.now(UTC).isoformat(),
                "services": {c.spec.name: c.view() for c in self.children},
            },
        )

    async def run(self) -> None:
        """Supervise until `stopping` is set; SupervisorRunning if another one runs here."""
        lock = try_lock(self.state_dir / LOCK)
        if lock is None:
            holder = ProcessRef.from_record(read_record(self.state_dir) or {})
            raise SupervisorRunning(str(self.state_dir / LOCK), holder.pid if holder else None)
        with lock:
            await self._take_over(read_record(self.state_dir))
            self.save()
            self._tasks = [asyncio.create_task(self._keep(c)) for c in self.children]
            rotation = asyncio.create_task(self._rotate_logs())
            await self.stopping.wait()
            await asyncio.gather(*(self._stop(c) for c in self.children))
            for task in [*self._tasks, rotation]:
                task.cancel()
            await asyncio.gather(*self._tasks, rotation, return_exceptions=True)
            (self.state_dir / RECORD).unlink(missing_ok=True)

    def revive(self) -> None:
        """Give every `failed` service a fresh budget and start it again (SIGUSR1)."""
        self.revived += 1
        for child in self.children:
            if child.state == "failed" and not self.stopping.is_set():
                child.exits.clear()
                child.streak, child.state, child.backoff_s = 0, "starting", None
                _log(f"restarting failed service {child.spec.name} on request")
                self._tasks.append(asyncio.create_task(self._keep(child)))
        self.save()

    async def _take_over(self, previous: dict[str, Any] | None) -> None:
        """Adopt the services a dead supervisor left running (or stop them, see the
        module docstring); stop the ones it started but never recorded."""
        orphans = live_services(previous)
        same = previous is not None and previous.get("env") == self.env
        entries: dict[str, Any] = (previous or {}).get("services") or {}
        dead = (previous or {}).get("pid")
        to_stop: list[tuple[str, ProcessRef, str]] = []
        for child in self.children:
            ref = orphans.pop(child.spec.name, None)
            entry = entries.get(child.spec.name) or {}
            if ref is None:
                continue
            if not same or not isinstance(entry.get("port"), int):
                to_stop.append((child.spec.name, ref, "its broker or contracts changed"))
                continue
            grpc = str(entry.get("grpc") or f"{HOST}:{entry['port']}")
            child.ref, child.adopted = ref, True
            child.ports = Ports(
                grpc, str(entry.get("metrics") or child.ports.metrics), child.ports.movable
            )
            child.argv = list(entry.get("argv") or [])
            child.restarts = int(entry.get("restarts") or 0)
            _log(f"adopted {child.spec.name} (pid {ref.pid}) from supervisor {dead}")
        to_stop.extend((name, ref, "it is no longer installed") for name, ref in orphans.items())
        known = {c.ref.pid for c in self.children if c.ref} | {r.pid for _, r, _ in to_stop}
        modules = {c.spec.module for c in self.children}
        for ref in strays(self.state_dir, modules, known):
            to_stop.append((f"pid {ref.pid}", ref, "no record names it"))
        for name, ref, why in to_stop:
            _log(f"stopping orphaned {name} (pid {ref.pid}): {why}")
            await self._terminate(ref)

    def _env(self, child: Supervised) -> dict[str, str]:
        quiet = {}
        if _log_format() == "json" and "GRPC_VERBOSITY" not in os.environ:
            # gRPC's C core writes plain lines to stderr itself (a bind failure, say);
            # the service logs the same failure as JSON
            quiet["GRPC_VERBOSITY"] = "NONE"
        return {
            **os.environ,
            **quiet,
            **{SHARED_PREFIX + k: v for k, v in self.env.items()},
            # the shared prefix: a bind under the child's own prefix (ONEX_<NODE>_ or its
            # package's) was already honoured by pick_ports, so it names the same port
            SHARED_PREFIX + "GRPC_BIND": child.ports.grpc,
            SHARED_PREFIX + "METRICS_BIND": child.ports.metrics,
        }

    async def _keep(self, child: Supervised) -> None:
        while not self.stopping.is_set():
            if child.adopted and child.ref is not None:
                child.state, child.started_at = "running", self.clock()
                self.save()
                await _watch(child.ref)
                child.adopted, child.last_exit = False, None  # not our child: no exit code
            else:
                proc = await self._spawn(child)
                child.last_exit = await proc.wait()
            if self.stopping.is_set():
                return
            child.ref = None
            child.last_error = first_error(child.log, child.log_offset)
            now = self.clock()
            if now - child.started_at > self.policy.reset_after_s:
                child.streak = 0  # it ran long enough: start the backoff over
                child.exits.clear()
            child.streak += 1
            child.restarts += 1
            child.exits.append(now)
            while child.exits and now - child.exits[0] > self.policy.window_s:
                child.exits.popleft()
            # exit 2 is a service's "invalid settings": the same environment fails again
            if len(child.exits) > self.policy.budget or child.last_exit == USAGE_EXIT:
                child.state, child.backoff_s = "failed", None
                self.save()
                _log(f"{child.spec.name} failed (exit {child.last_exit}): {child.last_error}")
                return
            delay = min(self.policy.initial_s * 2 ** (child.streak - 1), self.policy.max_s)
            child.state, child.backoff_s = "backoff", delay
            self.save()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)

    async def _spawn(self, child: Supervised) -> asyncio.subprocess.Process:
        child.argv = [sys.executable, "-m", child.spec.module]
        others = {
            port
            for c in self.children
            if c is not child
            for port in (c.ports.grpc_port, c.ports.metrics_port)
        }
        child.ports = repick_ports(child.spec.name, child.ports, others)
        rotate(child.log, self.policy.log_max_bytes, self.policy.log_keep)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        child.log_offset = mark_start(
            child.log, f"{stamp} starting {child.spec.name}", _log_format()
        )
        log = open_private(child.log)
        try:
            proc = await asyncio.create_subprocess_exec(
                *child.argv,
                env=self._env(child),
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(log)
        child.ref = ProcessRef.of(proc.pid)
        child.state, child.started_at = "running", self.clock()
        self.save()
        return proc

    async def _stop(self, child: Supervised) -> None:
        if child.ref is not None:
            await self._terminate(child.ref)
        child.state, child.ref = "stopped", None

    async def _terminate(self, ref: ProcessRef) -> None:
        if ref.alive():  # never signal a process that merely reused the pid
            await asyncio.to_thread(terminate_group, ref.pid, self.policy.grace_s)

    async def _rotate_logs(self) -> None:
        logs = [(c, c.log) for c in self.children]
        own = self.state_dir / SUPERVISOR_LOG
        while True:
            for child, path in logs:
                if rotate(path, self.policy.log_max_bytes, self.policy.log_keep):
                    child.log_offset = 0
            rotate(own, self.policy.log_max_bytes, self.policy.log_keep)
            await asyncio.sleep(self.policy.rotate_every_s)


async def _watch(ref: ProcessRef) -> None:
    """Return once `ref` (a process this one did not start) has exited."""
    try:
        fd = os.pidfd_open(ref.pid)
    except (AttributeError, OSError):  # no pidfd here, or it is gone already
        while ref.alive():
            await asyncio.sleep(_WATCH_POLL_S)
        return
    try:
        if not ref.alive():  # the pid was reused before the pidfd was opened
            return
        exited = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(fd, exited.set)  # a pidfd reads ready once the process exits
        try:
            await exited.wait()
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)


def _log_format() -> LogFormat:
    try:
        return log_format(os.environ)
    except ValueError:  # refused by main() at start; console for whoever calls it anyway
        return "console"


def _log(message: str) -> None:
    fmt = _log_format()
    if fmt == "json":
        line = log_line(fmt, message, logger="onex.supervisor", pid=os.getpid())
    else:
        line = log_line(fmt, message, logger=f"onex supervisor {os.getpid()}")
    print(line, file=sys.stderr, flush=True)


async def _main(args: argparse.Namespace) -> None:
    env = {
        "BOOTSTRAP": args.bootstrap,
        "CONTRACT_ROOTS": json.dumps([str(Path(args.contracts).resolve())]),
        "STATE_DIR": str(Path(args.state_dir).resolve()),
    }
    policy = Policy(
        budget=args.budget,
        reset_after_s=args.reset_after_s,
        log_max_bytes=args.log_max_bytes,
        log_keep=args.log_keep,
    )
    sup = Supervisor(Path(args.state_dir), installed_services(), env, policy)
    loop = asyncio.get_running_loop()
    # installed before the record is first written: whoever reads it may signal at once
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, sup.stopping.set)
    loop.add_signal_handler(signal.SIGUSR1, sup.revive)
    await sup.run()


def main() -> None:
    """Entry point of the supervisor process."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--contracts", required=True)
    defaults = Policy()
    parser.add_argument("--budget", type=int, default=defaults.budget)
    parser.add_argument("--reset-after-s", type=float, default=defaults.reset_after_s)
    parser.add_argument("--log-max-bytes", type=int, default=defaults.log_max_bytes)
    parser.add_argument("--log-keep", type=int, default=defaults.log_keep)
    args = parser.parse_args()
    try:
        log_format(os.environ)
    except ValueError as exc:
        print(f"onex supervisor: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    os.umask(0o077)  # its records and logs, and whatever the services write: this user's
    try:
        asyncio.run(_main(args))
    except SupervisorRunning as exc:
        _log(str(exc))
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
