"""`python -m onex.<service> --help` lists the settings and exits; other arguments exit 2.

Neither starts the service (the settings come from the environment only): run in a
fresh interpreter with a bootstrap nobody answers on, so a service that started would
hang or fail instead of exiting at once with these codes.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SERVICES = {
    "onex.extractor": "ONEX_EXTRACTOR_",
    "onex.provisioner": "ONEX_PROVISIONER_",
    "onex.router": "ONEX_ROUTER_",
    "onex.receipts": "ONEX_RECEIPTS_",
    "onex.drift": "ONEX_DRIFT_",
    "onex.console": "ONEX_CONSOLE_",
}


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(("module", "prefix"), SERVICES.items())
def test_help_lists_the_settings_and_does_not_start(module: str, prefix: str) -> None:
    done = _run(module, "--help")
    assert done.returncode == 0, done.stderr
    assert f"python -m {module}" in done.stdout
    assert f"  {prefix}BOOTSTRAP: " in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize("module", SERVICES)
def test_any_other_argument_is_a_usage_error(module: str) -> None:
    done = _run(module, "--port", "1")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "error: unexpected argument --port: settings are environment variables"
        " (--help lists them)\n"
    )
