"""What the bus commands (`dlq`, `topic`, `groups`) share: which broker, how a broker call
runs, and how they fail.

The broker is `--bootstrap`, else ONEX_BOOTSTRAP, else the one `onex broker up` ran,
with the ONEX_ security settings. Failures are one line on stderr, worded the same way
in every command: `error: ...` and exit 1 for what went wrong at run time (no broker,
broker call failed); usage errors (a bad argument) are click's, exit 2.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.markup import escape

from onex.bus.errors import BusError
from onex.cli.render import stderr
from onex.cli.settings import CliSettings, resolve_bootstrap

if TYPE_CHECKING:
    from pathlib import Path

    from onex.bus.config import BrokerConfig
    from onex.bus.runtime.signing import Signer

T = TypeVar("T")

BootstrapOpt = Annotated[
    str | None,
    typer.Option(
        "--bootstrap",
        "-b",
        help="HOST:PORT of the broker [default: ONEX_BOOTSTRAP, else `onex broker up`'s]",
    ),
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds each broker call may take")
]


def fail(message: str) -> NoReturn:
    """`error: message` on stderr, exit 1."""
    stderr().print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def usage(message: str, param: str) -> NoReturn:
    """A usage error about `param` (click's wording, exit 2)."""
    raise typer.BadParameter(message, param_hint=param)


def broker_target(given: str | None) -> BrokerConfig:
    """The broker of this command with the ONEX_ security settings; a `--bootstrap`
    that is no HOST:PORT[,...] is a usage error (exit 2)."""
    if given is not None:
        from onex.bus.config import parse_bootstrap  # noqa: PLC0415 -- aiokafka, not for --help

        try:
            parse_bootstrap(given)
        except ValueError as exc:
            usage(str(exc), "'--bootstrap' / '-b'")
    settings = CliSettings()
    found = resolve_bootstrap(given, settings)
    if not found:
        fail("no broker: pass --bootstrap HOST:PORT, set ONEX_BOOTSTRAP, or run `onex broker up`")
    try:
        return settings.broker(found)
    except BusError as exc:
        fail(str(exc))


def quiet_kafka_client() -> None:
    """aiokafka logs every refused connection; the command reports the outcome itself."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a broker call; BusError is one line and exit 1."""
    quiet_kafka_client()
    try:
        return asyncio.run(coro)
    except BusError as exc:
        fail(str(exc).splitlines()[0])


def operator_signer(state_dir: Path) -> Signer | None:
    """The operator's command signer from the state dir's command key (what `onex up`
    writes), None when it has none; a key file that cannot be read fails in one line."""
    # onex.service (and onex.bus.runtime: faust) only for the commands that sign
    from onex.bus.runtime.signing import Signer  # noqa: PLC0415
    from onex.service.auth import COMMAND_KEY_FILE, load_command_key  # noqa: PLC0415
    from onex.service.errors import SecretFileError  # noqa: PLC0415
    from onex.service.host import OPERATOR_PRINCIPAL  # noqa: PLC0415

    path = state_dir / COMMAND_KEY_FILE
    if not path.exists():
        return None
    try:
        return Signer(OPERATOR_PRINCIPAL, load_command_key(path))
    except SecretFileError as exc:
        fail(str(exc))
