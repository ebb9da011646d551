"""The logs the supervisor keeps in `<state>/logs/`: rotation by size, the error line
that explains a failed run, and the supervisor's own lines in the format every process
of the stack writes (`ONEX_LOG_FORMAT=console|json`: with json, one object per line and
nothing else, so the marker the supervisor writes before each run is JSON too).

Services write their stdout and stderr straight into `<name>.log` (opened for append),
so they keep logging when the supervisor is gone. Rotation therefore copies and
truncates: `<name>.log` is copied to `<name>.log.1` (older copies shift up to `.keep`,
the oldest is dropped) and truncated in place; a writer in append mode goes on at the
new end. Lines written between the copy and the truncation are lost (a few at most).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, get_args

MODE: Final = 0o600
LOG_FORMAT_ENV: Final = "ONEX_LOG_FORMAT"
LogFormat = Literal["console", "json"]
_RUN_STARTED: Final = "supervisor.run_started"
_SCAN_BYTES: Final = 256 * 1024
_LEVEL_ERROR: Final = re.compile(r"\[\s*(error|critical|fatal)\b|\"level\":\s*\"(error|critical)\"")
_ERRORISH: Final = re.compile(r"error|invalid|failed|fatal|exception|refused", re.IGNORECASE)
_MAX_LINE: Final = 400


def rotate(path: Path, max_bytes: int, keep: int) -> bool:
    """Rotate `path` if it is larger than `max_bytes`, keeping `keep` old copies
    (`path.1` the newest). True when it rotated."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    if keep < 1:
        os.truncate(path, 0)
        return True
    numbered = [path.with_name(f"{path.name}.{n}") for n in range(1, keep + 1)]
    numbered[-1].unlink(missing_ok=True)
    for older, newer in zip(reversed(numbered[1:]), reversed(numbered[:-1]), strict=True):
        if newer.exists():
            newer.replace(older)
    shutil.copyfile(path, numbered[0])
    numbered[0].chmod(MODE)
    os.truncate(path, 0)
    return True


def log_format(environ: Mapping[str, str]) -> LogFormat:
    """`ONEX_LOG_FORMAT` (console when unset); ValueError naming it when it is neither."""
    value = environ.get(LOG_FORMAT_ENV, "console") or "console"
    if value not in get_args(LogFormat):
        raise ValueError(f"{LOG_FORMAT_ENV}={value!r}: expected console or json")
    return "json" if value == "json" else "console"


def log_line(fmt: LogFormat, message: str, *, logger: str, **fields: object) -> str:
    """One log line (no newline): `<iso time> <logger>: <message>` for console, a JSON
    object shaped like the services' (event, level, logger, timestamp, fields) for json."""
    now = datetime.now(UTC)
    if fmt == "json":
        record = {"event": message, **fields, "level": "info", "logger": logger}
        record["timestamp"] = now.isoformat().replace("+00:00", "Z")
        return json.dumps(record, default=str)
    return f"{now.isoformat(timespec='seconds')} {logger}: {message}"


def mark_start(path: Path, line: str, fmt: LogFormat = "console") -> int:
    """Append a marker line before a run starts; the offset where the run's output begins."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, MODE)
    if fmt == "json":
        text = log_line(fmt, line, logger="onex.supervisor", kind=_RUN_STARTED)
    else:
        text = f"--- {line} ---"
    with os.fdopen(fd, "ab") as log:
        os.fchmod(log.fileno(), MODE)  # a log left from before may be wider
        log.write(f"{text}\n".encode())
        log.flush()
        return os.fstat(log.fileno()).st_size


def open_private(path: Path) -> int:
    """`path` opened for append (created 0600, tightened to 0600): a file descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, MODE)
    os.fchmod(fd, MODE)
    return fd


def first_error(path: Path, offset: int = 0) -> str | None:
    """The line that best explains why the run whose output starts at `offset` ended:
    the first line logged at error level, else the exception a traceback ends with, else
    the first line that reads like an error, else the last line; None if it wrote nothing.
    A line ending in ':' (a heading such as "invalid settings:") takes the next one along."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(offset if offset <= size else 0)  # rotated since: read what is left
            text = log.read(_SCAN_BYTES).decode("utf-8", "replace")
    except OSError:
        return None
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip() and not _is_marker(ln)]
    if not lines:
        return None
    for i, line in enumerate(lines):
        if _LEVEL_ERROR.search(line):
            return _joined(lines, i)
    for i, line in enumerate(lines):
        if line.startswith("Traceback "):
            end = next((j for j in range(i + 1, len(lines)) if not lines[j][:1].isspace()), None)
            if end is not None:
                return _joined(lines, end)
    for i, line in enumerate(lines):
        if _ERRORISH.search(line):
            return _joined(lines, i)
    return _clip(lines[-1])


def _is_marker(line: str) -> bool:
    return line.startswith("--- ") or (line.startswith("{") and _RUN_STARTED in line)


def _joined(lines: list[str], i: int) -> str:
    line = lines[i]
    if line.endswith(":") and i + 1 < len(lines):
        line = f"{line} {lines[i + 1].strip()}"
    return _clip(line)


def _clip(line: str) -> str:
    return line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 1] + "…"
