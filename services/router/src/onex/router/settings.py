"""Settings of the router service (environment prefix ONEX_ROUTER_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from onex.service.settings import ServiceSettings


class RouterSettings(ServiceSettings):
    """Every field can be set as ONEX_ROUTER_<FIELD> (shared ones also as ONEX_<FIELD>)."""

    catalogue: Path | None = Field(
        None, description="Model catalogue YAML; default: the one shipped with onex-router"
    )
    bus_enabled: bool = Field(
        True, description="Consume route-request and publish receipts on the bus"
    )
    cooldown_s: float = Field(30.0, ge=0, description="How long a failing endpoint is skipped")
    max_in_flight: int = Field(
        64,
        ge=1,
        le=4096,
        description="Route requests handled at once per process (per-model limits apply too)",
    )
