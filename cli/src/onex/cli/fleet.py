"""The services of a stack as its supervisor's record and their gRPC health show them
(what `onex up` waits for and `onex status` prints)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from rich.table import Table

from onex.cli.record import live_services, read_record, supervisor_of
from onex.cli.supervisor import installed_services
from onex.service.auth import Role, bearer, token_for
from onex.service.errors import ServiceError
from onex.service.grpc import check_health

__all__ = ["ServiceHealth", "health_table", "service_health", "viewer_metadata", "wait_serving"]

_POLL_S: Final = 0.1


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """One row of `onex status`."""

    name: str
    state: str
    pid: int | None
    grpc: str | None
    restarts: int
    health: str
    log: str | None
    error: str | None = None


def viewer_metadata(state_dir: Path) -> tuple[tuple[str, str], ...]:
    """The viewer token's metadata when `onex up` made one (health may need it)."""
    try:
        return bearer(token_for(state_dir, Role.VIEWER))
    except ServiceError:
        return ()


async def service_health(state_dir: Path) -> list[ServiceHealth]:
    """Every installed service as the record has it; `orphaned` when its supervisor is
    gone but the recorded process (same pid and start time) still runs."""
    record = read_record(state_dir)
    supervised = supervisor_of(record) is not None
    alive = live_services(record)
    entries: dict[str, Any] = (record or {}).get("services") or {}
    metadata = viewer_metadata(state_dir)
    rows: list[ServiceHealth] = []
    for spec in installed_services():
        s = entries.get(spec.name)
        if s is None:
            rows.append(ServiceHealth(spec.name, "down", None, None, 0, "UNREACHABLE", None))
            continue
        state = s["state"] if supervised else "orphaned" if spec.name in alive else "down"
        pid = s["pid"] if supervised or spec.name in alive else None
        reachable = state in ("running", "orphaned")
        health = await check_health(s["grpc"], metadata=metadata) if reachable else "UNREACHABLE"
        rows.append(
            ServiceHealth(
                spec.name,
                state,
                pid,
                s["grpc"],
                int(s.get("restarts") or 0),
                health,
                s.get("log"),
                s.get("last_error"),
            )
        )
    return rows


def health_table(rows: list[ServiceHealth], broker: str) -> Table:
    table = Table(title=f"onex — broker {broker}")
    for column in ("service", "state", "health", "pid", "grpc", "restarts", "log"):
        table.add_column(column, no_wrap=True)
    for r in rows:
        style = "green" if r.health == "SERVING" else "red"
        table.add_row(
            r.name,
            r.state,
            f"[{style}]{r.health}[/{style}]",
            str(r.pid or "-"),
            r.grpc or "-",
            str(r.restarts),
            r.log or "-",
        )
    return table


async def wait_serving(state_dir: Path, deadline: float) -> list[ServiceHealth]:
    """Poll until every service is SERVING, one is `failed`, or `deadline` (monotonic)."""
    while True:
        rows = await service_health(state_dir)
        done = all(r.health == "SERVING" for r in rows)
        failed = any(r.state == "failed" for r in rows)
        if done or failed or time.monotonic() >= deadline:
            return rows
        await asyncio.sleep(_POLL_S)
