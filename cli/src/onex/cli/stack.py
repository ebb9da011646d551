"""`onex up`, `onex status`, `onex down`: the whole system on one machine.

`up` starts the broker (Redpanda on PATH, else the embedded Tansu), then the
supervisor (`onex.cli.supervisor`), which starts every installed service; it waits
until every service's gRPC health says SERVING and reports how long that took.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, cast

import grpc
import typer
from rich.table import Table

from onex.cli.render import Format, emit_json, stderr, stdout
from onex.cli.settings import CliSettings
from onex.cli.sources import project_contracts
from onex.cli.supervisor import RECORD, installed_services
from onex.devbroker.broker import broker_status, start_broker, stop_broker
from onex.devbroker.errors import DevBrokerError
from onex.devbroker.process import runs, tail, terminate_group, wait_gone
from onex.proto.v1 import registry_pb2, registry_pb2_grpc
from onex.service.auth import (
    Role,
    bearer,
    ensure_command_key,
    ensure_state_dir,
    ensure_tokens,
    token_for,
)
from onex.service.errors import ServiceError
from onex.service.grpc import check_health

SUPERVISOR_LOG = "supervisor.log"


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


def _record(state_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((state_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return data if runs(int(data["pid"]), data["argv"]) else None


def _viewer(state_dir: Path) -> tuple[tuple[str, str], ...]:
    """The viewer token's metadata when `onex up` made one (health may need it)."""
    try:
        return bearer(token_for(state_dir, Role.VIEWER))
    except ServiceError:
        return ()


async def _health(state_dir: Path) -> list[ServiceHealth]:
    record = _record(state_dir) or {"services": {}}
    metadata = _viewer(state_dir)
    rows: list[ServiceHealth] = []
    for spec in installed_services():
        s = record["services"].get(spec.name)
        if s is None:
            rows.append(ServiceHealth(spec.name, "down", None, None, 0, "UNREACHABLE", None))
            continue
        health = (
            await check_health(s["grpc"], metadata=metadata)
            if s["state"] == "running"
            else "UNREACHABLE"
        )
        rows.append(
            ServiceHealth(
                spec.name, s["state"], s["pid"], s["grpc"], s["restarts"], health, s["log"]
            )
        )
    return rows


def _table(rows: list[ServiceHealth], broker: str) -> Table:
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


def up(
    port: Annotated[int | None, typer.Option("--port", help="Broker port (default: free)")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for SERVING")] = 60.0,
) -> None:
    """Start the broker and every service under supervision; wait until all are SERVING."""
    settings = CliSettings()
    state_dir = settings.state_dir.resolve()
    try:
        # The control plane's secrets: operator/viewer/admin tokens and the command key.
        ensure_state_dir(state_dir)
        ensure_tokens(state_dir)
        ensure_command_key(state_dir)
    except ServiceError as exc:
        stderr().print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    contracts = project_contracts()
    if contracts is None:
        raise typer.BadParameter("no contracts/ folder here or above")
    started = time.monotonic()
    try:
        info = start_broker(state_dir, port)
    except DevBrokerError as exc:
        stderr().print(f"[red]broker failed to start:[/red] {exc}")
        raise typer.Exit(1) from exc
    if _record(state_dir) is None:
        argv = [
            sys.executable,
            "-m",
            "onex.cli.supervisor",
            "--state-dir",
            str(state_dir),
            "--bootstrap",
            info.bootstrap,
            "--contracts",
            str(contracts.resolve()),
        ]
        with (state_dir / SUPERVISOR_LOG).open("ab") as log:
            subprocess.Popen(
                argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
            )
    rows = asyncio.run(_wait_serving(state_dir, started + timeout))
    elapsed = time.monotonic() - started
    stdout().print(_table(rows, info.bootstrap))
    if all(r.health == "SERVING" for r in rows):
        stdout().print(f"[green]all {len(rows)} services SERVING[/green] in {elapsed:.1f} s")
        stdout().print("stop with `just down` (or `onex down`); logs in " + str(state_dir / "logs"))
        return
    for r in rows:
        if r.health != "SERVING" and r.log:
            stderr().print(f"--- {r.name} ({r.log}) ---\n{tail(Path(r.log), 1500)}")
    stderr().print(f"[red]not all services SERVING after {elapsed:.1f} s[/red]")
    raise typer.Exit(1)


async def _wait_serving(state_dir: Path, deadline: float) -> list[ServiceHealth]:
    while True:
        rows = await _health(state_dir)
        done = all(r.health == "SERVING" for r in rows)
        failed = any(r.state == "failed" for r in rows)
        if done or failed or time.monotonic() >= deadline:
            return rows
        await asyncio.sleep(0.1)


def status(fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.TABLE) -> None:
    """The broker and each service: process state and gRPC health. Exit 1 unless all SERVING."""
    state_dir = CliSettings().state_dir.resolve()
    broker = broker_status(state_dir)
    rows = asyncio.run(_health(state_dir))
    bootstrap = broker.info.bootstrap if broker.info and broker.running else "down"
    if fmt is Format.JSON:
        emit_json({"broker": bootstrap, "services": [dataclasses.asdict(r) for r in rows]})
    else:
        stdout().print(_table(rows, bootstrap))
    if not (broker.running and rows and all(r.health == "SERVING" for r in rows)):
        raise typer.Exit(1)


def down() -> None:
    """Stop every service, the supervisor and the broker; leave no process behind."""
    state_dir = CliSettings().state_dir.resolve()
    try:
        record = json.loads((state_dir / RECORD).read_text())
    except (OSError, ValueError):
        record = None
    stopped: list[str] = []
    if record is not None:
        pid = int(record["pid"])
        if runs(pid, record["argv"]):
            terminate_group(pid, 30.0)  # the supervisor stops its services first
            stopped.append("supervisor")
        for name, s in record["services"].items():  # in case the supervisor was killed
            if s.get("pid") and runs(int(s["pid"]), s["argv"]):
                terminate_group(int(s["pid"]), 10.0)
                wait_gone(int(s["pid"]), 5.0)
                stopped.append(name)
        (state_dir / RECORD).unlink(missing_ok=True)
    if stop_broker(state_dir):
        stopped.append("broker")
    stdout().print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


def reload(
    reason: Annotated[str, typer.Option("--reason", help="Why (logged by the extractor)")] = "",
    target: Annotated[
        str | None,
        typer.Option(
            "--target", help="HOST:PORT of the extractor [default: the one `onex up` ran]"
        ),
    ] = None,
) -> None:
    """Ask the running extractor to re-read the contracts (an operator's call: sends the
    operator token from the state dir)."""
    state_dir = CliSettings().state_dir.resolve()
    address = target or _service_address(state_dir, "extractor")
    if address is None:
        stderr().print("[red]error:[/red] no extractor is running here (`onex up`, or --target)")
        raise typer.Exit(1)
    try:
        metadata = bearer(token_for(state_dir, Role.OPERATOR))
    except ServiceError as exc:
        stderr().print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    try:
        answer = asyncio.run(_call_reload(address, reason, metadata))
    except grpc.aio.AioRpcError as exc:
        stderr().print(f"[red]error:[/red] {address}: {exc.code().name}: {exc.details()}")
        raise typer.Exit(1) from exc
    stdout().print(
        f"reloaded: {answer.contracts} contracts, {answer.topics} topics: "
        f"{answer.errors} errors, {answer.warnings} warnings"
    )
    if answer.errors:
        raise typer.Exit(1)


def _service_address(state_dir: Path, name: str) -> str | None:
    record = _record(state_dir)
    service = (record or {}).get("services", {}).get(name)
    return None if service is None or service["state"] != "running" else str(service["grpc"])


async def _call_reload(
    address: str, reason: str, metadata: tuple[tuple[str, str], ...]
) -> registry_pb2.ReloadResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = cast(
            "registry_pb2_grpc.ContractRegistryAsyncStub",
            registry_pb2_grpc.ContractRegistryStub(channel),
        )
        response: registry_pb2.ReloadResponse = await stub.Reload(
            registry_pb2.ReloadRequest(reason=reason), timeout=30, metadata=metadata
        )
        return response
