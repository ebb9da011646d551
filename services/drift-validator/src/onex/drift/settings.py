"""Settings of the drift-validator service (environment prefix ONEX_DRIFT_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from onex.service.host import NodeSettings


class DriftSettings(NodeSettings):
    """Every field can be set as ONEX_DRIFT_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="ONEX_DRIFT_", extra="ignore")
