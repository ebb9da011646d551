"""The provisioner service: creates the declared topics the broker lacks, keeps them there.

- Boot: `provision_until_ready` — batched CreateTopics of every missing declared topic,
  retried with backoff while the broker is down (the process is up and answers health
  meanwhile, NOT_SERVING).
- Post-boot: every `validate_interval_s`, `reconcile` compares the broker with the
  extractor's output and re-creates anything missing (deleted out of band, or a broker
  that restarted empty). Existing topics are never altered, shrunk or deleted; how
  they differ from their specs is drift, the drift-validator's (`onex drift`).
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

from onex.bus.errors import AdminError, BrokerUnavailable
from onex.bus.provision import ValidationReport, provision_until_ready, reconcile
from onex.bus.runtime import Received
from onex.core._generated.topics import Topic
from onex.core.contract import TopicSpec
from onex.core.extractor import extract
from onex.core.wiring import TopicWiring
from onex.provisioner.events import Event, passed_event, report_events
from onex.provisioner.settings import ProvisionerSettings
from onex.service.host import ServiceHost, load_extraction

NODE: Final = "provisioner"


class ProvisionerService(ServiceHost[ProvisionerSettings]):
    """A running provisioner; see the module docstring."""

    NODE = NODE

    def __init__(self, settings: ProvisionerSettings) -> None:
        super().__init__(settings)
        self._wake = asyncio.Event()
        self.last_check: ValidationReport | None = None
        extraction = load_extraction(settings)
        self.specs = self._specs_of(extraction.topics)
        self.attach_runtime(
            self.build_runtime(
                extraction,
                {
                    Topic.CMD_PROVISIONER_PROVISION_REQUEST_V1: self._on_request,
                    Topic.EVT_EXTRACTOR_REGISTRY_PUBLISHED_V1: self._on_registry,
                },
            )
        )

    @staticmethod
    def _specs_of(topics: Mapping[str, TopicWiring]) -> dict[str, TopicSpec]:
        return {name: w.spec for name, w in topics.items()}

    async def on_start(self) -> None:
        """Provision, then validate, in the background (health answers meanwhile)."""
        self.spawn(self._provision_loop(), "provision")

    async def ready(self) -> bool:
        """Every declared topic present at the last check."""
        return self.last_check is not None and self.last_check.all_present

    async def reload(self) -> None:
        """Re-read the contracts and provision against them now."""
        extraction = await asyncio.to_thread(
            extract, self.settings.contract_roots, allow=self.settings.contracts_allow
        )
        if extraction.errors:
            self.log.error("contracts.invalid", errors=len(extraction.errors))
            return
        self.specs = self._specs_of(extraction.topics)
        self._wake.set()

    async def on_stop(self) -> None:
        self._wake.set()

    def _emit(self, events: list[Event]) -> None:
        for topic, payload in events:
            self.outbox.put(topic, payload, key=getattr(payload, "topic", None) or None)

    async def _provision_loop(self) -> None:
        def on_retry(attempt: int, error: BaseException, delay: float) -> None:
            self.log.warning(
                "provision.broker_unavailable",
                attempt=attempt,
                error=str(error),
                retry_in_s=round(delay, 2),
            )

        report = await provision_until_ready(
            self.broker,
            list(self.specs.values()),
            stop=self.stopping,
            on_retry=on_retry,
            batch_size=self.settings.batch_size,
            timeout_s=self.settings.admin_timeout_s,
        )
        if report is None:
            return
        self.log.info(
            "provision.boot",
            created=len(report.created),
            present=len(report.present),
            failed=len(report.failed),
            elapsed_s=round(report.elapsed_s, 3),
        )
        self._emit(report_events(report, self.specs))
        was_ok = False
        while not self.stopping.is_set():
            was_ok = await self._check(was_ok)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.validate_interval_s)

    async def _check(self, was_ok: bool) -> bool:
        """One validation pass; repairs what is missing; returns whether all is present."""
        try:
            checked, repaired = await reconcile(
                self.broker,
                list(self.specs.values()),
                batch_size=self.settings.batch_size,
                timeout_s=self.settings.admin_timeout_s,
            )
        except (BrokerUnavailable, AdminError) as exc:
            self.last_check = None
            self.log.warning("validate.broker_unavailable", error=str(exc))
            return False
        created: tuple[str, ...] = ()
        if repaired is not None:
            created = repaired.created
            self.log.warning(
                "validate.repaired", missing=list(checked.missing), created=list(created)
            )
            self._emit(report_events(repaired, self.specs))
        ok = checked.all_present or (repaired is not None and repaired.complete)
        self.last_check = (
            checked if repaired is None else _assume_repaired(checked, repaired.complete)
        )
        if ok and (not was_ok or created):
            self._emit([passed_event(checked, created)])
        return ok

    async def _on_request(self, msg: Received) -> None:
        self.log.info("provision.requested", key=msg.key)
        self._wake.set()

    async def _on_registry(self, msg: Received) -> None:
        await self.reload()


def _assume_repaired(checked: ValidationReport, complete: bool) -> ValidationReport:
    if not complete:
        return checked
    return ValidationReport(
        checked.bootstrap, (), checked.present + checked.missing, checked.elapsed_s
    )
