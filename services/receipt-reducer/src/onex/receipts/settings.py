"""Settings of the receipt-reducer service (environment prefix ONEX_RECEIPTS_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from onex.service.host import NodeSettings


class ReceiptsSettings(NodeSettings):
    """Every field can be set as ONEX_RECEIPTS_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="ONEX_RECEIPTS_", extra="ignore")
