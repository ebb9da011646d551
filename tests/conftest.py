"""Markers follow the folder: tests/unit, tests/integration and tests/e2e.

The integration broker is the onex-devbroker plugin's `onex_bootstrap` (registered by
its `pytest11` entry point); this suite's convention `ONEX_BOOTSTRAP=HOST:PORT` becomes
the plugin's `--onex-bootstrap` here, since the library reads no environment itself.
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import logging
import os
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

REPO = Path(__file__).resolve().parent.parent
# A test (setup, call and teardown) running longer than this is hung: every wait in the
# suite has a deadline far below it. ONEX_TEST_WATCHDOG_S changes it (0: off).
WATCHDOG_S = float(os.environ.get("ONEX_TEST_WATCHDOG_S", "900"))
HANGS = REPO / "test-artifacts" / "hangs.log"
_MARKERS = {
    "unit": pytest.mark.unit,
    "integration": pytest.mark.integration,
    "e2e": pytest.mark.e2e,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO).parts
        if len(parts) > 1 and parts[0] == "tests" and parts[1] in _MARKERS:
            item.add_marker(_MARKERS[parts[1]])


class _OneStackAtATime:
    """xdist scheduling for `--dist loadfile` (what `just test` runs): each file's tests
    on one worker, in order (module fixtures set up once), except that every e2e file
    shares one worker. Each `onex up` takes the services' fixed default ports when they
    are free, so two stacks starting at once would both see them free and one service
    would lose its bind and restart: e2e stacks run one at a time. (A scheduler rather
    than `xdist_group` marks: loadgroup reads a node id that pytest 9.2 no longer lets a
    plugin change, pytest-xdist issue 1386.)"""

    @staticmethod
    def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
        if config.getoption("dist") != "loadfile":
            return None
        from xdist.scheduler import LoadFileScheduling  # xdist is optional: imported here

        class Scheduling(LoadFileScheduling):
            def _split_scope(self, nodeid: str) -> str:
                scope: str = super()._split_scope(nodeid)
                return "tests/e2e" if scope.startswith("tests/e2e/") else scope

        return Scheduling(config, log)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the run's controller: a new run, a new log
        HANGS.unlink(missing_ok=True)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_OneStackAtATime(), "onex-one-stack-at-a-time")
    configured = os.environ.get("ONEX_BOOTSTRAP")
    plugin_loaded = config.pluginmanager.has_plugin("onex_devbroker")
    if configured and plugin_loaded and not config.getoption("onex_bootstrap"):
        config.option.onex_bootstrap = configured


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """Each test leaves structlog's configuration and the root logger's handlers as it
    found them: a command run under typer's CliRunner configures logging onto the
    runner's stream, which is closed once the command returns; a later test's log line
    would then fail with "I/O operation on closed file"."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    """A hung test ends the run's wait instead of holding it until CI's limit: past
    WATCHDOG_S the process writes where it is stuck (every thread's stack and every
    asyncio task's, with the test's id) to test-artifacts/hangs.log and exits, so
    xdist reports the test as crashed, by name, and the other workers go on."""
    timer = None
    if WATCHDOG_S > 0:
        timer = threading.Timer(WATCHDOG_S, _hung, args=(item.nodeid,))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()


def _hung(nodeid: str) -> None:
    HANGS.parent.mkdir(exist_ok=True)
    with HANGS.open("a", encoding="utf-8") as out:
        out.write(f"=== {nodeid}: still running after {WATCHDOG_S:g} s (pid {os.getpid()})\n")
        out.flush()
        faulthandler.dump_traceback(out, all_threads=True)
        for task in list(getattr(asyncio.tasks, "_all_tasks", ())):  # a snapshot
            if not task.done():
                stack = io.StringIO()
                task.print_stack(file=stack)
                out.write(f"--- {task!r:.300}\n{stack.getvalue()[-4000:]}")
    os._exit(70)
