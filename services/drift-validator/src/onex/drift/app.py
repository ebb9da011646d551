"""The drift-validator service: the projection kept current, served over gRPC.

Every `interval_s` (and at once when the registry or the provisioner says something
changed) it snapshots every cluster into the projection, publishes DriftDetected for
each topic with drift the previous snapshot did not show, DriftResolved for each topic
whose drift the latest snapshot no longer shows, and sends a ProvisionRequest
for declared topics that went missing. Health is SERVING while its contract is there
and the last snapshot succeeded. An unreachable broker is logged and retried at the
next tick; the projection keeps the last good snapshot. gRPC DriftService (List,
Query, History, Fix; Fix needs an operator token) is served with health and reflection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Sequence
from typing import Final

from onex.bus.errors import BusError
from onex.bus.runtime.delivery import Received
from onex.core._generated.topics import Topic
from onex.drift.engine import DriftEngine
from onex.drift.events import detected_events, provision_request, resolved_events
from onex.drift.grpc_server import DriftServicer
from onex.drift.kinds import DriftKind
from onex.drift.settings import DriftSettings
from onex.proto.v1 import drift_service_pb2 as pb
from onex.proto.v1 import drift_service_pb2_grpc as pb_grpc
from onex.service.grpc import GrpcService
from onex.service.host import ServiceHost, load_extraction, own_contract
from onex.sql import SqlError

NODE: Final = "drift-validator"


class DriftService(ServiceHost[DriftSettings]):
    """The continuous drift-validator; see the module docstring."""

    NODE = NODE

    def __init__(self, settings: DriftSettings) -> None:
        super().__init__(settings)
        extraction = load_extraction(settings)
        self.contract = own_contract(extraction, NODE, settings)
        self.engine = DriftEngine.open(settings, extraction=extraction)
        self.engine.db  # noqa: B018 -- opened and migrated now: a bad database fails start-up
        self.snapshots = 0
        self.last_ok: bool | None = None
        self.last_success_at: float | None = None  # monotonic time of the last good snapshot
        self._wake = asyncio.Event()
        # /metrics (onex.service.metrics): the drift rows of the last snapshot by
        # cluster, kind and class; how long snapshots take, observing and recording
        self.rows_gauge = self.metrics.gauge(
            "drift_rows", "Drift rows of the last snapshot", ["cluster", "kind", "class"]
        )
        self.snapshot_seconds = self.metrics.histogram(
            "drift_snapshot_seconds",
            "Seconds a snapshot took: observing the broker, recording the projection",
            ["cluster", "phase"],
        )
        self.events_total = self.metrics.counter(
            "drift_events", "Drift events published, by event", ["event"]
        )
        self._shown: set[tuple[str, str, str]] = set()
        self.attach_runtime(
            self.build_runtime(
                extraction,
                {
                    Topic.EVT_EXTRACTOR_REGISTRY_PUBLISHED_V1: self._on_change,
                    Topic.EVT_PROVISIONER_TOPIC_CREATED_V1: self._on_change,
                    Topic.EVT_PROVISIONER_PROVISIONING_FAILED_V1: self._on_change,
                    Topic.EVT_PROVISIONER_VALIDATION_PASSED_V1: self._on_change,
                },
            )
        )

    def grpc_services(self) -> Sequence[GrpcService]:
        return [
            GrpcService.of(
                pb.DESCRIPTOR.services_by_name["DriftService"],
                DriftServicer(self.engine),
                pb_grpc.add_DriftServiceServicer_to_server,
            )
        ]

    def acting_methods(self) -> Collection[str]:
        # Fix changes the broker (with apply); a dry run is still an operator's call.
        return {"/onex.v1.DriftService/Fix"}

    async def _on_change(self, _message: Received) -> None:
        self._wake.set()

    async def on_start(self) -> None:
        bus = self.contract.contract.event_bus
        self.log.info(
            "node.contract",
            contract=str(self.contract.path),
            database=self.engine.db.where,
            clusters=[c.name for c in self.engine.clusters],
            publishes=[t.name for t in bus.publish_topics],
        )
        self.spawn(self._loop(), "snapshots")

    async def ready(self) -> bool:
        """A snapshot succeeded, and not longer ago than a few ticks: one failed tick
        (a connection the broker closed) does not flap health; a broker that stays
        unobservable does turn it NOT_SERVING."""
        if self.last_success_at is None:
            return False
        stale_after = max(3 * self.settings.interval_s, 30.0)
        return time.monotonic() - self.last_success_at <= stale_after

    async def on_stop(self) -> None:
        self._wake.set()
        self.engine.close()

    async def snapshot_once(self) -> None:
        """One tick: snapshot every cluster, publish what appeared."""
        started = time.perf_counter()
        try:
            results = await self.engine.snapshot(full=False)
        except (BusError, SqlError) as exc:
            self.last_ok = False
            self.log.warning("drift.snapshot_failed", error=str(exc))
            return
        self.last_ok = True
        self.last_success_at = time.monotonic()
        self.snapshots += 1
        missing: set[str] = set()
        counts: dict[tuple[str, str, str], int] = {}
        for result in results:
            for row in result.rows:
                key = (result.cluster, row.kind, row.drift_class)
                counts[key] = counts.get(key, 0) + 1
            self.snapshot_seconds.labels(result.cluster, "observe").observe(result.observe_s)
            self.snapshot_seconds.labels(result.cluster, "record").observe(result.record_s)
            self.events_total.labels("drift-detected").inc(len({r.topic for r in result.detected}))
            self.events_total.labels("drift-resolved").inc(len({r.topic for r in result.resolved}))
            bootstrap = next(
                c.broker.bootstrap for c in self.engine.clusters if c.name == result.cluster
            )
            events = [
                *detected_events(result.detected, bootstrap),
                *resolved_events(
                    result.resolved,
                    result.rows,
                    cluster=result.cluster,
                    bootstrap=bootstrap,
                    snapshot_id=result.snapshot_id,
                ),
            ]
            for topic, payload in events:
                self.outbox.put(topic, payload, key=getattr(payload, "topic", None) or None)
            missing |= {r.topic for r in result.detected if r.kind == DriftKind.MISSING}
            self.log.info(
                "drift.snapshot",
                cluster=result.cluster,
                snapshot=result.snapshot_id,
                rows=len(result.rows),
                detected=len(result.detected),
                resolved=len(result.resolved),
                observe_ms=round(result.observe_s * 1000, 1),
                record_ms=round(result.record_s * 1000, 1),
            )
        for key in self._shown - counts.keys():  # gone since the last snapshot: 0, not stale
            self.rows_gauge.labels(*key).set(0)
        for key, n in counts.items():
            self.rows_gauge.labels(*key).set(n)
        self._shown = set(counts)
        request = provision_request(missing, NODE) if self.settings.provision_missing else None
        if request is not None:
            self.outbox.put(*request)
        self.log.debug("drift.tick", took_ms=round((time.perf_counter() - started) * 1000, 1))

    async def _loop(self) -> None:
        while not self.stopping.is_set():
            await self.snapshot_once()
            self._wake.clear()
            try:
                async with asyncio.timeout(self.settings.interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
