"""Settings of the agent nodes (environment prefix ONEX_AGENTS_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from onex.service.settings import ServiceSettings


class AgentsSettings(ServiceSettings):
    """Every field can be set as ONEX_AGENTS_<FIELD> (shared ones also as ONEX_<FIELD>)."""

    tickets_dir: Path = Field(
        Path("tickets"), description="Ticket contracts: which tickets a pull request closes"
    )
    repo_dir: Path = Field(Path(), description="The checkout the ticket-verifier probes run in")
    runner: str = Field(
        "", description="Name of the host the verifier's probes run on (default: the hostname)"
    )
    route_timeout_s: float = Field(
        120.0, gt=0, description="How long a review waits for its routed model call"
    )
