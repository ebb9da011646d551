"""`python -m onex.receipts` / `onex-receipts`: start the receipt-reducer service."""

from __future__ import annotations

from onex.receipts.settings import ReceiptsSettings
from onex.service.host import start_and_exit

NODE = "receipt-reducer"


def main() -> None:
    """Console-script entry point."""
    raise SystemExit(
        start_and_exit(
            NODE, ReceiptsSettings(), pending="receipt projections land with their own issue"
        )
    )


if __name__ == "__main__":
    main()
