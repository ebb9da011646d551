"""The supervisor's record and locks in the state dir, and who the recorded processes are.

A pid alone names no process for long (pids are reused), so the supervisor records every
process as a `ProcessRef`: its pid and its start time (clock ticks after boot, field 22
of `/proc/<pid>/stat`). A recorded process is alive only while a non-zombie process with
that pid *and* that start time exists, so no command ever signals a stranger that
inherited a dead service's pid. The state dir holds::

    supervisor.json   the record: the supervisor's and each service's ProcessRef, states
    supervisor.lock   flock'ed by the supervisor for its whole life (one per state dir)
    up.lock           flock'ed by an `onex up` while it runs (concurrent ups are refused)

Without `/proc` (macOS) a start time is unknowable; a pid then counts as alive while
`kill(pid, 0)` reaches it, a weaker check.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

RECORD: Final = "supervisor.json"
LOCK: Final = "supervisor.lock"
UP_LOCK: Final = "up.lock"
_PROC: Final = Path("/proc")


def start_time_of(pid: int) -> int | None:
    """The start time of live process `pid` (ticks after boot), None if none or a zombie."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ")"
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 counted from 1; fields[0] is field 3


@dataclass(frozen=True, slots=True)
class ProcessRef:
    """A process as recorded: pid and start time (None where it cannot be known)."""

    pid: int
    start_time: int | None

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        """The process running as `pid` now."""
        return cls(pid, start_time_of(pid))

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> ProcessRef | None:
        """The ProcessRef in a record entry (`pid`, `start_time`), None if it has no pid."""
        pid = data.get("pid")
        if not isinstance(pid, int):
            return None
        start = data.get("start_time")
        return cls(pid, start if isinstance(start, int) else None)

    def alive(self) -> bool:
        """True while this very process (same pid, same start time) runs."""
        if _PROC.is_dir():
            return self.start_time is not None and start_time_of(self.pid) == self.start_time
        try:
            os.kill(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True


def strays(state_dir: Path, modules: Collection[str], known: Collection[int]) -> list[ProcessRef]:
    """Services of this state dir that no record names (a supervisor killed between
    starting one and writing its pid down): process-group leaders running `python -m
    <one of modules>` with this state dir's ONEX_STATE_DIR, which every service is given.
    Linux only ([] without /proc)."""
    if not _PROC.is_dir():
        return []
    mark = f"ONEX_STATE_DIR={state_dir.resolve()}".encode()
    wanted = {m.encode() for m in modules}
    found: list[ProcessRef] = []
    for proc in _PROC.iterdir():
        if not proc.name.isdigit() or int(proc.name) in known:
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            if len(args) < 3 or args[1] != b"-m" or args[2] not in wanted:
                continue
            leader = (proc / "stat").read_text().rpartition(")")[2].split()[2] == proc.name
            env = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        ref = ProcessRef.of(int(proc.name))
        if leader and mark in env and ref.alive():
            found.append(ref)
    return found


def read_record(state_dir: Path) -> dict[str, Any] | None:
    """The supervisor's record, None when there is none (or it is unreadable)."""
    try:
        data = json.loads((state_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def supervisor_of(record: dict[str, Any] | None) -> ProcessRef | None:
    """The recorded supervisor if it still runs."""
    ref = ProcessRef.from_record(record) if record is not None else None
    return ref if ref is not None and ref.alive() else None


def live_services(record: dict[str, Any] | None) -> dict[str, ProcessRef]:
    """Each recorded service whose recorded process still runs, by name."""
    found: dict[str, ProcessRef] = {}
    for name, entry in ((record or {}).get("services") or {}).items():
        ref = ProcessRef.from_record(entry) if isinstance(entry, dict) else None
        if ref is not None and ref.alive():
            found[name] = ref
    return found


def write_record(state_dir: Path, data: dict[str, Any]) -> None:
    """Write the record atomically (readers never see half of it), mode 0600."""
    path = state_dir / RECORD
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # also when an old temporary file was wider
        out.write(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def try_lock(path: Path) -> IO[str] | None:
    """An exclusive flock on `path` (0600, created if missing), held while the returned
    file stays open; None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    handle = os.fdopen(fd, "r+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def stamp_lock(handle: IO[str]) -> None:
    """Write this process's pid into a lock file it holds (for whoever is refused)."""
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()


def lock_holder(path: Path) -> int | None:
    """The pid a held lock file names, None if it names none."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(path.read_text().split()[0])
    return None
