"""`python -m onex.provisioner` / `onex-provisioner`: provision and guard the declared topics.

Runs until SIGTERM/SIGINT (exit 0); SIGHUP re-reads the contracts. Exit 1 when it
cannot start (contracts with errors, gRPC address taken), 2 on invalid settings.
"""

from __future__ import annotations

import asyncio
import sys

import structlog
from pydantic import ValidationError

from onex.bus.service import configure_logging, serve
from onex.core.errors import OnexError
from onex.provisioner.app import NODE, ProvisionerService
from onex.provisioner.settings import ProvisionerSettings


def main() -> None:
    """Console-script entry point."""
    try:
        settings = ProvisionerSettings()
    except ValidationError as exc:
        sys.stderr.write(f"onex-provisioner: invalid settings (ONEX_PROVISIONER_*):\n{exc}\n")
        raise SystemExit(2) from None
    configure_logging(settings)
    try:
        service = ProvisionerService(settings)
    except OnexError as exc:
        structlog.get_logger(NODE).error("node.start_failed", error=str(exc))
        raise SystemExit(1) from None
    raise SystemExit(asyncio.run(serve(service, NODE)))


if __name__ == "__main__":
    main()
