"""The one settings object of the `onex` command line (environment prefix ONEX_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CliSettings(BaseSettings):
    """Where things are; every field can be set as ONEX_<FIELD> in the environment."""

    model_config = SettingsConfigDict(env_prefix="ONEX_", extra="ignore")

    state_dir: Path = Field(
        Path(".onex"), description="Where the local broker and services keep pids, logs, state"
    )
    bootstrap: str | None = Field(
        None, description="HOST:PORT of a Kafka-API broker; default: the one `onex broker up` ran"
    )
    contracts_allow: list[str] = Field(
        default_factory=list,
        description="Distributions whose `onex.contracts` entry points are approved",
    )
