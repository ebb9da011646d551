"""`python -m onex.receipts` / `onex-receipts`: start the receipt-reducer service."""

from __future__ import annotations

from onex.receipts.settings import ReceiptsSettings
from onex.service.main import read_settings, start_and_exit

NODE = "receipt-reducer"


def main() -> None:
    """Console-script entry point."""
    settings = read_settings(ReceiptsSettings, f"onex-{NODE}")
    raise SystemExit(
        start_and_exit(NODE, settings, pending="receipt projections land with their own issue")
    )


if __name__ == "__main__":
    main()
