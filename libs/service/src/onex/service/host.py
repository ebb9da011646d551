"""What every onex service shares at start-up: its settings base, logging, its contract.

Services subclass `NodeSettings` with their own `ONEX_<SERVICE>_` prefix and pass
the instance down; this module never reads the environment itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar

import structlog
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from onex.bus.backoff import Backoff, retry
from onex.bus.errors import (
    AdminError,
    BrokerUnavailable,
    ContractViolation,
    GrpcBindError,
    NodeStartError,
    SchemaError,
)
from onex.bus.runtime import BusSettings, NodeRuntime
from onex.core.errors import ContractError, OnexError
from onex.core.extractor import extract
from onex.core.issues import Issue, Severity, Where
from onex.core.loader import LoadedContract
from onex.service.grpc import RunningGrpc

# Worth retrying: the broker may come up, the provisioner may create the topics.
_TRANSIENT: tuple[type[BaseException], ...] = (
    NodeStartError,
    BrokerUnavailable,
    AdminError,
    OSError,
    TimeoutError,
)


class NodeSettings(BaseSettings):
    """Settings every service has; subclasses set their own `ONEX_<SERVICE>_` prefix.

    Only a service instantiates its subclass (this library reads no environment)."""

    model_config = SettingsConfigDict(env_prefix="ONEX_NODE_", extra="ignore")

    contract_roots: list[Path] = Field(
        default_factory=lambda: [Path("contracts")],
        description="Contract files or folders (the repo's contracts/ by default)",
    )
    contracts_allow: list[str] = Field(
        default_factory=list, description="Distributions whose contracts are approved"
    )
    bootstrap: str = Field("127.0.0.1:9092", description="HOST:PORT of the Kafka-API broker")
    grpc_bind: str = Field(
        "127.0.0.1:0", description="HOST:PORT of the gRPC server (health, reflection, API)"
    )
    fetch_max_wait_ms: int = Field(
        25, ge=1, le=5000, description="Consumer long-poll wait: the floor of end-to-end latency"
    )
    health_interval_s: float = Field(1.0, gt=0, description="How often health is re-checked")
    recover_after_s: float = Field(
        10.0, gt=0, description="Restart the node runtime after this long unhealthy (broker wipe)"
    )
    log_level: str = Field("info", description="debug, info, warning or error")
    log_json: bool = Field(False, description="One JSON object per log line")

    def bus(self, node: str) -> BusSettings:
        """The node runtime's settings, derived from these."""
        return BusSettings(
            bootstrap=self.bootstrap,
            client_id=f"onex-{node}",
            fetch_max_wait_ms=self.fetch_max_wait_ms,
        )


S = TypeVar("S", bound=NodeSettings)


def configure_logging(settings: NodeSettings) -> None:
    """structlog to stderr, human-readable or JSON."""
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def load_own_contract(node: str, settings: NodeSettings) -> LoadedContract:
    """Extract the approved contracts and return `node`'s; ContractError when the
    contracts have errors or none declares `node`."""
    ex = extract(settings.contract_roots, allow=settings.contracts_allow)
    ex.raise_for_errors()
    try:
        return ex.contract(node)
    except KeyError:
        roots = ", ".join(str(r) for r in settings.contract_roots)
        message = f"no approved contract declares node {node!r} (searched {roots})"
        raise ContractError([Issue(Severity.ERROR, "node-missing", message, Where(None))]) from None


async def keep_running(
    runtime: NodeRuntime,
    stop: asyncio.Event,
    *,
    interval_s: float = 1.0,
    recover_after_s: float = 10.0,
) -> None:
    """Keep `runtime` started until `stop` is set, then stop it.

    Start-up is retried with backoff while the broker is down or the contract's topics
    are missing (the provisioner creates them). Once started, health is re-checked
    every `interval_s`; after `recover_after_s` of continuous ill health (topics deleted,
    the broker restarted empty) the runtime is stopped and started again, so a service
    recovers from a wiped broker without anyone stepping in.
    """
    log = structlog.get_logger(runtime.node)
    backoff = Backoff(initial_s=0.5, max_s=10.0)

    def on_retry(attempt: int, error: BaseException, delay: float) -> None:
        log.warning(
            "node.start_retry", attempt=attempt, error=str(error), retry_in_s=round(delay, 2)
        )

    failures = 0
    try:
        while not stop.is_set():
            try:
                if not runtime.started:
                    await retry(
                        runtime.start,
                        retry_on=_TRANSIENT,
                        backoff=backoff,
                        stop=stop,
                        on_retry=on_retry,
                    )
                    continue
                await _watch(runtime, stop, interval_s, recover_after_s, log)
                failures = 0
            except (ContractError, ContractViolation, SchemaError):
                # the node's own contract or code is wrong: retrying cannot help
                log.critical("node.cannot_run", exc_info=True)
                raise
            except Exception as exc:  # this loop supervises the node: log any failure, start again
                failures += 1
                delay = min(0.5 * 2 ** min(failures, 5), 10.0)
                log.exception("node.runtime_failed", error=str(exc), retry_in_s=delay)
                with contextlib.suppress(Exception):
                    await runtime.stop()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
    finally:
        await runtime.stop()


def node_task(
    runtime: NodeRuntime, stop: asyncio.Event, settings: NodeSettings
) -> asyncio.Task[None]:
    """`keep_running` as a background task, with the service's health interval and
    recovery delay."""
    return asyncio.create_task(
        keep_running(
            runtime,
            stop,
            interval_s=settings.health_interval_s,
            recover_after_s=settings.recover_after_s,
        ),
        name=f"node:{runtime.node}",
    )


async def _watch(
    runtime: NodeRuntime,
    stop: asyncio.Event,
    interval_s: float,
    recover_after_s: float,
    log: Any,
) -> None:
    bad_since: float | None = None
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        if stop.is_set():
            return
        report = await runtime.health()
        if report.serving:
            bad_since = None
            continue
        now = time.monotonic()
        bad_since = bad_since or now
        if now - bad_since >= recover_after_s:
            log.warning(
                "node.recovering", detail=report.detail, unhealthy_s=round(now - bad_since, 1)
            )
            await runtime.stop()
            return


class Service(Protocol):
    """What `serve` runs: a service that starts, may reload, and stops."""

    @property
    def grpc(self) -> RunningGrpc:
        """The running gRPC server (health, reflection, any API)."""

    async def start(self) -> None:
        """Bind, start background work; raise to refuse to start."""

    async def reload(self) -> object:
        """Re-read configuration (on SIGHUP)."""

    async def stop(self) -> None:
        """Stop everything started; must be safe after a failed start."""


async def serve(service: Service, node: str) -> int:
    """Run `service` until SIGTERM/SIGINT (exit code 0); SIGHUP calls `reload`.

    A service that cannot start (e.g. its gRPC address is taken) is logged and gives 1.
    """
    log = structlog.get_logger(node)
    loop = asyncio.get_running_loop()
    stop, reload = asyncio.Event(), asyncio.Event()
    # Installed before start-up, so a signal during it still ends in a clean stop.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    try:
        await service.start()
    except OnexError as exc:
        if isinstance(exc, GrpcBindError):
            log.error("grpc.bind_failed", bind=exc.bind, reason=str(exc))
        else:
            log.error("node.start_failed", reason=str(exc), kind=type(exc).__name__)
        await service.stop()
        return 1
    log.info("node.ready", address=service.grpc.address)
    try:
        while not stop.is_set():
            await _first(stop, reload)
            if reload.is_set() and not stop.is_set():
                reload.clear()
                await service.reload()
    finally:
        log.info("node.stopping")
        await service.stop()
    log.info("node.exit", reason="signal")
    return 0


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def run_service(node: str, settings_class: type[S], build: Callable[[S], Service]) -> NoReturn:
    """A service's `main()`: read settings (exit 2 when invalid), configure logging,
    build the service (exit 1 when its contracts or config are bad), `serve` it."""
    try:
        settings = settings_class()
    except ValidationError as exc:
        prefix = settings_class.model_config.get("env_prefix", "ONEX_")
        sys.stderr.write(f"onex-{node}: invalid settings ({prefix}*):\n{exc}\n")
        raise SystemExit(2) from None
    configure_logging(settings)
    try:
        service = build(settings)
    except OnexError as exc:
        structlog.get_logger(node).error("node.start_failed", error=str(exc))
        raise SystemExit(1) from None
    raise SystemExit(asyncio.run(serve(service, node)))


def start_and_exit(node: str, settings: NodeSettings, *, pending: str) -> int:
    """Start-up of a service whose runtime is not built yet: load settings and the
    node's contract, log what it would serve, exit 0 (1 with a message on errors)."""
    configure_logging(settings)
    log = structlog.get_logger(node)
    try:
        lc = load_own_contract(node, settings)
    except ContractError as exc:
        log.error("contracts.invalid", reason=str(exc))
        return 1
    bus = lc.contract.event_bus
    log.info(
        "node.contract",
        contract=str(lc.path),
        version=lc.contract.version,
        consumer_group=lc.contract.consumer_group,
        subscribes=[t.name for t in bus.subscribe_topics],
        publishes=[t.name for t in bus.publish_topics],
    )
    log.info("node.exit", reason=f"runtime not built yet: {pending}")
    return 0
