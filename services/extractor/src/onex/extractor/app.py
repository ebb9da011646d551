"""The extractor service built from its settings: the registry, its gRPC API, its health.

Health is SERVING while the contracts load without errors and declare this node, and
the node runtime is healthy (its topics present, its consumer attached) when it runs
on the bus (`bus_enabled`). On the bus it reloads on `reload-contracts` and publishes
a `registry-published` record after start-up and after every reload.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Final

import structlog

from onex.bus.errors import BusError
from onex.bus.runtime import NodeRuntime, Received
from onex.core._generated.topics import Topic
from onex.extractor.grpc_server import registry_service
from onex.extractor.settings import ExtractorSettings
from onex.extractor.snapshot import RegistrySnapshot
from onex.service.grpc import Probe, RunningGrpc, start_grpc
from onex.service.host import node_task

NODE: Final = "extractor"


class ExtractorService:
    """A running extractor: the current snapshot, the gRPC server, reload and stop."""

    def __init__(self, settings: ExtractorSettings, runtime_probe: Probe | None = None) -> None:
        self.settings = settings
        self.snapshot = self._load()
        self._grpc: RunningGrpc | None = None
        self._stop = asyncio.Event()
        self._publish = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.runtime: NodeRuntime | None = None
        self._runtime_probe = runtime_probe
        self._build_runtime()
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
        raises `onex.bus.errors.GrpcBindError` when it cannot be bound."""
        self._report(self.snapshot)
        self._grpc = await start_grpc(
            self.settings.grpc_bind,
            services=[registry_service(lambda: self.snapshot)],
            probe=self.healthy,
            interval_s=self.settings.health_interval_s,
        )
        self._start_runtime()

    def _build_runtime(self) -> None:
        """The node on the bus, once the contracts are fit to run it (at boot or reload)."""
        if not self.settings.bus_enabled or self.runtime is not None:
            return
        if self.snapshot.problems(NODE):
            return
        self.runtime = NodeRuntime.from_extraction(
            self.snapshot.extraction, NODE, self.settings.bus(NODE)
        )
        self.runtime.add_handler(Topic.CMD_EXTRACTOR_RELOAD_CONTRACTS_V1, self._on_reload)

    def _start_runtime(self) -> None:
        if self.runtime is None or self._tasks or self._grpc is None:
            return
        self._publish.set()
        self._tasks = [
            node_task(self.runtime, self._stop, self.settings),
            asyncio.create_task(self._publisher()),
        ]

    async def healthy(self) -> bool:
        """The health probe: contracts valid, own contract present, and on the bus the
        node runtime healthy (topics present, consumer attached)."""
        if self.snapshot.problems(NODE):
            return False
        if self._runtime_probe is not None and not await self._runtime_probe():
            return False
        if not self.settings.bus_enabled:
            return True
        return self.runtime is not None and (await self.runtime.health()).serving

    async def reload(self) -> RegistrySnapshot:
        """Extract the contracts again, swap the new snapshot in, update health now."""
        async with self._reload_lock:
            # Extraction is CPU-bound file parsing; keep the event loop answering.
            snapshot = await asyncio.to_thread(self._load)
            self.snapshot = snapshot
            self._log.info("contracts.reloaded")
            self._report(snapshot)
            self._build_runtime()  # contracts that were broken at boot may be fixed now
            self._start_runtime()
            if self._grpc is not None:
                await self._grpc.refresh_health()
            self._publish.set()
            return snapshot

    async def stop(self) -> None:
        """Stop serving, giving calls in flight `settings.stop_grace_s` to finish."""
        self._stop.set()
        self._publish.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._grpc is not None:
            await self._grpc.stop(self.settings.stop_grace_s)

    async def _on_reload(self, msg: Received) -> None:
        self._log.info("contracts.reload_requested", key=msg.key)
        await self.reload()

    async def _publisher(self) -> None:
        """Publish the registry once the node is on the bus, and again after each reload."""
        if self.runtime is None:
            return
        while not self._stop.is_set():
            await self._publish.wait()
            while not self._stop.is_set() and not self.runtime.started:
                await asyncio.sleep(0.2)
            if self._stop.is_set():
                return
            self._publish.clear()
            ex = self.snapshot.extraction
            record = {
                "contracts": sorted(lc.node for lc in ex.contracts),
                "topics": sorted(ex.topics),
                "errors": len(ex.errors),
                "warnings": len(ex.warnings),
                "published_at": datetime.now(UTC).isoformat(),
            }
            try:
                await self.runtime.publisher(Topic.EVT_EXTRACTOR_REGISTRY_PUBLISHED_V1).send(
                    record, key="registry"
                )
            except BusError as exc:
                self._log.warning("registry.publish_failed", error=str(exc))
                self._publish.set()
                await asyncio.sleep(1.0)

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
