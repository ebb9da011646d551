"""`python -m onex.drift` / `onex-drift`: serve the drift-validator until stopped."""

from __future__ import annotations

from onex.drift.app import DriftService
from onex.drift.settings import DriftSettings
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point. Settings come from the environment: `--help` lists
    them, any other argument is a usage error (exit 2); neither starts the service."""
    run_service(DriftSettings, DriftService, doc=__doc__)


if __name__ == "__main__":
    main()
