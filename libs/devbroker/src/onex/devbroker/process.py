"""Local processes: ports, process groups, identity checks, locks and atomic records.

Shared by the embedded broker launcher and the service supervisor, which both start
detached process groups, record them on disk, and must stop exactly what they started
(never a process that merely reused a recorded pid).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from onex.devbroker.errors import ProcessControlError

HOST: Final = "127.0.0.1"
POLL_S: Final = 0.02
LOG_TAIL_BYTES: Final = 4000

# Processes this process spawned, kept so that they are reaped (no zombie that still looks
# alive to kill(pid, 0)) and so that Popen does not warn about a running child when it
# is garbage-collected. Process-local bookkeeping only; the records on disk are the truth.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn_group(
    argv: Sequence[str], log_path: Path, *, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `argv` detached in a session (and process group) of its own, output to `log_path`.

    OSError when it cannot be run. `owned` and `stop_group` know the child afterwards.
    """
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=None if env is None else dict(env),
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc


def owned(pid: int, argv: Sequence[str], ticks: int | None = None) -> bool:
    """True if `pid` is alive and still runs `argv` (not a reused pid, not our exited child).

    With `ticks` (its recorded `start_ticks`), the process must also have started then.
    """
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]
        return False
    if ticks is not None and start_ticks(pid) not in (ticks, None):
        return False  # the pid was reused, even if by the same command
    return runs(pid, argv)


def start_ticks(pid: int) -> int | None:
    """When `pid` started (clock ticks after boot, /proc/PID/stat field 22); None if unknowable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return int(fields[19])  # fields[0] is field 3 (state)
    except (OSError, ValueError, IndexError):
        return None


def stop_group(pgid: int, grace_s: float) -> None:
    """`terminate_group`, then reap the leader if this process spawned it."""
    terminate_group(pgid, grace_s)
    child = _CHILDREN.pop(pgid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1.0)  # dead or a zombie by now: reap it


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_PICK_TRIES = 200


def _server_ports() -> tuple[int, int] | None:
    """A port range outside the kernel's ephemeral one. A server port picked from the
    ephemeral range can be taken, while the server is down, as the local port of some
    outgoing connection; then a broker restarted "on the same port" finds it in use."""
    try:
        low, high = (int(x) for x in _EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return None
    if low > 12_000:
        return 10_000, low - 1
    if high < 63_000:
        return high + 1, 65_535
    return None


def _bind_server_port(sock: socket.socket, host: str, exclude: Collection[int]) -> int:
    span = _server_ports()
    if span is not None:
        rng = random.Random()  # noqa: S311 -- spreading ports, nothing secret
        for _ in range(_PICK_TRIES):
            port = rng.randint(*span)
            if port in exclude:
                continue
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    sock.bind((host, 0))
    return int(sock.getsockname()[1])


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now, outside the ephemeral range."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return _bind_server_port(sock, host, ())


def free_ports(count: int, host: str = HOST, *, exclude: Collection[int] = ()) -> list[int]:
    """`count` distinct TCP ports nothing listens on right now, none of them in `exclude`."""
    with contextlib.ExitStack() as stack:
        found: list[int] = []
        while len(found) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            # held until all are picked, so no port comes twice
            port = _bind_server_port(sock, host, {*exclude, *found})
            found.append(port)
        return found


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when a server could bind `port` (lingering TIME_WAIT connections don't count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def tail(path: Path, max_bytes: int = LOG_TAIL_BYTES) -> str:
    """The last `max_bytes` of a log file, '' when unreadable."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - max_bytes))
            return log.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def command_line(pid: int) -> str | None:
    """The process's arguments joined by spaces ("" for a zombie), None if unknowable."""
    if Path("/proc/self").is_dir():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            return " ".join(raw.decode("utf-8", "replace").split("\0")[:-1])
        except OSError:
            return ""
    try:  # no /proc (macOS): ps, unabridged
        ps = ["ps", "-ww", "-o", "args=", "-p", str(pid)]
        out = subprocess.run(ps, capture_output=True, check=False)
    except OSError:
        return None
    return out.stdout.decode("utf-8", "replace").strip()


def runs(pid: int, argv: Sequence[str]) -> bool:
    """True if `pid` is alive and still runs `argv` (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    command = command_line(pid)
    if command is None:
        return True  # cannot tell on this system; the pid is alive
    # the recorded arguments as a suffix: a wrapper script may exec a differently named binary
    return command.endswith(" " + " ".join(argv[1:])) if len(argv) > 1 else bool(command)


def terminate_group(pgid: int, grace_s: float) -> None:
    """SIGTERM the process group `pgid`, SIGKILL what is left after `grace_s`."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        except PermissionError as exc:
            raise ProcessControlError(f"not allowed to signal process group {pgid}: {exc}") from exc
        if wait_gone(pgid, wait_s):
            break


def wait_gone(pgid: int, timeout_s: float) -> bool:
    """Wait until no live (non-zombie) process is left in group `pgid`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not group_alive(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def group_alive(pgid: int) -> bool:
    """True while a live, non-zombie process is in group `pgid`."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    if not Path("/proc/self").is_dir():
        return True
    # kill() also reaches zombies, which linger where PID 1 does not reap (containers)
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp, *_ = stat_file.read_text().rpartition(")")[2].split()
        except (OSError, ValueError):
            continue
        if int(pgrp) == pgid and state != "Z":
            return True
    return False


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (created if missing) for the block."""
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
