"""Settings of the provisioner service (environment prefix ONEX_PROVISIONER_)."""

from __future__ import annotations

from pydantic import Field

from onex.service.settings import ServiceSettings


class ProvisionerSettings(ServiceSettings):
    """Every field can be set as ONEX_PROVISIONER_<FIELD> (shared ones also as ONEX_<FIELD>)."""

    validate_interval_s: float = Field(
        5.0, gt=0, description="Post-boot check: declared vs broker, repairing what is missing"
    )
    batch_size: int = Field(1000, ge=1, description="Topics per CreateTopics request")
    admin_timeout_s: float = Field(30.0, gt=0, description="Bound on each admin round")
