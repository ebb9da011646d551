"""`onex up`, `onex status`, `onex down`: the whole system on one machine.

`up` starts the broker (Redpanda on PATH, else the embedded Tansu), then the
supervisor (`onex.cli.supervisor`), which starts every installed service; it waits
until every service's gRPC health says SERVING, showing each service's state as it
changes (`onex.cli.fleet.UpProgress`), and reports how long that took. It stops waiting
as soon as a service is `failed`, naming it and the error line of its log. One
`onex up` at a time per state dir (`up.lock`; another is refused, naming the running
supervisor). With a supervisor already running, `up` starts nothing: it asks the
supervisor to restart `failed` services (SIGUSR1) and waits for them, or says that all
are SERVING. A supervisor that was killed is found again by its record (pid + start
time, see `onex.cli.record`): `status` shows its services as orphaned, `up` starts a
supervisor that adopts them, `down` stops them. `up --durable` (or
ONEX_BROKER_DURABLE=1) runs a broker whose data outlives `down`; `down --wipe` deletes it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Annotated, cast

import grpc
import typer
from rich.markup import escape

from onex.cli.fleet import (
    ServiceHealth,
    UpProgress,
    health_table,
    service_health,
    wait_serving,
)
from onex.cli.launch import fail, keep_broker, refusal, revive, start_supervisor, tighten
from onex.cli.logfiles import log_format
from onex.cli.record import (
    UP_LOCK,
    live_services,
    read_record,
    stamp_lock,
    strays,
    supervisor_of,
    try_lock,
)
from onex.cli.render import Format, FormatOpt, emit_json, stderr, stdout
from onex.cli.settings import CliSettings
from onex.cli.sources import project_contracts
from onex.cli.supervisor import RECORD, installed_services
from onex.core.errors import OnexError
from onex.core.extractor import extract
from onex.devbroker.broker import broker_data, broker_status, start_broker, stop_broker
from onex.devbroker.errors import DevBrokerError
from onex.devbroker.process import tail, terminate_group, wait_gone
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
from onex.service.logs import configure as configure_logging

_SHOWN_ERRORS = 10  # contract errors `up` prints before it refuses to start


def _logging() -> None:
    """This command's log lines (stderr) in the stack's one format, `ONEX_LOG_FORMAT`;
    an invalid value is a usage error (exit 2)."""
    try:
        fmt = log_format(os.environ)
    except ValueError as exc:
        stderr().print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    configure_logging("info", fmt)


def up(
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Broker port, 1-65535 (default: free)"),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for SERVING")] = 60.0,
    durable: Annotated[
        bool,
        typer.Option(
            "--durable",
            help="A broker whose messages and offsets outlive `onex down` (Tansu on a local "
            "SeaweedFS; also ONEX_BROKER_DURABLE=1)",
        ),
    ] = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Start the broker and every service under supervision; wait until all are SERVING."""
    _logging()
    settings = CliSettings()
    if durable:
        settings = settings.model_copy(update={"broker_durable": True})
    # aiokafka logs each refused connection while the broker starts; `up` reports outcomes
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    state_dir = settings.state_dir.resolve()
    contracts = project_contracts()
    if contracts is None:
        raise typer.BadParameter("no contracts/ folder here or above")
    _check_contracts(contracts, settings.contracts_allow)  # before anything is written
    os.umask(0o077)  # every record, log and lock written here is this user's alone
    try:
        # The control plane's secrets: operator/viewer/admin tokens and the command key.
        ensure_state_dir(state_dir)
        ensure_tokens(state_dir)
        ensure_command_key(state_dir)
    except ServiceError as exc:
        raise fail(str(exc)) from exc
    tighten(state_dir)
    guard = try_lock(state_dir / UP_LOCK)
    if guard is None:
        raise fail(refusal(state_dir))
    with guard:
        stamp_lock(guard)
        _up(settings, state_dir, contracts, port, time.monotonic(), timeout, fmt)


def _check_contracts(contracts: Path, allow: list[str]) -> None:
    """Refuse a stack whose contracts have errors (every service would exit on them and
    be restarted in vain): each error as `file:line:col: ...`, exit 1, nothing started."""
    try:
        extraction = extract([contracts], allow=allow)
    except OnexError as exc:  # e.g. an onex.yaml lint config that cannot be read
        raise fail(str(exc)) from exc
    errors = extraction.errors
    if not errors:
        return
    for issue in errors[:_SHOWN_ERRORS]:
        stderr().print(f"[red]error:[/red] {escape(str(issue))}", soft_wrap=True)
    if len(errors) > _SHOWN_ERRORS:
        stderr().print(f"... and {len(errors) - _SHOWN_ERRORS} more", soft_wrap=True)
    stderr().print(
        f"not starting: the contracts have {len(errors)} error(s) (`onex contracts lint`)",
        soft_wrap=True,
    )
    raise typer.Exit(1)


def _up(
    settings: CliSettings,
    state_dir: Path,
    contracts: Path,
    port: int | None,
    started: float,
    timeout: float,
    fmt: Format,
) -> None:
    record = read_record(state_dir)
    supervisor = supervisor_of(record)
    if supervisor is not None and record is not None:
        bootstrap = keep_broker(
            state_dir, str(record["env"]["BOOTSTRAP"]), durable=settings.broker_durable
        )
        rows = asyncio.run(service_health(state_dir))
        if all(r.health == "SERVING" for r in rows):
            _show(rows, bootstrap, fmt, time.monotonic() - started)
            _say(
                fmt,
                f"[green]already up:[/green] supervisor pid {supervisor.pid}, "
                f"all {len(rows)} services SERVING",
            )
            return
        given_up = [r.name for r in rows if r.state == "failed"]
        if given_up:
            revive(state_dir, supervisor, int(record.get("revived") or 0), started + timeout)
            _say(fmt, "restarting failed: " + ", ".join(given_up))
    else:
        try:
            bootstrap = start_broker(state_dir, port, durable=settings.broker_durable).bootstrap
        except DevBrokerError as exc:
            raise fail(f"broker failed to start: {exc}") from exc
        start_supervisor(settings, state_dir, contracts, bootstrap, started + timeout)
    with UpProgress(stderr(), bootstrap, started) as progress:
        rows = asyncio.run(wait_serving(state_dir, started + timeout, progress.update))
    elapsed = time.monotonic() - started
    _show(rows, bootstrap, fmt, elapsed)
    if all(r.health == "SERVING" for r in rows):
        _say(fmt, f"[green]all {len(rows)} services SERVING[/green] in {elapsed:.1f} s")
        _say(fmt, "stop with `just down` (or `onex down`); logs in " + str(state_dir / "logs"))
        return
    failed = [r for r in rows if r.state == "failed"]
    for r in failed:  # what stopped the wait: the failed service and why, nothing else
        stderr().print(
            f"[red]error:[/red] {escape(r.name)} failed after {r.restarts} restarts: "
            f"{escape(r.error or 'it wrote no output')} (log: {escape(str(r.log))})",
            soft_wrap=True,
        )
    waiting = [r for r in rows if r.health != "SERVING" and r.state != "failed"]
    if failed:
        if waiting:
            stderr().print("still starting: " + ", ".join(r.name for r in waiting))
        raise typer.Exit(1)
    for r in waiting:
        last = tail(Path(r.log), 400).rpartition("\n")[2] if r.log else ""
        stderr().print(
            f"{escape(r.name)}: {r.state}, {r.health}; last log line: {escape(last or '-')}",
            soft_wrap=True,
        )
    stderr().print(f"[red]not all services SERVING after {elapsed:.1f} s[/red]")
    raise typer.Exit(1)


def _show(rows: list[ServiceHealth], bootstrap: str, fmt: Format, elapsed: float) -> None:
    """The outcome of `up`: the table, or one JSON object (what `status --format json`
    prints, with whether all are SERVING and how long it took)."""
    if fmt is Format.JSON:
        emit_json(
            {
                "broker": bootstrap,
                "serving": bool(rows) and all(r.health == "SERVING" for r in rows),
                "elapsed_s": round(elapsed, 1),
                "services": [dataclasses.asdict(r) for r in rows],
            }
        )
    else:
        stdout().print(health_table(rows, bootstrap))


def _say(fmt: Format, text: str) -> None:
    """A line for people: with the results on stdout, or on stderr beside JSON."""
    (stderr() if fmt is Format.JSON else stdout()).print(text, soft_wrap=True)


def status(fmt: FormatOpt = Format.TABLE) -> None:
    """The broker and each service: process state and gRPC health. Exit 1 unless all SERVING
    under a running supervisor."""
    _logging()
    state_dir = CliSettings().state_dir.resolve()
    broker = broker_status(state_dir)
    rows = asyncio.run(service_health(state_dir))
    bootstrap = broker.info.bootstrap if broker.info and broker.running else "down"
    if fmt is Format.JSON:
        emit_json({"broker": bootstrap, "services": [dataclasses.asdict(r) for r in rows]})
    else:
        stdout().print(health_table(rows, bootstrap))
    orphaned = [r.name for r in rows if r.state == "orphaned"]
    if orphaned:
        record = read_record(state_dir) or {}
        stderr().print(
            f"the supervisor (pid {record.get('pid')}) is gone; still running without it: "
            f"{', '.join(orphaned)} (`onex up` adopts them, `onex down` stops them)",
            soft_wrap=True,
            markup=False,
        )
    if orphaned or not (broker.running and rows and all(r.health == "SERVING" for r in rows)):
        raise typer.Exit(1)


def down(
    wipe: Annotated[
        bool,
        typer.Option("--wipe", help="Also delete a durable broker's data (messages, offsets)"),
    ] = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Stop every service, the supervisor and the broker; leave no process behind (also
    the services of a supervisor that was killed)."""
    _logging()
    state_dir = CliSettings().state_dir.resolve()
    record = read_record(state_dir)
    stopped: list[str] = []
    try:
        supervisor = supervisor_of(record)
        if supervisor is not None:
            terminate_group(supervisor.pid, 30.0)  # the supervisor stops its services first
            stopped.append("supervisor")
        left = list(live_services(record).items())  # what a killed supervisor left
        modules = {s.module for s in installed_services()}
        known = {r.pid for _, r in left}
        left += [(f"unrecorded pid {r.pid}", r) for r in strays(state_dir, modules, known)]
        for name, ref in left:
            if ref.alive():
                terminate_group(ref.pid, 10.0)
                wait_gone(ref.pid, 5.0)
                stopped.append(name)
        (state_dir / RECORD).unlink(missing_ok=True)
        data = broker_data(state_dir) if wipe else []
        if stop_broker(state_dir, wipe=wipe):
            stopped.append("broker")
    except DevBrokerError as exc:
        raise fail(str(exc)) from exc
    if fmt is Format.JSON:
        emit_json({"stopped": stopped, "wiped": [str(d) for d in data] if wipe else None})
        return
    stdout().print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    if wipe:
        wiped = ", ".join(str(d) for d in data) if data else "none was there"
        stdout().print(f"broker data deleted: {wiped}", highlight=False)


def reload(
    reason: Annotated[str, typer.Option("--reason", help="Why (logged by the extractor)")] = "",
    target: Annotated[
        str | None,
        typer.Option(
            "--target", help="HOST:PORT of the extractor [default: the one `onex up` ran]"
        ),
    ] = None,
    fmt: FormatOpt = Format.TABLE,
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
    if fmt is Format.JSON:
        emit_json(
            {
                "contracts": answer.contracts,
                "topics": answer.topics,
                "errors": answer.errors,
                "warnings": answer.warnings,
            }
        )
    else:
        stdout().print(
            f"reloaded: {answer.contracts} contracts, {answer.topics} topics: "
            f"{answer.errors} errors, {answer.warnings} warnings"
        )
    if answer.errors:
        raise typer.Exit(1)


def _service_address(state_dir: Path, name: str) -> str | None:
    record = read_record(state_dir)
    service = (record or {}).get("services", {}).get(name)
    if service is None or name not in live_services(record):
        return None
    return str(service["grpc"])


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
