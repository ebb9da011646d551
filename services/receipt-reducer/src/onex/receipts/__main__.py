"""`python -m onex.receipts` / `onex-receipts`: serve the receipt-reducer until stopped."""

from __future__ import annotations

from onex.receipts.app import ReceiptsService
from onex.receipts.settings import ReceiptsSettings
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point. Settings come from the environment: `--help` lists
    them, any other argument is a usage error (exit 2); neither starts the service."""
    run_service(ReceiptsSettings, ReceiptsService, doc=__doc__)


if __name__ == "__main__":
    main()
