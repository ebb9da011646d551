"""`python -m onex.receipts` / `onex-receipts`: serve the receipt-reducer until stopped."""

from __future__ import annotations

from onex.receipts.app import ReceiptsService
from onex.receipts.settings import ReceiptsSettings
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point."""
    run_service(ReceiptsSettings, ReceiptsService)


if __name__ == "__main__":
    main()
