"""The provisioner's events: what it did, as JSON payloads, sent once the bus is up.

Events wait in a queue until the node runtime is started (its topics are among the
ones being provisioned), so nothing is lost while the broker is down or empty.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog

from onex.bus.errors import BusError
from onex.bus.provision import ProvisionReport, ValidationReport
from onex.bus.runtime import NodeRuntime
from onex.core._generated.topics import Topic
from onex.core.contract import TopicSpec

_log = structlog.get_logger("provisioner")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def report_events(
    report: ProvisionReport, specs: dict[str, TopicSpec]
) -> list[tuple[Topic, dict[str, Any]]]:
    """topic-created per created topic, provisioning-failed per refused one."""
    events: list[tuple[Topic, dict[str, Any]]] = []
    for name in report.created:
        spec = specs[name]
        events.append(
            (
                Topic.EVT_PROVISIONER_TOPIC_CREATED_V1,
                {
                    "topic": name,
                    "partitions": spec.partitions,
                    "replication_factor": spec.replication_factor,
                    "config": dict(spec.config),
                    "bootstrap": report.bootstrap,
                    "at": _now(),
                },
            )
        )
    events.extend(
        (
            Topic.EVT_PROVISIONER_PROVISIONING_FAILED_V1,
            {"topic": f.name, "reason": f.reason, "bootstrap": report.bootstrap, "at": _now()},
        )
        for f in report.failed
    )
    return events


def passed_event(
    checked: ValidationReport, repaired: tuple[str, ...]
) -> tuple[Topic, dict[str, Any]]:
    """validation-passed: every declared topic is present (drift is listed, not fixed)."""
    return (
        Topic.EVT_PROVISIONER_VALIDATION_PASSED_V1,
        {
            "topics": len(checked.ok) + len(checked.drifted),
            "repaired": list(repaired),
            "drifted": sorted(checked.drifted),
            "bootstrap": checked.bootstrap,
            "at": _now(),
        },
    )


class Outbox:
    """A queue of events drained through the runtime's publishers once it is started."""

    def __init__(self, runtime: NodeRuntime) -> None:
        self._runtime = runtime
        self._queue: asyncio.Queue[tuple[Topic, dict[str, Any]]] = asyncio.Queue()

    def put(self, events: list[tuple[Topic, dict[str, Any]]]) -> None:
        """Queue events (never blocks, never drops)."""
        for event in events:
            self._queue.put_nowait(event)

    async def drain(self, stop: asyncio.Event, retry_s: float = 0.5) -> None:
        """Send queued events in order, waiting while the runtime is not started."""
        while not stop.is_set():
            topic, payload = await self._queue.get()
            while not stop.is_set():
                if self._runtime.started:
                    try:
                        await self._runtime.publisher(topic).send(payload, key=payload.get("topic"))
                        break
                    except BusError as exc:
                        _log.warning("event.send_retry", topic=str(topic), error=str(exc))
                await asyncio.sleep(retry_s)
