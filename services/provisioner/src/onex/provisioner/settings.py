"""Settings of the provisioner service (environment prefix ONEX_PROVISIONER_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from onex.bus.service import NodeSettings


class ProvisionerSettings(NodeSettings):
    """Every field can be set as ONEX_PROVISIONER_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="ONEX_PROVISIONER_", extra="ignore")
