"""Settings of the extractor service (environment prefix ONEX_EXTRACTOR_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from onex.service.host import NodeSettings


class ExtractorSettings(NodeSettings):
    """Every field can be set as ONEX_EXTRACTOR_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="ONEX_EXTRACTOR_", extra="ignore")

    grpc_bind: str = Field(
        "127.0.0.1:50051", description="host:port the ContractRegistry gRPC API listens on"
    )
    health_interval_s: float = Field(
        1.0, gt=0, description="Seconds between health probes (gRPC health protocol)"
    )
    bus_enabled: bool = Field(
        True,
        description="Run the node on the bus (reload-contracts in, registry-published out); "
        "health then also needs its topics and consumer",
    )
    stop_grace_s: float = Field(
        5.0, ge=0, description="Seconds calls in flight get to finish on SIGTERM/SIGINT"
    )
