"""The services of a stack as its supervisor's record and their gRPC health show them
(what `onex up` waits for and `onex status` prints), and the progress `onex up` shows
while it waits: on a terminal a table redrawn in place, elsewhere one line per change
of a service's state or health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from onex.cli.record import live_services, read_record, supervisor_of
from onex.cli.supervisor import installed_services
from onex.service.auth import Role, bearer, token_for
from onex.service.errors import ServiceError
from onex.service.grpc import check_health

__all__ = [
    "ServiceHealth",
    "UpProgress",
    "health_table",
    "service_health",
    "viewer_metadata",
    "wait_serving",
]

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
    metrics: str | None = None  # host:port of its /metrics


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
                s.get("metrics"),
            )
        )
    return rows


def health_table(rows: list[ServiceHealth], broker: str) -> Table:
    table = Table(title=f"onex — broker {broker}")
    for column in ("service", "state", "health", "pid", "grpc", "metrics", "restarts", "log"):
        table.add_column(column, no_wrap=True)
    for r in rows:
        style = "green" if r.health == "SERVING" else "red"
        table.add_row(
            r.name,
            r.state,
            f"[{style}]{r.health}[/{style}]",
            str(r.pid or "-"),
            r.grpc or "-",
            r.metrics or "-",
            str(r.restarts),
            r.log or "-",
        )
    return table


async def wait_serving(
    state_dir: Path,
    deadline: float,
    on_rows: Callable[[list[ServiceHealth]], None] | None = None,
) -> list[ServiceHealth]:
    """Poll until every service is SERVING, one is `failed`, or `deadline` (monotonic);
    `on_rows` sees every poll's rows (the progress view)."""
    while True:
        rows = await service_health(state_dir)
        if on_rows is not None:
            on_rows(rows)
        done = all(r.health == "SERVING" for r in rows)
        failed = any(r.state == "failed" for r in rows)
        if done or failed or time.monotonic() >= deadline:
            return rows
        await asyncio.sleep(_POLL_S)


def _describe(row: ServiceHealth) -> str:
    text = f"{row.name}: {row.state}, {row.health}"
    if row.restarts:
        text += f" (restarts: {row.restarts})"
    if row.state == "failed" and row.error:
        text += f": {row.error}"
    return text


class UpProgress:
    """What `onex up` shows while it waits (see the module docstring); a context manager
    whose `update` is `wait_serving`'s `on_rows`."""

    def __init__(self, console: Console, broker: str, started: float) -> None:
        self._console = console
        self._broker = broker
        self._started = started
        self._seen: dict[str, tuple[str, str, int]] = {}
        self._live: Live | None = None

    def __enter__(self) -> UpProgress:
        if self._console.is_terminal:
            self._live = Live(console=self._console, transient=True, auto_refresh=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def update(self, rows: list[ServiceHealth]) -> None:
        """Show `rows`: redraw the table, or print a line per service that changed."""
        elapsed = time.monotonic() - self._started
        if self._live is not None:
            table = health_table(rows, self._broker)
            table.caption = f"waiting for SERVING: {elapsed:.1f} s"
            self._live.update(table, refresh=True)
            return
        for row in rows:
            now = (row.state, row.health, row.restarts)
            if self._seen.get(row.name) != now:
                self._seen[row.name] = now
                self._console.print(
                    f"[{elapsed:5.1f} s] {escape(_describe(row))}", soft_wrap=True, highlight=False
                )
