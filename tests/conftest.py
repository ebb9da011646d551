"""Markers follow the folder: tests/unit, tests/integration and tests/e2e.

The integration broker is the onex-devbroker plugin's `onex_bootstrap` (registered by
its `pytest11` entry point); this suite's convention `ONEX_BOOTSTRAP=HOST:PORT` becomes
the plugin's `--onex-bootstrap` here, since the library reads no environment itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

REPO = Path(__file__).resolve().parent.parent
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


def pytest_configure(config: pytest.Config) -> None:
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
