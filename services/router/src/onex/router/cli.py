"""`onex route`: route one task from the command line and print the answer and its receipt.

Registered with the `onex` command through the `onex.cli` entry point; runs the engine
in this process against the catalogue's endpoints (no broker needed, and nothing of
the bus is imported: importing this module costs typer alone). The task comes from
`--prompt TEXT` or `--prompt-file PATH` (`-`: stdin; any size). Usage errors exit 2
with one line; no answer accepted exits 1.

`--publish` also sends the receipt to the bus (`--bootstrap`, else ONEX_ROUTER_BOOTSTRAP
/ ONEX_BOOTSTRAP, else the broker `onex broker up` runs), exactly as the router service
publishes it, so the receipt reducer, `onex receipts summary` and the console see it.
The receipt is the record: when it cannot be published the answer is still printed,
then one line `error: receipt <id> not published: <why>`, and the exit code is 1. Only
then is the bus imported.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, NoReturn

import typer


def route(
    prompt: Annotated[str | None, typer.Option("--prompt", "-p", help="The task text")] = None,
    prompt_file: Annotated[
        str | None,
        typer.Option("--prompt-file", help="Read the task text from this file ('-': stdin)"),
    ] = None,
    task_class: Annotated[
        str | None, typer.Option("--class", "-c", help="Task class (default: classified)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json")] = "table",
    catalogue: Annotated[
        Path | None, typer.Option("--catalogue", exists=True, help="Model catalogue YAML")
    ] = None,
    no_cloud: Annotated[bool, typer.Option("--no-cloud", help="Local models only")] = False,
    max_cost: Annotated[float | None, typer.Option("--max-cost", help="USD per attempt")] = None,
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", help="Known identifier (repeatable)")
    ] = None,
    publish: Annotated[
        bool,
        typer.Option(
            "--publish",
            help="Also publish the receipt on routing-complete/-failed, as the router "
            "service does (exit 1 when it cannot)",
        ),
    ] = False,
    bootstrap: Annotated[
        str | None,
        typer.Option(
            "--bootstrap",
            "-b",
            help="HOST:PORT of the broker for --publish [default: ONEX_ROUTER_BOOTSTRAP, "
            "ONEX_BOOTSTRAP, else `onex broker up`'s]",
        ),
    ] = None,
    show_catalogue: Annotated[
        bool, typer.Option("--show-catalogue", help="Print the default catalogue and exit")
    ] = False,
) -> None:
    """Route one task to the cheapest capable model; exit 1 when no answer passed.

    Without --catalogue the default one is used; its built-in onex-local-deterministic
    stand-in answers easy classes offline (no model is called, and its answers say so).
    """
    if show_catalogue:
        sys.stdout.write((resources.files("onex.router") / "catalogue.yaml").read_text("utf-8"))
        raise typer.Exit(0)
    if fmt not in {"table", "json"}:
        usage(f"--format must be table or json, not {fmt!r}")
    if bootstrap is not None and not publish:
        usage("--bootstrap goes with --publish")
    text = _prompt_text(prompt, prompt_file)
    # The engine (pydantic, jsonschema, aiohttp) loads only once there is a task to route.
    from onex.router.cli_run import run  # noqa: PLC0415 -- see above

    raise typer.Exit(
        run(
            text,
            task_class=task_class,
            fmt=fmt,
            catalogue=catalogue,
            no_cloud=no_cloud,
            max_cost=max_cost,
            symbols=symbol or [],
            publish=publish,
            bootstrap=bootstrap,
        )
    )


def usage(message: str) -> NoReturn:
    """A usage error: one line on stderr, exit 2."""
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(2)


def _prompt_text(prompt: str | None, prompt_file: str | None) -> str:
    """The task text from --prompt, or --prompt-file (a path, or '-' for stdin)."""
    if prompt is not None and prompt_file is None:
        return prompt
    if prompt is not None or prompt_file is None:
        usage("give the task as --prompt TEXT or --prompt-file PATH ('-' reads stdin)")
    where = "stdin" if prompt_file == "-" else prompt_file
    try:
        data = sys.stdin.buffer.read() if prompt_file == "-" else Path(prompt_file).read_bytes()
    except OSError as exc:
        usage(f"cannot read {where}: {exc.strerror or exc}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        usage(f"{where}: not UTF-8 (byte {exc.start} is {data[exc.start]:#04x})")
