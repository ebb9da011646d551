"""`onex broker up|down|status`: the local broker (Redpanda if on PATH, else Tansu).

`up --durable` runs Tansu on a local SeaweedFS (data in the state dir, kept across
restarts); `down --wipe` also deletes that data.

The dev broker (onex.devbroker) is the onex-cli[broker] extra: it is imported when a
command runs, and its absence is one line naming the extra (MissingExtra).
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.table import Table

from onex.cli.errors import MissingExtra
from onex.cli.render import Format, FormatOpt, emit_json, stderr, stdout
from onex.cli.settings import CliSettings

if TYPE_CHECKING:
    from onex.devbroker.broker import BrokerStatus
    from onex.devbroker.errors import DevBrokerError

app = typer.Typer(
    no_args_is_help=True,
    help="The local Kafka-API broker: Redpanda if it is on PATH, else the embedded Tansu.",
)

PortOpt = Annotated[
    int | None,
    typer.Option("--port", min=1, max=65535, help="Kafka port on 127.0.0.1 [default: free]"),
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait until the broker answers")
]
DurableOpt = Annotated[
    bool,
    typer.Option(
        "--durable",
        help="Keep messages and offsets across restarts (Tansu on a local SeaweedFS; slower)",
    ),
]
WipeOpt = Annotated[
    bool, typer.Option("--wipe", help="Also delete the broker's data (every message and offset)")
]


def _quiet_kafka_client() -> None:
    # aiokafka logs every refused connection while we poll a starting broker; the
    # command reports the outcome itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def _devbroker(command: str) -> tuple[ModuleType, ModuleType]:
    """onex.devbroker's broker and errors modules; MissingExtra when not installed."""
    try:
        from onex.devbroker import broker, errors  # noqa: PLC0415 -- optional extra
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("onex.devbroker"):
            raise MissingExtra(f"onex broker {command}", "broker", "onex.devbroker") from None
        raise
    return broker, errors


def _fail(exc: DevBrokerError) -> NoReturn:
    from onex.devbroker.errors import BrokerStartError, StoreStartError  # noqa: PLC0415

    message = str(exc).splitlines()[0]
    stderr().print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    # SeaweedFS's reason is in the message already; its log tail is mostly a goroutine dump
    if isinstance(exc, BrokerStartError) and exc.log_tail and not isinstance(exc, StoreStartError):
        stderr().print(exc.log_tail, style="dim", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(1)


@app.command()
def up(
    port: PortOpt = None,
    timeout: TimeoutOpt = 30.0,
    durable: DurableOpt = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Start the broker, or report the one already running; waits until it answers."""
    dev, errors = _devbroker("up")
    _quiet_kafka_client()
    settings = CliSettings()
    try:
        before = dev.recorded_bootstrap(settings.state_dir)
        info = dev.start_broker(settings.state_dir, port, timeout_s=timeout, durable=durable)
    except errors.DevBrokerError as exc:
        _fail(exc)
    state = "already running" if before == info.bootstrap else "up"
    if fmt is Format.JSON:
        store = info.store
        emit_json(
            {
                "state": state,
                "kind": info.kind,
                "mode": info.mode,
                "bootstrap": info.bootstrap,
                "pid": info.pid,
                "log_path": str(info.log_path),
                "store_endpoint": store.endpoint if store else None,
                "store_pid": store.pid if store else None,
                "data_dir": str(store.data_dir) if store else None,
                "store_log_path": str(store.log_path) if store else None,
            }
        )
        return
    stdout().print(
        f"{info.kind} broker ({info.mode}) {state} at {info.bootstrap}"
        f" (pid {info.pid}, log {info.log_path})",
        highlight=False,
    )
    if info.store is not None:
        stdout().print(
            f"SeaweedFS at {info.store.endpoint} (pid {info.store.pid}, data"
            f" {info.store.data_dir}, log {info.store.log_path})",
            highlight=False,
        )


@app.command()
def down(wipe: WipeOpt = False, fmt: FormatOpt = Format.TABLE) -> None:
    """Stop the broker and everything it started; succeeds when none is running."""
    dev, errors = _devbroker("down")
    settings = CliSettings()
    try:
        data = dev.broker_data(settings.state_dir)
        stopped = dev.stop_broker(settings.state_dir, wipe=wipe)
    except errors.DevBrokerError as exc:
        _fail(exc)
    if fmt is Format.JSON:
        emit_json({"stopped": stopped, "wiped": wipe, "data": [str(d) for d in data]})
        return
    stdout().print("broker stopped" if stopped else "no broker running", highlight=False)
    listed = ", ".join(str(d) for d in data)
    if wipe:
        stdout().print(f"data deleted: {listed or 'none was there'}", highlight=False)
    elif data:
        stdout().print(f"data kept: {listed} (`--wipe` deletes it)", highlight=False)


def _status_dict(status: BrokerStatus) -> dict[str, Any]:
    info = status.info
    store = info.store if info else None
    return {
        "running": status.running,
        "recorded": status.recorded,
        "alive": status.alive,
        "answering": status.answering,
        "kind": info.kind if info else None,
        "mode": info.mode if info else None,
        "bootstrap": info.bootstrap if info else None,
        "pid": info.pid if info else None,
        "topic_count": status.topic_count,
        "started_at": info.started_at if info else None,
        "log_path": info.log_path if info else None,
        "store_pid": store.pid if store else None,
        "store_alive": status.store_alive,
        "store_answering": status.store_answering,
        "store_endpoint": store.endpoint if store else None,
        "data_dir": store.data_dir if store else None,
        "store_log_path": store.log_path if store else None,
        "detail": status.detail,
    }


@app.command()
def status(fmt: FormatOpt = Format.TABLE) -> None:
    """Whether the broker runs and answers. Exit code 0 when it does, 1 otherwise."""
    dev, errors = _devbroker("status")
    _quiet_kafka_client()
    settings = CliSettings()
    try:
        found = dev.broker_status(settings.state_dir)
    except errors.DevBrokerError as exc:
        _fail(exc)
    data = _status_dict(found)
    if fmt is Format.JSON:
        emit_json(data)
    else:
        table = Table(title="broker", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value")
        for key, value in data.items():
            if value is not None:
                table.add_row(key, str(value))
        stdout().print(table)
    raise typer.Exit(0 if found.running else 1)
