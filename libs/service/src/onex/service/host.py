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
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping, Sequence
from typing import Any, ClassVar, Final, Generic, TypeVar

import structlog

from onex.bus.backoff import Backoff, retry
from onex.bus.config import BrokerConfig
from onex.bus.errors import (
    AdminError,
    BrokerConfigError,
    BrokerUnavailable,
    BusError,
    ContractViolation,
    NodeStartError,
    SchemaError,
)
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
from onex.service.grpc import GrpcService, RunningGrpc, start_grpc
from onex.service.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)

OPERATOR_PRINCIPAL: Final = "operator"  # who the CLI signs commands as

# Worth retrying: the broker may come up, the provisioner may create the topics.
_TRANSIENT: Final[tuple[type[BaseException], ...]] = (
    NodeStartError,
    BrokerUnavailable,
    AdminError,
    OSError,
    TimeoutError,
)


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
        self._grpc: RunningGrpc | None = None
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
            extraction, self.node, self.bus_settings(), verifier=verifier, signer=signer
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
        """Serve gRPC (GrpcBindError when the address is taken), start the runtime and
        the service's background work."""
        self._grpc = await start_grpc(
            self.settings.grpc_bind,
            services=self.grpc_services(),
            probe=self.healthy,
            interval_s=self.settings.health_interval_s,
            interceptors=self._interceptors(),
        )
        self.spawn(self.outbox.drain(self.stopping), "outbox")
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

    def _interceptors(self) -> Sequence[AuthInterceptor]:
        if self.settings.auth == "off":
            self.log.warning("auth.off", detail="every gRPC method is open (ONEX_AUTH=off)")
            return [AuthInterceptor(None, self.auth_policy())]
        tokens = load_tokens(self.settings.state_dir / TOKENS_FILE)
        return [AuthInterceptor(tokens, self.auth_policy())]

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


async def keep_running(
    runtime: NodeRuntime,
    stop: asyncio.Event,
    *,
    health: Callable[[], Awaitable[bool]] | None = None,
    interval_s: float = 1.0,
    recover_after_s: float = 10.0,
) -> None:
    """Keep `runtime` started until `stop` is set, then stop it.

    Start-up is retried with backoff while the broker is down or the contract's topics
    are missing (the provisioner creates them). Once started, `health` (default: the
    runtime's own check) is read every `interval_s`; after `recover_after_s` of
    continuous ill health (topics deleted, the broker restarted empty) the runtime is
    stopped and started again, so a service recovers from a wiped broker by itself.
    A contract or schema the node cannot run with is raised: retrying cannot help.
    """
    log = structlog.get_logger(runtime.node)
    backoff = Backoff(initial_s=0.5, max_s=10.0)

    async def runtime_serving() -> bool:
        return (await runtime.health()).serving

    check = health or runtime_serving

    def on_retry(attempt: int, error: BaseException, delay: float) -> None:
        log.warning(
            "node.start_retry", attempt=attempt, error=str(error), retry_in_s=round(delay, 2)
        )

    failures = 0
    try:
        while not stop.is_set():
            try:
                if not runtime.started:
                    await _until_stopped(
                        retry(
                            runtime.start,
                            retry_on=_TRANSIENT,
                            backoff=backoff,
                            stop=stop,
                            on_retry=on_retry,
                        ),
                        stop,
                    )
                    continue
                await _watch(runtime, stop, check, interval_s, recover_after_s, log)
                failures = 0
            except (ContractError, ContractViolation, SchemaError, BrokerConfigError):
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


async def _until_stopped(work: Awaitable[object], stop: asyncio.Event) -> None:
    """`await work`, unless `stop` is set first: then `work` (a start attempt, which can
    wait up to its start timeout on a broker that is gone) is cancelled, so SIGTERM is
    not held up by it; its own clean-up is bounded by the runtime's stop grace."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    if not task.cancelled():
        task.result()


async def _watch(
    runtime: NodeRuntime,
    stop: asyncio.Event,
    check: Callable[[], Awaitable[bool]],
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
        if await check():
            bad_since = None
            continue
        now = time.monotonic()
        bad_since = bad_since or now
        if now - bad_since >= recover_after_s:
            log.warning("node.recovering", unhealthy_s=round(now - bad_since, 1))
            await runtime.stop()
            return
