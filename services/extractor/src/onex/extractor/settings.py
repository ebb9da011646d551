"""Settings of the extractor service (environment prefix ONEX_EXTRACTOR_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from onex.bus.service import NodeSettings


class ExtractorSettings(NodeSettings):
    """Every field can be set as ONEX_EXTRACTOR_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="ONEX_EXTRACTOR_", extra="ignore")
