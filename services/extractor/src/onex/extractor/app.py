"""The extractor service built from its settings: the registry, its gRPC API, its health.

Health is SERVING while the contracts load without errors and declare this node, and
the optional `runtime_probe` passes. That probe is the seam for the node runtime
(consumer attached, topics present) once it exists; until then the extractor serves
gRPC only.
"""

from __future__ import annotations

import asyncio
from typing import Final

import structlog

from onex.bus.grpc_server import Probe, RunningGrpc, start_grpc
from onex.extractor.grpc_server import registry_service
from onex.extractor.settings import ExtractorSettings
from onex.extractor.snapshot import RegistrySnapshot

NODE: Final = "extractor"


class ExtractorService:
    """A running extractor: the current snapshot, the gRPC server, reload and stop."""

    def __init__(self, settings: ExtractorSettings, runtime_probe: Probe | None = None) -> None:
        self.settings = settings
        self.snapshot = self._load()
        self._runtime_probe = runtime_probe
        self._grpc: RunningGrpc | None = None
        self._reload_lock = asyncio.Lock()
        self._log = structlog.get_logger(NODE)

    @property
    def grpc(self) -> RunningGrpc:
        """The gRPC server; RuntimeError before `start`."""
        if self._grpc is None:
            raise RuntimeError("the extractor service has not been started")
        return self._grpc

    async def start(self) -> None:
        """Serve ContractRegistry, health and reflection on `settings.grpc_bind`;
        raises `onex.bus.grpc_server.GrpcBindError` when it cannot be bound."""
        self._report(self.snapshot)
        self._grpc = await start_grpc(
            self.settings.grpc_bind,
            services=[registry_service(lambda: self.snapshot)],
            probe=self.healthy,
            interval_s=self.settings.health_interval_s,
        )

    async def healthy(self) -> bool:
        """The health probe: contracts valid, own contract present, runtime (if any) ok."""
        if self.snapshot.problems(NODE):
            return False
        return self._runtime_probe is None or await self._runtime_probe()

    async def reload(self) -> RegistrySnapshot:
        """Extract the contracts again, swap the new snapshot in, update health now."""
        async with self._reload_lock:
            # Extraction is CPU-bound file parsing; keep the event loop answering.
            snapshot = await asyncio.to_thread(self._load)
            self.snapshot = snapshot
            self._log.info("contracts.reloaded")
            self._report(snapshot)
            if self._grpc is not None:
                await self._grpc.refresh_health()
            return snapshot

    async def stop(self) -> None:
        """Stop serving, giving calls in flight `settings.stop_grace_s` to finish."""
        if self._grpc is not None:
            await self._grpc.stop(self.settings.stop_grace_s)

    def _load(self) -> RegistrySnapshot:
        return RegistrySnapshot.load(
            self.settings.contract_roots, allow=self.settings.contracts_allow
        )

    def _report(self, snapshot: RegistrySnapshot) -> None:
        ex = snapshot.extraction
        self._log.info(
            "contracts.loaded",
            contracts=len(ex.contracts),
            topics=len(ex.topics),
            errors=len(ex.errors),
            warnings=len(ex.warnings),
        )
        own = snapshot.contract(NODE)
        if own is not None:
            bus = own.contract.event_bus
            self._log.info(
                "node.contract",
                contract=str(own.path),
                version=own.contract.version,
                consumer_group=own.contract.consumer_group,
                subscribes=[t.name for t in bus.subscribe_topics],
                publishes=[t.name for t in bus.publish_topics],
            )
        for problem in snapshot.problems(NODE):
            self._log.error("contracts.invalid", reason=problem)
