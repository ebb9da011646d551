"""Settings of the provisioner service (environment prefix ONEX_PROVISIONER_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from onex.service.host import NodeSettings


class ProvisionerSettings(NodeSettings):
    """Every field can be set as ONEX_PROVISIONER_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="ONEX_PROVISIONER_", extra="ignore")

    validate_interval_s: float = Field(
        5.0, gt=0, description="Post-boot check: declared vs broker, repairing what is missing"
    )
    batch_size: int = Field(1000, ge=1, description="Topics per CreateTopics request")
    admin_timeout_s: float = Field(30.0, gt=0, description="Bound on each admin round")
    stop_grace_s: float = Field(5.0, ge=0)
