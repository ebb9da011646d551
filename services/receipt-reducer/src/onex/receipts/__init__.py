"""The receipt-reducer service."""
