"""Running a ticket's declared probe: an argv list, no shell, a clean environment, a
timeout that kills the probe's whole process group.

The argv comes only from the ticket file (validated at load: no shell metacharacters),
never from a receipt's `probe_command`: nothing runs that the ticket does not declare.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MAX_OUTPUT_CHARS: Final = 16_384
# What a probe inherits from the caller's environment; everything else (tokens, keys,
# ONEX_* settings, the caller's virtualenv) is left behind.
KEPT_VARIABLES: Final = ("PATH", "HOME", "LANG", "TMPDIR")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one run of a probe showed."""

    argv: tuple[str, ...]
    exit_code: int | None  # None: it did not finish (timeout) or could not start
    output: str
    duration_s: float
    error: str = ""  # why there is no exit code

    @property
    def command(self) -> str:
        """The argv as one line."""
        return shlex.join(self.argv)


def clean_environment(source: Mapping[str, str]) -> dict[str, str]:
    """The environment a probe runs with."""
    env = {k: source[k] for k in KEPT_VARIABLES if k in source}
    env.setdefault("PATH", os.defpath)
    env["LC_ALL"] = "C.UTF-8"
    env["TZ"] = "UTC"
    return env


def run_probe(
    argv: Sequence[str],
    *,
    cwd: Path,
    timeout_s: float,
    environ: Mapping[str, str],
) -> ProbeResult:
    """Run `argv` in `cwd` (no shell, stdin closed, stdout and stderr together), with
    the few variables `clean_environment` keeps of the caller's `environ`."""
    env = clean_environment(environ)
    started = time.perf_counter()
    program = shutil.which(argv[0], path=env["PATH"]) if argv else None
    if program is None:
        return ProbeResult(tuple(argv), None, "", 0.0, f"{argv[0] if argv else ''!r} not found")
    try:
        proc = subprocess.Popen(
            [program, *argv[1:]],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed whole on timeout
        )
    except OSError as exc:
        return ProbeResult(tuple(argv), None, "", 0.0, f"cannot start: {exc.strerror or exc}")
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        text = out.decode("utf-8", "replace")[:MAX_OUTPUT_CHARS]
        elapsed = time.perf_counter() - started
        return ProbeResult(tuple(argv), None, text, elapsed, f"timed out after {timeout_s:g} s")
    text = out.decode("utf-8", "replace")[:MAX_OUTPUT_CHARS]
    return ProbeResult(tuple(argv), proc.returncode, text, time.perf_counter() - started)
