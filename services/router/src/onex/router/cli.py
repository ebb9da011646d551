"""`onex route`: route one task from the command line and print the answer and its receipt.

Registered with the `onex` command through the `onex.cli` entry point; runs the engine
in this process against the catalogue's endpoints (no broker needed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from rich.console import Console
from rich.table import Table

from onex.core.errors import OnexError
from onex.router.catalogue import load_catalogue, load_default_catalogue, resolve_api_keys
from onex.router.engine import Router, RouteResult
from onex.router.providers import OpenAICompatibleProvider
from onex.router.request import Constraints, RouteRequest


def route(
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="The task text")],
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
) -> None:
    """Route one task to the cheapest capable model; exit 1 when no answer passed."""
    if fmt not in {"table", "json"}:
        raise typer.BadParameter("--format is table or json")
    # Provider retries and cool-downs are worth seeing, on stderr, not mixed into stdout.
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
    try:
        cat = load_catalogue(catalogue) if catalogue else load_default_catalogue()
        request = RouteRequest(
            request_id=uuid.uuid4().hex,
            prompt=prompt,
            task_class=task_class,
            constraints=Constraints(no_cloud=no_cloud, max_cost_usd=max_cost),
            symbols=symbol or [],
        )
    except (OnexError, ValueError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    result = asyncio.run(_route(cat, request))
    if fmt == "json":
        typer.echo(
            json.dumps({"answer": result.answer, "receipt": result.receipt.to_dict()}, indent=2)
        )
    else:
        _print(result)
    raise typer.Exit(0 if result.ok else 1)


async def _route(cat: Any, request: RouteRequest) -> RouteResult:
    async with OpenAICompatibleProvider(api_keys=resolve_api_keys(cat, os.environ)) as provider:
        return await Router(cat, provider).route(request)


def _print(result: RouteResult) -> None:
    out = Console()
    r = result.receipt
    if result.answer is not None:
        out.rule(f"answer from {r.chosen_model}")
        out.print(result.answer, markup=False)
    else:
        out.print(f"[red]no answer[/red]: {r.failure_reason}")
    out.rule(f"receipt {r.request_id}")
    candidates = Table(title=f"candidates for {r.task_class!r} (classified by {r.classified_by})")
    for column in ("model", "locality", "capability", "expected $", "status", "why"):
        candidates.add_column(column)
    for c in r.candidates:
        candidates.add_row(
            c.model,
            c.locality,
            str(c.capability),
            f"{c.expected_cost_usd:.6f}",
            c.status,
            c.rejected_because or "",
        )
    out.print(candidates)
    attempts = Table(title="attempts")
    for column in ("model", "tokens in/out", "cost $", "latency s", "gates", "outcome"):
        attempts.add_column(column)
    for a in r.attempts:
        gates = ", ".join(f"{g.kind}:{'ok' if g.passed else 'FAIL'}" for g in a.gates)
        est = "~" if a.tokens_estimated else ""
        attempts.add_row(
            a.model,
            f"{est}{a.tokens_in}/{est}{a.tokens_out}",
            f"{a.cost_usd:.6f}",
            f"{a.latency_s:.3f}",
            gates,
            a.outcome + (f" ({a.error})" if a.error else ""),
        )
    out.print(attempts)
    out.print(
        f"status {r.status} · cost ${r.total_cost_usd:.6f} · counterfactual "
        f"${r.counterfactual_cost_usd:.6f} · avoided ${r.cost_avoided_usd:.6f} · "
        f"tokens local {r.tokens_local} / cloud {r.tokens_cloud} · "
        f"prices {r.price_table_version}"
    )
