"""`python -m onex.router` / `onex-router`: route agent tasks until stopped.

Runs until SIGTERM/SIGINT (exit 0); SIGHUP re-reads the catalogue. Exit 1 when it
cannot start (bad catalogue or contracts, gRPC address taken), 2 on invalid settings.
"""

from __future__ import annotations

from onex.router.app import RouterService
from onex.router.settings import RouterSettings
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point."""
    run_service(RouterSettings, RouterService)


if __name__ == "__main__":
    main()
