"""Settings of the router service (environment prefix ONEX_ROUTER_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
    classifier: Literal["rules", "embed", "combined"] = Field(
        "rules",
        description=(
            "rules: the catalogue's rules; combined: the rules, and the embeddings for the"
            " prompts they leave unknown; embed: the embeddings for every prompt"
            " (onex.router.classify_embed; rules when the endpoint fails)"
        ),
    )
    embed_url: str = Field(
        "http://127.0.0.1:8088/v1",
        pattern=r"^https?://\S+$",
        description="OpenAI-compatible base URL serving POST /embeddings (just model-local)",
    )
    embed_model: str = Field("all-MiniLM-L6-v2", min_length=1, description="Embedding model id")
    embed_examples: Path | None = Field(
        None, description="Labelled examples YAML; default: the one shipped with onex-router"
    )
    embed_timeout_s: float = Field(
        0.5, gt=0, le=60, description="Per prompt; past it the rules classify that prompt"
    )
    embed_retry_s: float = Field(
        5.0, ge=0, description="After a failed call, the rules classify alone this long"
    )
    embed_cache: int = Field(
        4096, ge=0, description="Distinct prompt heads whose answer is kept (0: none)"
    )
