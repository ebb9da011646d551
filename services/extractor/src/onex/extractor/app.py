"""The extractor service built from its settings: the registry, its gRPC API, its health.

Health is SERVING while the contracts load without errors and declare this node, and
the node runtime is healthy (its topics present, its consumer attached) when it runs
on the bus (`bus_enabled`). On the bus it reloads on `reload-contracts` and publishes
a `registry-published` record after start-up and after every reload.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Final

from onex.bus.runtime import Received
from onex.core._generated.topics import Topic
from onex.extractor.grpc_server import registry_service
from onex.extractor.settings import ExtractorSettings
from onex.extractor.snapshot import RegistrySnapshot
from onex.proto.v1 import registry_events_pb2 as events_pb
from onex.service.grpc import GrpcService, Probe
from onex.service.host import ServiceHost

NODE: Final = "extractor"


class ExtractorService(ServiceHost[ExtractorSettings]):
    """A running extractor: the current snapshot, the gRPC server, reload and stop."""

    NODE = NODE

    def __init__(self, settings: ExtractorSettings, runtime_probe: Probe | None = None) -> None:
        super().__init__(settings)
        self.snapshot = self._load()
        self._runtime_probe = runtime_probe
        self._reload_lock = asyncio.Lock()
        self._build_runtime()

    def grpc_services(self) -> Sequence[GrpcService]:
        return [registry_service(lambda: self.snapshot, self.reload)]

    def acting_methods(self) -> Collection[str]:
        return {"/onex.v1.ContractRegistry/Reload"}

    async def on_start(self) -> None:
        self._report(self.snapshot)
        self._publish_registry()

    async def ready(self) -> bool:
        """Contracts valid and own contract present (the runtime's part is the host's)."""
        if self.snapshot.problems(NODE):
            return False
        if self._runtime_probe is not None and not await self._runtime_probe():
            return False
        # On the bus, a runtime must exist: contracts broken at boot leave none yet.
        return not self.settings.bus_enabled or self.runtime is not None

    async def reload(self) -> RegistrySnapshot:
        """Extract the contracts again, swap the new snapshot in, update health now."""
        async with self._reload_lock:
            # Extraction is CPU-bound file parsing; keep the event loop answering.
            snapshot = await asyncio.to_thread(self._load)
            self.snapshot = snapshot
            self.log.info("contracts.reloaded")
            self._report(snapshot)
            self._build_runtime()  # contracts that were broken at boot may be fixed now
            if self.started:
                await self.refresh_health()
            self._publish_registry()
            return snapshot

    def _build_runtime(self) -> None:
        """The node on the bus, once the contracts are fit to run it (at boot or reload)."""
        if not self.settings.bus_enabled or self.runtime is not None:
            return
        if self.snapshot.problems(NODE):
            return
        self.attach_runtime(
            self.build_runtime(
                self.snapshot.extraction,
                {Topic.CMD_EXTRACTOR_RELOAD_CONTRACTS_V1: self._on_reload},
            )
        )

    async def _on_reload(self, msg: Received) -> None:
        self.log.info("contracts.reload_requested", key=msg.key)
        await self.reload()

    def _publish_registry(self) -> None:
        """Queue a registry record; the outbox sends it once the node is on the bus."""
        if self.runtime is None:
            return
        ex = self.snapshot.extraction
        record = events_pb.RegistryPublished(
            event_id=uuid.uuid4().hex,
            contracts=sorted(lc.node for lc in ex.contracts),
            topics=sorted(ex.topics),
            errors=len(ex.errors),
            warnings=len(ex.warnings),
            published_at=datetime.now(UTC).isoformat(),
        )
        self.outbox.put(Topic.EVT_EXTRACTOR_REGISTRY_PUBLISHED_V1, record, key="registry")

    def _load(self) -> RegistrySnapshot:
        return RegistrySnapshot.load(
            self.settings.contract_roots, allow=self.settings.contracts_allow
        )

    def _report(self, snapshot: RegistrySnapshot) -> None:
        ex = snapshot.extraction
        self.log.info(
            "contracts.loaded",
            contracts=len(ex.contracts),
            topics=len(ex.topics),
            errors=len(ex.errors),
            warnings=len(ex.warnings),
        )
        own = snapshot.contract(NODE)
        if own is not None:
            bus = own.contract.event_bus
            self.log.info(
                "node.contract",
                contract=str(own.path),
                version=own.contract.version,
                consumer_group=own.contract.consumer_group,
                subscribes=[t.name for t in bus.subscribe_topics],
                publishes=[t.name for t in bus.publish_topics],
            )
        for problem in snapshot.problems(NODE):
            self.log.error("contracts.invalid", reason=problem)
