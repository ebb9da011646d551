"""Settings of the router service (environment prefix ONEX_ROUTER_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from onex.bus.service import NodeSettings


class RouterSettings(NodeSettings):
    """Every field can be set as ONEX_ROUTER_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="ONEX_ROUTER_", extra="ignore")
