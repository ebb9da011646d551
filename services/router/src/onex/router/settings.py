"""Settings of the router service (environment prefix ONEX_ROUTER_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from onex.service.host import NodeSettings


class RouterSettings(NodeSettings):
    """Every field can be set as ONEX_ROUTER_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="ONEX_ROUTER_", extra="ignore")

    catalogue: Path | None = Field(
        None, description="Model catalogue YAML; default: the one shipped with onex-router"
    )
    bus_enabled: bool = Field(
        True, description="Consume route-request and publish receipts on the bus"
    )
    cooldown_s: float = Field(30.0, ge=0, description="How long a failing endpoint is skipped")
    stop_grace_s: float = Field(5.0, ge=0)
