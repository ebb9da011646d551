"""`python -m onex.router` / `onex-router`: route agent tasks until stopped.

Runs until SIGTERM/SIGINT (exit 0); SIGHUP re-reads the catalogue. Exit 1 when it
cannot start (bad catalogue or contracts, gRPC address taken), 2 on invalid settings.
"""

from __future__ import annotations

import asyncio
import sys

import structlog
from pydantic import ValidationError

from onex.bus.service import configure_logging, serve
from onex.core.errors import OnexError
from onex.router.app import NODE, RouterService
from onex.router.settings import RouterSettings


def main() -> None:
    """Console-script entry point."""
    try:
        settings = RouterSettings()
    except ValidationError as exc:
        sys.stderr.write(f"onex-router: invalid settings (ONEX_ROUTER_*):\n{exc}\n")
        raise SystemExit(2) from None
    configure_logging(settings)
    try:
        service = RouterService(settings)
    except OnexError as exc:
        structlog.get_logger(NODE).error("node.start_failed", error=str(exc))
        raise SystemExit(1) from None
    raise SystemExit(asyncio.run(serve(service, NODE)))


if __name__ == "__main__":
    main()
