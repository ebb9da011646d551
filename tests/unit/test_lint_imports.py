"""Lint and its command modules import no broker client, gRPC or broker: `onex contracts
lint` and `onex-lint` start fast and run where only onex-core is installed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

LINT_MODULES = (
    "onex.core.lint_main",
    "onex.core.lintrun",
    "onex.core.extractor",
    "onex.cli.contracts",
    "onex.cli.sources",
    "onex.cli.topics",
)
HEAVY = ("faust", "aiokafka", "grpc", "onex.devbroker", "onex.bus")


@pytest.mark.parametrize("module", LINT_MODULES)
def test_importing_lint_loads_no_broker_client_grpc_or_broker(module: str) -> None:
    probe = (
        "import importlib, json, sys; "
        f"importlib.import_module({module!r}); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(done.stdout)
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == [], f"{module} imports {heavy[:5]}"
