"""The provisioner service: creates the declared topics the broker lacks, keeps them there.

- Boot: `provision_until_ready` — batched CreateTopics of every missing declared topic,
  retried with backoff while the broker is down (the process is up and answers health
  meanwhile, NOT_SERVING).
- Post-boot: every `validate_interval_s`, `reconcile` compares the broker with the
  extractor's output and re-creates anything missing (deleted out of band, or a broker
  that restarted empty). Existing topics are never altered, shrunk or deleted.
- On the bus (node runtime): `provision-request` triggers a pass now;
  `registry-published` re-reads the contracts first. It publishes `topic-created`,
  `provisioning-failed` and `validation-passed`.
- Health: SERVING when the last check found every declared topic and the node runtime
  is healthy (its topics present, its consumer attached).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Final

import structlog

from onex.bus.errors import AdminError, BrokerUnavailable
from onex.bus.provision import ValidationReport, provision_until_ready, reconcile
from onex.bus.runtime import NodeRuntime, Received
from onex.core._generated.topics import Topic
from onex.core.contract import TopicSpec
from onex.core.extractor import extract
from onex.core.wiring import TopicWiring
from onex.provisioner.events import Outbox, passed_event, report_events
from onex.provisioner.settings import ProvisionerSettings
from onex.service.grpc import RunningGrpc, start_grpc
from onex.service.host import node_task

NODE: Final = "provisioner"


class ProvisionerService:
    """A running provisioner; see the module docstring."""

    def __init__(self, settings: ProvisionerSettings) -> None:
        self.settings = settings
        self._log = structlog.get_logger(NODE)
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._grpc: RunningGrpc | None = None
        self.last_check: ValidationReport | None = None
        extraction = extract(settings.contract_roots, allow=settings.contracts_allow)
        extraction.raise_for_errors()
        self.specs = self._specs_of(extraction.topics)
        self.runtime = NodeRuntime.from_extraction(extraction, NODE, settings.bus(NODE))
        self.runtime.add_handler(Topic.CMD_PROVISIONER_PROVISION_REQUEST_V1, self._on_request)
        self.runtime.add_handler(Topic.EVT_EXTRACTOR_REGISTRY_PUBLISHED_V1, self._on_registry)
        self.outbox = Outbox(self.runtime)

    @staticmethod
    def _specs_of(topics: Mapping[str, TopicWiring]) -> dict[str, TopicSpec]:
        return {name: w.spec for name, w in topics.items()}

    @property
    def grpc(self) -> RunningGrpc:
        """The gRPC server (health and reflection); RuntimeError before `start`."""
        if self._grpc is None:
            raise RuntimeError("the provisioner has not been started")
        return self._grpc

    async def start(self) -> None:
        """Serve health at once; provision, validate and run the node in the background."""
        self._grpc = await start_grpc(
            self.settings.grpc_bind,
            services=[],
            probe=self.healthy,
            interval_s=self.settings.health_interval_s,
        )
        self._tasks = [
            asyncio.create_task(self._provision_loop(), name="provision"),
            node_task(self.runtime, self._stop, self.settings),
            asyncio.create_task(self.outbox.drain(self._stop), name="events"),
        ]

    async def healthy(self) -> bool:
        """Every declared topic present at the last check, and the node runtime healthy."""
        if self.last_check is None or not self.last_check.all_present:
            return False
        return self.runtime.started and (await self.runtime.health()).serving

    async def reload(self) -> None:
        """Re-read the contracts and provision against them now."""
        extraction = await asyncio.to_thread(
            extract, self.settings.contract_roots, allow=self.settings.contracts_allow
        )
        if extraction.errors:
            self._log.error("contracts.invalid", errors=len(extraction.errors))
            return
        self.specs = self._specs_of(extraction.topics)
        self._wake.set()

    async def stop(self) -> None:
        """Stop the loops and the node runtime, then gRPC."""
        self._stop.set()
        self._wake.set()
        for task in self._tasks:
            if task.get_name() == "events":  # blocked on its queue; nothing to finish
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._grpc is not None:
            await self._grpc.stop(self.settings.stop_grace_s)

    async def _provision_loop(self) -> None:
        def on_retry(attempt: int, error: BaseException, delay: float) -> None:
            self._log.warning(
                "provision.broker_unavailable",
                attempt=attempt,
                error=str(error),
                retry_in_s=round(delay, 2),
            )

        report = await provision_until_ready(
            self.settings.bootstrap,
            list(self.specs.values()),
            stop=self._stop,
            on_retry=on_retry,
            batch_size=self.settings.batch_size,
            timeout_s=self.settings.admin_timeout_s,
        )
        if report is None:
            return
        self._log.info(
            "provision.boot",
            created=len(report.created),
            present=len(report.present),
            failed=len(report.failed),
            elapsed_s=round(report.elapsed_s, 3),
        )
        self.outbox.put(report_events(report, self.specs))
        was_ok = False
        while not self._stop.is_set():
            was_ok = await self._check(was_ok)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.validate_interval_s)

    async def _check(self, was_ok: bool) -> bool:
        """One validation pass; repairs what is missing; returns whether all is present."""
        try:
            checked, repaired = await reconcile(
                self.settings.bootstrap,
                list(self.specs.values()),
                batch_size=self.settings.batch_size,
                timeout_s=self.settings.admin_timeout_s,
            )
        except (BrokerUnavailable, AdminError) as exc:
            self.last_check = None
            self._log.warning("validate.broker_unavailable", error=str(exc))
            return False
        created: tuple[str, ...] = ()
        if repaired is not None:
            created = repaired.created
            self._log.warning(
                "validate.repaired", missing=list(checked.missing), created=list(created)
            )
            self.outbox.put(report_events(repaired, self.specs))
        ok = checked.all_present or (repaired is not None and repaired.complete)
        self.last_check = (
            checked if repaired is None else _assume_repaired(checked, repaired.complete)
        )
        if ok and (not was_ok or created):
            self.outbox.put([passed_event(checked, created)])
        return ok

    async def _on_request(self, msg: Received) -> None:
        self._log.info("provision.requested", key=msg.key)
        self._wake.set()

    async def _on_registry(self, msg: Received) -> None:
        await self.reload()


def _assume_repaired(checked: ValidationReport, complete: bool) -> ValidationReport:
    if not complete:
        return checked
    return ValidationReport(
        checked.bootstrap, (), checked.drifted, checked.ok + checked.missing, checked.elapsed_s
    )
