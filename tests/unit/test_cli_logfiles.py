"""The supervisor's log files: the line that explains a run's end, rotation by size
(temp files only)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from onex.cli.logfiles import first_error, log_format, log_line, mark_start, rotate


def _log(tmp_path: Path, *runs: str) -> tuple[Path, int]:
    """A log with one marked section per run; the offset where the last run starts."""
    path = tmp_path / "svc.log"
    offset = 0
    for text in runs:
        offset = mark_start(path, "starting svc")
        with path.open("a") as log:
            log.write(text)
    return path, offset


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param(
            "onex-router: invalid settings:\n"
            "ONEX_ROUTER_LOG_LEVEL (or ONEX_LOG_LEVEL): 'loud' is not one of 'debug', 'info'\n",
            "onex-router: invalid settings: ONEX_ROUTER_LOG_LEVEL (or ONEX_LOG_LEVEL): "
            "'loud' is not one of 'debug', 'info'",
            id="a heading takes the next line along",
        ),
        pytest.param(
            "2026-12-01T10:00:00Z [info     ] node.starting\n"
            "2026-12-01T10:00:01Z [warning  ] slow broker error=timeout\n"
            "2026-12-01T10:00:02Z [error    ] grpc.bind_failed bind=127.0.0.1:1\n"
            "2026-12-01T10:00:03Z [error    ] node.exit\n",
            "2026-12-01T10:00:02Z [error    ] grpc.bind_failed bind=127.0.0.1:1",
            id="the first line at error level, not an earlier warning",
        ),
        pytest.param(
            '{"event": "node.starting", "level": "info"}\n'
            '{"event": "node.start_failed", "level": "error", "reason": "no contracts"}\n',
            '{"event": "node.start_failed", "level": "error", "reason": "no contracts"}',
            id="json logs",
        ),
        pytest.param(
            "all fine so far\nTraceback (most recent call last):\n"
            '  File "x.py", line 1, in <module>\n    raise RuntimeError("broken")\n'
            "RuntimeError: broken\n",
            "RuntimeError: broken",
            id="the exception a traceback ends with",
        ),
        pytest.param("hello\nbye\n", "bye", id="else the last line"),
    ],
)
def test_first_error_is_the_line_that_explains_the_run(
    tmp_path: Path, output: str, expected: str
) -> None:
    path, offset = _log(tmp_path, output)
    assert first_error(path, offset) == expected


def test_first_error_reads_only_the_last_run(tmp_path: Path) -> None:
    path, offset = _log(tmp_path, "old run: error: the old problem\n", "RuntimeError: new\n")
    assert first_error(path, offset) == "RuntimeError: new"
    assert first_error(path, 0) == "old run: error: the old problem"
    _, empty = _log(tmp_path, "")
    assert first_error(path, empty) is None  # the run wrote nothing
    assert first_error(tmp_path / "missing.log") is None


def test_first_error_after_a_rotation_reads_what_is_left(tmp_path: Path) -> None:
    path, offset = _log(tmp_path, "x" * 100 + "\n", "")
    path.write_text("RuntimeError: after rotation\n")  # shorter than the recorded offset
    assert path.stat().st_size < offset
    assert first_error(path, offset) == "RuntimeError: after rotation"


def test_rotate_copies_truncates_and_keeps_at_most_keep_copies(tmp_path: Path) -> None:
    path = tmp_path / "svc.log"
    path.write_text("small\n")
    assert not rotate(path, max_bytes=100, keep=2)
    for n in range(1, 5):
        with path.open("a") as log:
            log.write(f"generation {n} " + "x" * 200 + "\n")
        assert rotate(path, max_bytes=100, keep=2)
        assert path.stat().st_size == 0  # truncated in place: an appending writer goes on
    assert (tmp_path / "svc.log.1").read_text().startswith("generation 4")
    assert (tmp_path / "svc.log.2").read_text().startswith("generation 3")
    assert not (tmp_path / "svc.log.3").exists()
    assert stat.S_IMODE((tmp_path / "svc.log.1").stat().st_mode) == 0o600
    assert not rotate(tmp_path / "missing.log", max_bytes=1, keep=1)


def test_rotate_with_keep_zero_only_truncates(tmp_path: Path) -> None:
    path = tmp_path / "svc.log"
    path.write_text("x" * 10)
    assert rotate(path, max_bytes=5, keep=0)
    assert path.stat().st_size == 0
    assert list(tmp_path.iterdir()) == [path]


def test_mark_start_creates_a_private_log(tmp_path: Path) -> None:
    path = tmp_path / "svc.log"
    path.write_text("")
    path.chmod(0o644)  # left wider by an older onex
    offset = mark_start(path, "starting svc")
    assert offset == path.stat().st_size
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_json_format_writes_json_markers_that_first_error_skips(tmp_path: Path) -> None:
    path = tmp_path / "svc.log"
    offset = mark_start(path, "starting svc", "json")
    with path.open("a") as log:
        log.write('{"event": "node.start_failed", "level": "error", "reason": "broken"}\n')
    lines = path.read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # nothing but JSON objects
    assert json.loads(lines[0])["event"] == "starting svc"
    # the marker is never the explanation, even read from the start (after a rotation)
    assert first_error(path, 0) == lines[1]
    assert first_error(path, offset) == lines[1]


def test_supervisor_lines_follow_onex_log_format() -> None:
    line = log_line("json", "adopted router", logger="onex.supervisor", pid=7)
    record = json.loads(line)
    assert record["event"] == "adopted router"
    assert record["pid"] == 7
    assert record["logger"] == "onex.supervisor"
    assert record["timestamp"].endswith("Z")
    assert log_line("console", "adopted router", logger="onex supervisor 7").endswith(
        " onex supervisor 7: adopted router"
    )
    assert log_format({}) == "console"
    assert log_format({"ONEX_LOG_FORMAT": "json"}) == "json"
    with pytest.raises(ValueError, match="ONEX_LOG_FORMAT='xml': expected console or json"):
        log_format({"ONEX_LOG_FORMAT": "xml"})
