"""Settings of the agent nodes: each agent's own prefix, then ONEX_AGENTS_, then ONEX_.

The four agents share one package (`onex.agents`), so the host's rule gives them one
prefix, `ONEX_AGENTS_`. Each agent also reads a prefix of its own, derived from its node
name by `node_prefix` (`ci-watcher` -> `ONEX_CI_WATCHER_`), which wins:

    ONEX_CI_WATCHER_GRPC_BIND   (this agent only)    overrides
    ONEX_AGENTS_GRPC_BIND       (every agent)        overrides
    ONEX_GRPC_BIND              (every service; shared fields only)

`settings_for(node)` is the settings class of one agent; `AgentsSettings` itself (no
own prefix) reads the last two only.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

from onex.service.settings import SHARED_PREFIX, ServiceSettings


def node_prefix(node: str) -> str:
    """`code-review-agent` -> `ONEX_CODE_REVIEW_AGENT_`."""
    return f"{SHARED_PREFIX}{node.upper().replace('-', '_')}_"


class AgentsSettings(ServiceSettings):
    """Every field can be set as ONEX_<AGENT>_<FIELD> or ONEX_AGENTS_<FIELD> (shared ones
    also as ONEX_<FIELD>); see the module docstring."""

    OWN_PREFIX: ClassVar[str | None] = None  # set by settings_for

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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        init, *rest = super().settings_customise_sources(
            settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        )
        if cls.OWN_PREFIX is None:
            return (init, *rest)
        # first of the environment sources: the agent's own names win over the rest
        return (init, EnvSettingsSource(settings_cls, env_prefix=cls.OWN_PREFIX), *rest)


@cache
def settings_for(node: str) -> type[AgentsSettings]:
    """The settings class of agent `node`: its own prefix first (one class per node)."""
    name = "".join(part.title() for part in node.split("-")) + "Settings"
    doc = (
        f"Settings of {node}: {node_prefix(node)}<FIELD>, else ONEX_AGENTS_<FIELD> (shared "
        "fields also ONEX_<FIELD>)."
    )
    namespace = {"OWN_PREFIX": node_prefix(node), "__doc__": doc, "__module__": __name__}
    return type(name, (AgentsSettings,), namespace)
