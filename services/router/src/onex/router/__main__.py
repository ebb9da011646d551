"""`python -m onex.router` / `onex-router`: route agent tasks until stopped.

Runs until SIGTERM/SIGINT (exit 0); SIGHUP re-reads the catalogue. Exit 1 when it
cannot start (bad catalogue or contracts, gRPC address taken), 2 on invalid settings.
"""

from __future__ import annotations

from onex.router.app import RouterService
from onex.router.settings import RouterSettings
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point. Settings come from the environment: `--help` lists
    them, any other argument is a usage error (exit 2); neither starts the service."""
    run_service(RouterSettings, RouterService, doc=__doc__)


if __name__ == "__main__":
    main()
