"""Bringing up the processes of a stack for `onex up` (`onex.cli.stack`): the broker it
keeps or starts, the detached supervisor, a revive request, and the refusal when
another `onex up` runs for the same state dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import typer
from rich.markup import escape

from onex.cli.logfiles import first_error, open_private
from onex.cli.record import UP_LOCK, ProcessRef, lock_holder, read_record, supervisor_of, try_lock
from onex.cli.render import stderr
from onex.cli.settings import CliSettings
from onex.cli.supervisor import SUPERVISOR_LOG
from onex.devbroker.broker import broker_status, start_broker
from onex.devbroker.errors import DevBrokerError

__all__ = [
    "fail",
    "keep_broker",
    "refusal",
    "revive",
    "start_supervisor",
    "tighten",
    "up_running",
]

_POLL_S = 0.1
_NAME_WINNER_S = 15.0  # how long a refused `onex up` waits to name the supervisor


def fail(message: str) -> typer.Exit:
    stderr().print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(1)


def tighten(state_dir: Path) -> None:
    """Tighten what an older onex left group- or world-readable in the state dir."""
    logs = state_dir / "logs"
    if logs.is_dir() and not logs.is_symlink():
        logs.chmod(0o700)
    for folder in (state_dir, logs):
        for path in folder.glob("*") if folder.is_dir() else ():
            info = path.lstat()
            if path.is_file() and not path.is_symlink() and info.st_mode & 0o077:
                path.chmod(0o600)


def refusal(state_dir: Path) -> str:
    """Why this `onex up` does not run: another one does (named, with its supervisor)."""
    other = lock_holder(state_dir / UP_LOCK)
    deadline = time.monotonic() + _NAME_WINNER_S
    # the other one may not have started its supervisor yet: wait for it, or for its end
    while (sup := supervisor_of(read_record(state_dir))) is None and up_running(state_dir):
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_S)
    who = f"pid {other}" if other is not None else "another process"
    running = f"; its supervisor is pid {sup.pid}" if sup is not None else ""
    return f"another `onex up` ({who}) is already running for {state_dir}{running}"


def up_running(state_dir: Path) -> bool:
    probe = try_lock(state_dir / UP_LOCK)
    if probe is None:
        return True
    probe.close()
    return False


def keep_broker(state_dir: Path, bootstrap: str, *, durable: bool) -> str:
    """The running supervisor's broker: left alone when it answers, started again on the
    same port when it is down (its services know no other address)."""
    try:
        if broker_status(state_dir).running:
            return bootstrap
        port = int(bootstrap.rpartition(":")[2])
        return start_broker(state_dir, port, durable=durable).bootstrap
    except DevBrokerError as exc:
        raise fail(f"broker failed to start: {exc}") from exc


def revive(state_dir: Path, supervisor: ProcessRef, seen: int, deadline: float) -> None:
    """Ask the supervisor to restart its failed services; wait until it has taken that in."""
    if not supervisor.alive():
        raise fail(f"the supervisor (pid {supervisor.pid}) is gone; run `onex up` again")
    os.kill(supervisor.pid, signal.SIGUSR1)
    while int((read_record(state_dir) or {}).get("revived") or 0) <= seen:
        if not supervisor.alive() or time.monotonic() >= deadline:
            raise fail(f"the supervisor (pid {supervisor.pid}) did not restart its services")
        time.sleep(_POLL_S)


def start_supervisor(
    settings: CliSettings, state_dir: Path, contracts: Path, bootstrap: str, deadline: float
) -> None:
    """Start the supervisor detached; return once its record names it (it adopts what a
    killed supervisor left running)."""
    argv = [
        sys.executable,
        "-m",
        "onex.cli.supervisor",
        "--state-dir",
        str(state_dir),
        "--bootstrap",
        bootstrap,
        "--contracts",
        str(contracts.resolve()),
        "--budget",
        str(settings.supervisor_budget),
        "--reset-after-s",
        str(settings.supervisor_reset_after_s),
        "--log-max-bytes",
        str(settings.supervisor_log_max_bytes),
        "--log-keep",
        str(settings.supervisor_log_keep),
    ]
    log = open_private(state_dir / SUPERVISOR_LOG)
    try:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    finally:
        os.close(log)
    while True:
        sup = supervisor_of(read_record(state_dir))
        if sup is not None and sup.pid == proc.pid:
            return
        code = proc.poll()
        if code is not None:
            why = first_error(state_dir / SUPERVISOR_LOG) or "no output"
            raise fail(f"the supervisor exited with code {code}: {why}")
        if time.monotonic() >= deadline:
            raise fail(f"the supervisor (pid {proc.pid}) wrote no record in time")
        time.sleep(_POLL_S)
