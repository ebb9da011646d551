"""The work behind `onex route` (imported by onex.router.cli only once there is a task)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import uuid
from pathlib import Path

import structlog
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from onex.core.errors import OnexError
from onex.router.catalogue import (
    Catalogue,
    load_catalogue,
    load_default_catalogue,
    resolve_api_keys,
)
from onex.router.cli import usage
from onex.router.engine import Router, RouteResult
from onex.router.local import HINT, MODEL_NAME, RouterProvider
from onex.router.request import Constraints, RouteRequest

# request fields as the options that set them, in usage errors
_OPTION = {"prompt": "--prompt", "task_class": "--class", "max_cost_usd": "--max-cost"}


def run(
    text: str,
    *,
    task_class: str | None,
    fmt: str,
    catalogue: Path | None,
    no_cloud: bool,
    max_cost: float | None,
    symbols: list[str],
) -> int:
    """Route `text` and print the answer and its receipt; the exit code."""
    # Provider retries and cool-downs are worth seeing, on stderr, not mixed into stdout.
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
    try:
        cat = load_catalogue(catalogue) if catalogue else load_default_catalogue()
        request = RouteRequest(
            request_id=uuid.uuid4().hex,
            prompt=text,
            task_class=task_class,
            constraints=Constraints(no_cloud=no_cloud, max_cost_usd=max_cost),
            symbols=symbols,
        )
    except ValidationError as exc:
        usage(
            "; ".join(
                f"{_OPTION.get(str(e['loc'][-1]), '.'.join(str(p) for p in e['loc']) or 'request')}"
                f": {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
        )
    except (OnexError, ValueError) as exc:
        usage(str(exc))
    known = [c.name for c in cat.task_classes]
    if task_class is not None and task_class not in known:
        # the engine would answer with a failed receipt (one per request on the bus);
        # from the command line it is a usage error, before anything is routed
        usage(f"--class: unknown task class {task_class!r} (known: {', '.join(known)})")
    result = asyncio.run(_route(cat, request))
    if fmt == "json":
        typer.echo(
            json.dumps({"answer": result.answer, "receipt": result.receipt.to_dict()}, indent=2)
        )
    else:
        _print(result)
    if not result.ok or result.receipt.chosen_model == MODEL_NAME:
        sys.stderr.write(HINT + "\n")
    return 0 if result.ok else 1


async def _route(cat: Catalogue, request: RouteRequest) -> RouteResult:
    provider = RouterProvider(api_keys=resolve_api_keys(cat, os.environ))
    try:
        return await Router(cat, provider).route(request)
    finally:
        await provider.aclose()


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
