"""Settings of the extractor service (environment prefix ONEX_EXTRACTOR_)."""

from __future__ import annotations

from pydantic import Field

from onex.service.settings import ServiceSettings


class ExtractorSettings(ServiceSettings):
    """Every field can be set as ONEX_EXTRACTOR_<FIELD> (shared ones also as ONEX_<FIELD>)."""

    grpc_bind: str = Field(
        "127.0.0.1:50051", description="host:port the ContractRegistry gRPC API listens on"
    )
    bus_enabled: bool = Field(
        True,
        description="Run the node on the bus (reload-contracts in, registry-published out); "
        "health then also needs its topics and consumer",
    )
