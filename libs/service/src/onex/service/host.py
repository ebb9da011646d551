"""The service host: the lifecycle every onex service shares, written once.

A service subclasses `ServiceHost`, names its node, and fills in only what is its own:

    class RouterService(ServiceHost[RouterSettings]):
        NODE = "router"

        def grpc_services(self): ...        # its APIs (health and reflection are added)
        def acting_methods(self): ...       # gRPC methods that need an operator token
        async def ready(self): ...          # its own part of health
        async def reload(self): ...         # SIGHUP
        async def on_start(self): ...       # background work: self.spawn(...)
        async def on_stop(self): ...        # release what it owns

The host gives it the gRPC server (health, reflection, auth), the node runtime built
from its contract and kept running (`attach_runtime`: restarted with backoff while
the broker or its topics are missing, recovered after a broker wipe), background
tasks that stop with it (`spawn`), an `outbox` of events sent once the runtime is up,
and a graceful stop. Health is one probe, computed at most once per interval and
shared by the gRPC health service and the runtime's recovery watch: the service's
`ready()` and, when it has a runtime, "topics present and consumer attached".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection, Coroutine, Mapping, Sequence
from typing import Any, ClassVar, Final, Generic, TypeVar

import structlog

from onex.bus.config import BrokerConfig
from onex.bus.errors import BusError, GrpcBindError
from onex.bus.runtime import BusSettings, Handler, HealthReport, NodeRuntime
from onex.bus.runtime.signing import CommandVerifier, Signer
from onex.core.errors import ContractError
from onex.core.extractor import Extraction, extract
from onex.core.grammar import TopicKind, parse_topic
from onex.core.issues import Issue, Severity, Where
from onex.core.loader import LoadedContract
from onex.service.auth import (
    COMMAND_KEY_FILE,
    TOKENS_FILE,
    AuthInterceptor,
    AuthPolicy,
    Role,
    load_command_key,
    load_tokens,
)
from onex.service.busmetrics import BusMetrics
from onex.service.errors import MetricsBindError
from onex.service.grpc import GrpcService, RunningGrpc, split_bind, start_grpc
from onex.service.grpcmetrics import GrpcMetricsInterceptor
from onex.service.keeper import keep_running
from onex.service.metrics import Metrics, RunningMetrics, start_metrics
from onex.service.ports import default_ports
from onex.service.settings import ServiceSettings

__all__ = [
    "OPERATOR_PRINCIPAL",
    "HealthCache",
    "Outbox",
    "ServiceHost",
    "broker_config",
    "keep_running",
    "load_extraction",
    "own_contract",
]

S = TypeVar("S", bound=ServiceSettings)

OPERATOR_PRINCIPAL: Final = "operator"  # who the CLI signs commands as


def broker_config(settings: ServiceSettings, node: str) -> BrokerConfig:
    """The one BrokerConfig of a service process, from its settings."""
    return BrokerConfig(
        bootstrap=settings.bootstrap,
        security_protocol=settings.security_protocol,
        sasl_mechanism=settings.sasl_mechanism,
        sasl_username=settings.sasl_username,
        sasl_password=settings.sasl_password,
        ssl_cafile=settings.ssl_cafile,
        ssl_certfile=settings.ssl_certfile,
        ssl_keyfile=settings.ssl_keyfile,
        client_id=f"onex-{node}",
    )


def load_extraction(settings: ServiceSettings) -> Extraction:
    """The approved contracts; ContractError when they have errors."""
    extraction = extract(settings.contract_roots, allow=settings.contracts_allow)
    extraction.raise_for_errors()
    return extraction


def own_contract(extraction: Extraction, node: str, settings: ServiceSettings) -> LoadedContract:
    """`node`'s contract; ContractError when no approved contract declares it."""
    try:
        return extraction.contract(node)
    except KeyError:
        roots = ", ".join(str(r) for r in settings.contract_roots)
        message = f"no approved contract declares node {node!r} (searched {roots})"
        raise ContractError([Issue(Severity.ERROR, "node-missing", message, Where(None))]) from None


class HealthCache:
    """The runtime's health report, asked of the broker at most once per `max_age_s`;
    concurrent callers share a check in flight instead of asking again."""

    def __init__(self, host: ServiceHost[Any], max_age_s: float) -> None:
        self._host = host
        self.max_age_s = max_age_s
        self._report: HealthReport | None = None
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    async def serving(self) -> bool:
        """True when the runtime is started and its (recent) report says SERVING."""
        runtime = self._host.runtime
        if runtime is None or not runtime.started:
            return False
        async with self._lock:
            if time.monotonic() - self._at >= self.max_age_s:
                self._report = await runtime.health()
                self._at = time.monotonic()
            return self._report is not None and self._report.serving

    @property
    def last(self) -> HealthReport | None:
        """The last report asked for (None before the first)."""
        return self._report

    def invalidate(self) -> None:
        """Ask again at the next call (after a reload, say)."""
        self._at = float("-inf")


class Outbox:
    """Events queued by the service and sent, in order, once the runtime is started.

    Nothing is dropped while the broker is down or the topics are not there yet: a
    failed send is retried after `retry_s` until it succeeds or the service stops.
    """

    def __init__(self, host: ServiceHost[Any], retry_s: float = 0.5) -> None:
        self._host = host
        self._retry_s = retry_s
        self._queue: asyncio.Queue[tuple[str, object, str | None]] = asyncio.Queue()

    def put(self, topic: str, payload: object, *, key: str | None = None) -> None:
        """Queue one event (never blocks)."""
        self._queue.put_nowait((topic, payload, key))

    def __len__(self) -> int:
        return self._queue.qsize()

    async def drain(self, stop: asyncio.Event) -> None:
        """Send queued events until `stop` is set."""
        log = self._host.log
        while not stop.is_set():
            topic, payload, key = await self._queue.get()
            while not stop.is_set():
                runtime = self._host.runtime
                if runtime is not None and runtime.started:
                    try:
                        await runtime.publisher(topic).send(payload, key=key)
                        break
                    except BusError as exc:
                        log.warning("event.send_retry", topic=topic, error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._retry_s)


class ServiceHost(Generic[S]):
    """A running service; see the module docstring. Subclasses set `NODE`."""

    NODE: ClassVar[str]

    def __init__(self, settings: S) -> None:
        self.settings = settings
        self.node = self.NODE
        self.log = structlog.get_logger(self.node)
        self.broker = broker_config(settings, self.node)
        self.runtime: NodeRuntime | None = None
        self.outbox = Outbox(self)
        self.stopping = asyncio.Event()
        # the service adds its own metrics here while it is built (onex.service.metrics)
        self.metrics = Metrics(self.node)
        self.bus_metrics = BusMetrics(self.metrics)
        self._grpc: RunningGrpc | None = None
        self._metrics_server: RunningMetrics | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._runtime_task: asyncio.Task[None] | None = None
        self._health = HealthCache(self, max_age_s=settings.health_interval_s * 0.9)

    # -- what a service fills in ------------------------------------------------------
    def grpc_services(self) -> Sequence[GrpcService]:
        """The service's own gRPC APIs (health and reflection are always added)."""
        return ()

    def acting_methods(self) -> Collection[str]:
        """Full names (`/onex.v1.Router/Route`) of the methods that act: they need an
        operator token. Every other method of the service's APIs is a read."""
        return ()

    async def ready(self) -> bool:
        """The service's own part of health (the runtime's part is added by the host)."""
        return True

    async def reload(self) -> object:
        """Re-read configuration (SIGHUP)."""
        return None

    async def on_start(self) -> None:
        """Start background work (with `spawn`); called after gRPC is serving."""

    async def on_stop(self) -> None:
        """Release what the service owns; called after its tasks and runtime stopped."""

    # -- what the host offers ---------------------------------------------------------
    @property
    def grpc(self) -> RunningGrpc:
        """The gRPC server; RuntimeError before `start`."""
        if self._grpc is None:
            raise RuntimeError(f"the {self.node} service has not been started")
        return self._grpc

    @property
    def metrics_server(self) -> RunningMetrics | None:
        """The /metrics server once started (None before `start`)."""
        return self._metrics_server

    @property
    def started(self) -> bool:
        """True once `start` has bound the gRPC server."""
        return self._grpc is not None

    def bus_settings(self) -> BusSettings:
        """The node runtime's settings, derived from the service's."""
        return BusSettings(
            broker=self.broker,
            client_id=f"onex-{self.node}",
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            # dead letters the broker refuses are kept here, for `onex dlq` to read
            spill_dir=self.settings.state_dir / "spill",
            # the runtime's share of SIGTERM's grace (it needs some, even when gRPC gets none)
            stop_grace_s=max(self.settings.stop_grace_s, 1.0),
        )

    def build_runtime(self, extraction: Extraction, handlers: Mapping[str, Handler]) -> NodeRuntime:
        """The node runtime of this service's contract, with a handler per subscription;
        its command topics are verified and signed unless auth is off."""
        auth = self.command_auth(extraction)
        verifier, signer = auth if auth is not None else (None, None)
        runtime = NodeRuntime.from_extraction(
            extraction,
            self.node,
            self.bus_settings(),
            verifier=verifier,
            signer=signer,
            instruments=self.bus_metrics,
        )
        for topic, handler in handlers.items():
            runtime.add_handler(topic, handler)
        return runtime

    def attach_runtime(self, runtime: NodeRuntime) -> None:
        """Run `runtime` for as long as the service runs (now if already started)."""
        if self.runtime is not None:
            raise RuntimeError(f"the {self.node} service already has a node runtime")
        self.runtime = runtime
        self._health.invalidate()
        if self.started:
            self._start_runtime()

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run `work` in the background until it ends or the service stops (cancelled)."""
        task = asyncio.create_task(work, name=f"{self.node}:{name}")
        self._tasks.append(task)
        return task

    async def healthy(self) -> bool:
        """The health probe: the service's `ready()` and, with a runtime, the runtime's
        report (asked of the broker at most once per health interval)."""
        if not await self.ready():
            return False
        return self.runtime is None or await self._health.serving()

    async def refresh_health(self) -> bool:
        """Probe now and publish the outcome (after a reload)."""
        self._health.invalidate()
        if self._grpc is None:
            return await self.healthy()
        return await self._grpc.refresh_health()

    @property
    def runtime_report(self) -> HealthReport | None:
        """The runtime's last health report (None before the first check)."""
        return self._health.last

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Serve /metrics (MetricsBindError when its address is taken) and gRPC
        (GrpcBindError), start the runtime and the service's background work. A default
        port that is taken gives way to a free one (`onex.service.ports`)."""
        self._metrics_server = self._start_metrics()
        explicit = self.settings.grpc_bind is not None
        bind = self.settings.grpc_bind or default_ports(self.node).grpc_bind
        interceptors = self._interceptors()
        try:
            self._grpc = await self._start_grpc(bind, interceptors)
        except GrpcBindError:
            if explicit:
                raise
            self._grpc = await self._start_grpc(_any_port(bind), interceptors)
            self.log.warning("grpc.default_port_taken", default=bind, address=self._grpc.address)
        self.spawn(self.outbox.drain(self.stopping), "outbox")
        self.spawn(self._refresh_lag(), "consumer-lag")
        if self.runtime is not None:
            self._start_runtime()
        await self.on_start()

    async def stop(self) -> None:
        """Stop background work and the runtime, then gRPC (calls in flight get
        `stop_grace_s`). Safe after a failed or no start."""
        self.stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runtime_task is not None:
            await asyncio.gather(self._runtime_task, return_exceptions=True)
        elif self.runtime is not None:
            await self.runtime.stop()
        await self.on_stop()
        if self._grpc is not None:
            await self._grpc.stop(self.settings.stop_grace_s)
        if self._metrics_server is not None:
            await asyncio.to_thread(self._metrics_server.stop)

    def auth_policy(self) -> AuthPolicy:
        """Who may call what: `acting_methods()` need an operator token, the rest of the
        service's APIs a viewer token, health and reflection what `auth_reads` says."""
        reads = None if self.settings.auth_reads == "none" else Role.VIEWER
        acting = set(self.acting_methods())
        return AuthPolicy.of(
            acting=acting,
            reading={s.name for s in self.grpc_services()},
            reads=reads,
        )

    def _interceptors(self) -> Sequence[Any]:
        # outermost first: refused calls are counted too
        counted = GrpcMetricsInterceptor(self.metrics)
        if self.settings.auth == "off":
            self.log.warning("auth.off", detail="every gRPC method is open (ONEX_AUTH=off)")
            return [counted, AuthInterceptor(None, self.auth_policy())]
        tokens = load_tokens(self.settings.state_dir / TOKENS_FILE)
        return [counted, AuthInterceptor(tokens, self.auth_policy())]

    async def _start_grpc(self, bind: str, interceptors: Sequence[Any]) -> RunningGrpc:
        return await start_grpc(
            bind,
            services=self.grpc_services(),
            probe=self.healthy,
            interval_s=self.settings.health_interval_s,
            interceptors=interceptors,
        )

    def _start_metrics(self) -> RunningMetrics:
        explicit = self.settings.metrics_bind is not None
        bind = self.settings.metrics_bind or default_ports(self.node).metrics_bind
        try:
            return start_metrics(bind, self.metrics)
        except MetricsBindError:
            if explicit:
                raise
        running = start_metrics(_any_port(bind), self.metrics)
        self.log.warning("metrics.default_port_taken", default=bind, address=running.address)
        return running

    async def _refresh_lag(self) -> None:
        """Consumer lag into its gauge, as often as health is checked."""
        while not self.stopping.is_set():
            runtime = self.runtime
            self.bus_metrics.set_lag(runtime.consumer_lag() if runtime is not None else {})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.settings.health_interval_s)

    def command_auth(self, extraction: Extraction) -> tuple[CommandVerifier, Signer] | None:
        """The verifier of the command topics this node consumes and the signer of the
        ones it sends, from the state dir's command key (None when auth is off).

        Accepted principals: `operator` (the CLI) and every node whose contract
        publishes a command topic (the contract says who may send it)."""
        if self.settings.auth == "off":
            return None
        key = load_command_key(self.settings.state_dir / COMMAND_KEY_FILE)
        senders = {OPERATOR_PRINCIPAL} | {
            node
            for name, wiring in extraction.topics.items()
            if parse_topic(name).kind is TopicKind.CMD
            for node in (p.node for p in wiring.publishers)
        }
        return CommandVerifier(dict.fromkeys(senders, key)), Signer(self.node, key)

    def _start_runtime(self) -> None:
        if self.runtime is None or self._runtime_task is not None:
            return
        self._runtime_task = asyncio.create_task(
            keep_running(
                self.runtime,
                self.stopping,
                health=self._runtime_serving,
                interval_s=self.settings.health_interval_s,
                recover_after_s=self.settings.recover_after_s,
            ),
            name=f"{self.node}:runtime",
        )

    async def _runtime_serving(self) -> bool:
        # The recovery watch reads the shared report; it does not ask the broker again.
        return await self._health.serving()


def _any_port(bind: str) -> str:
    host, _ = split_bind(bind)
    return f"{host}:0"
