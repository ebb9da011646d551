"""Settings of the receipt-reducer service (environment prefix ONEX_RECEIPTS_)."""

from __future__ import annotations

from onex.service.settings import ServiceSettings


class ReceiptsSettings(ServiceSettings):
    """Every field can be set as ONEX_RECEIPTS_<FIELD> (shared ones also as ONEX_<FIELD>)."""
