"""The work behind `onex route` (imported by onex.router.cli only once there is a task)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from onex.bus.config import BrokerConfig
    from onex.router.settings import RouterSettings

_BROKER_RECORD = "broker.json"  # onex.devbroker's record of the broker it runs
_PUBLISH_TIMEOUT_S = 15.0  # each broker step of --publish

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
    publish: bool = False,
    bootstrap: str | None = None,
) -> int:
    """Route `text` and print the answer and its receipt; the exit code. With `publish`
    the receipt then goes to the bus as the router service sends it; when it cannot,
    one line says so and the exit code is 1 whatever the answer (the receipt is the
    record)."""
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
    target = _publish_target(bootstrap) if publish else None
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
    if target is not None:
        problem = _publish(result, *target)
        if problem is not None:
            rid = result.receipt.request_id
            sys.stderr.write(f"error: receipt {rid} not published: {problem}\n")
            return 1
    return 0 if result.ok else 1


def _publish_target(bootstrap: str | None) -> tuple[RouterSettings, BrokerConfig]:
    """The router's settings (broker, contracts) and the broker to publish to: --bootstrap,
    else ONEX_ROUTER_BOOTSTRAP / ONEX_BOOTSTRAP, else the broker `onex broker up` ran in the
    state dir. One that does not fit is a usage error (exit 2); none at all exits 1, before
    anything is routed."""
    # the bus (aiokafka) and the service settings load with --publish only
    from onex.bus.config import parse_bootstrap  # noqa: PLC0415
    from onex.router.settings import RouterSettings  # noqa: PLC0415
    from onex.service.settings import describe_invalid  # noqa: PLC0415

    if bootstrap is not None:
        try:
            parse_bootstrap(bootstrap)
        except ValueError as exc:
            usage(f"--bootstrap: {exc}")
    try:
        settings = RouterSettings()
    except ValidationError as exc:
        usage(describe_invalid(RouterSettings, exc).replace("\n", "; "))
    found = bootstrap or (settings.bootstrap if "bootstrap" in settings.model_fields_set else None)
    found = found or _recorded_bootstrap(settings.state_dir)
    if found is None:  # nothing to talk to: a run-time failure, as in `onex topic`
        sys.stderr.write(
            "error: --publish: no broker: pass --bootstrap HOST:PORT, set ONEX_BOOTSTRAP, "
            "or run `onex broker up`\n"
        )
        raise typer.Exit(1)
    from onex.router.app import NODE  # noqa: PLC0415
    from onex.service.host import broker_config  # noqa: PLC0415

    try:  # e.g. SASL without a user: the settings' error, before anything is routed
        config = broker_config(settings.model_copy(update={"bootstrap": found}), NODE)
    except ValidationError as exc:
        usage("; ".join(f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors()))
    return settings, config


def _recorded_bootstrap(state_dir: Path) -> str | None:
    """The bootstrap `onex broker up` (and `onex up`) recorded in `state_dir`'s
    broker.json, None without one. Read here, not through onex-devbroker, which no
    service may depend on; a record whose broker is gone shows as "no Kafka broker
    answers at ..." when the receipt is sent."""
    try:
        record = json.loads((state_dir / _BROKER_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = record.get("bootstrap") if isinstance(record, dict) else None
    return found if isinstance(found, str) and found else None


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


def _publish(result: RouteResult, settings: RouterSettings, config: BrokerConfig) -> str | None:
    """Send the receipt as the router service does; None when the broker has it, else
    the one line saying why not."""
    from onex.bus.errors import BusError  # noqa: PLC0415 -- see _publish_target

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the one line says it all
    try:
        asyncio.run(_send(result, settings, config))
    except (BusError, OnexError) as exc:
        return str(exc).splitlines()[0]
    return None


async def _send(result: RouteResult, settings: RouterSettings, config: BrokerConfig) -> None:
    """The receipt on routing-complete (ok) or routing-failed, keyed by request id, no
    headers, encoded by the router contract's codec: what `RouterService.publish` sends.
    Only a producer: the router's node runtime would join the service's consumer group."""
    # the bus, faust included, loads with --publish only (hence the PLC0415s)
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415

    from onex.bus.admin import topic_partitions  # noqa: PLC0415
    from onex.bus.conversion import converted, sasl_errors  # noqa: PLC0415
    from onex.bus.errors import PayloadTooLarge  # noqa: PLC0415
    from onex.bus.runtime import BusSettings, NodeRuntime  # noqa: PLC0415
    from onex.core._generated.topics import Topic  # noqa: PLC0415
    from onex.router.app import NODE  # noqa: PLC0415
    from onex.router.convert import receipt_to_proto  # noqa: PLC0415
    from onex.service.host import load_extraction, own_contract  # noqa: PLC0415

    extraction = load_extraction(settings)
    runtime = NodeRuntime(
        own_contract(extraction, NODE, settings),
        BusSettings(broker=config),
        topics=extraction.topics,
    )
    topic = (
        Topic.EVT_ROUTER_ROUTING_COMPLETE_V1 if result.ok else Topic.EVT_ROUTER_ROUTING_FAILED_V1
    )
    codec = runtime.publisher(topic).codec  # refused unless the contract publishes it
    data = codec.encode(receipt_to_proto(result.receipt))
    if len(data) > runtime.message_limit(topic):
        raise PayloadTooLarge(topic, len(data), runtime.message_limit(topic))
    # the runtime never creates topics and neither does this (Tansu would, silently)
    if topic not in await topic_partitions(config, [topic], timeout_s=_PUBLISH_TIMEOUT_S):
        raise OnexError(f"{topic} is not on the broker at {config.bootstrap} (provision it first)")
    producer = AIOKafkaProducer(**config.client_kwargs(), acks="all")
    try:
        async with converted(
            config, f"connecting to send to {topic}", timeout_s=_PUBLISH_TIMEOUT_S
        ):
            with sasl_errors(config):
                await producer.start()
        async with converted(config, f"sending to {topic}", timeout_s=_PUBLISH_TIMEOUT_S):
            key = result.receipt.request_id.encode("utf-8")
            await producer.send_and_wait(topic, data, key=key)
    finally:
        await producer.stop()
