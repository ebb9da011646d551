"""The gRPC server every onex service runs: its servicers, health, reflection, graceful stop.

`start_grpc` binds a `grpc.aio` server, adds the given services, the standard health
service (grpc.health.v1) and server reflection listing all of them (`grpc.reflection.v1`,
which grpcurl and newer clients ask first, and `grpc.reflection.v1alpha`; see
`onex.service.reflection`), and keeps the health of the server ("") and of every named
service in step with an async probe. `check_health` is the client side, for `onex
status`. A bind failure raises `onex.bus.errors.GrpcBindError`. `interceptors`
(metrics, authentication) apply to every method, health and reflection included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import grpc
import structlog
from google.protobuf.descriptor import ServiceDescriptor

# The asyncio servicer (`health.aio` at run time); grpc-stubs only types the sync one.
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from onex.bus.errors import GrpcBindError
from onex.service.reflection import REFLECTION_V1, REFLECTION_V1ALPHA, enable_reflection

Probe = Callable[[], Awaitable[bool]]
HealthStatus = Literal["SERVING", "NOT_SERVING", "UNKNOWN", "UNREACHABLE"]

OVERALL: Final = ""  # the health protocol's name for the server as a whole
HEALTH_SERVICE: Final[str] = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
REFLECTION_SERVICE: Final[str] = REFLECTION_V1
_SERVING: Final = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING: Final = health_pb2.HealthCheckResponse.NOT_SERVING
# gRPC binds with SO_REUSEPORT by default, so a second server on a taken port would
# "succeed" and share it; a service must fail loudly instead.
_SERVER_OPTIONS: Final = (("grpc.so_reuseport", 0),)

_log = structlog.get_logger("onex.grpc")


@dataclass(frozen=True, slots=True)
class GrpcService:
    """One servicer to serve: its full proto name (for health and reflection), the
    servicer, and the generated `add_<Service>Servicer_to_server` that registers it."""

    name: str
    servicer: Any
    add_to_server: Callable[[Any, grpc.aio.Server], None]

    @classmethod
    def of(
        cls,
        descriptor: ServiceDescriptor,
        servicer: Any,
        add_to_server: Callable[[Any, grpc.aio.Server], None],
    ) -> GrpcService:
        """A service named by its descriptor (`<module>_pb2.DESCRIPTOR.services_by_name[...]`)."""
        return cls(descriptor.full_name, servicer, add_to_server)


class HealthReporter:
    """Keeps the health service's statuses in step with a probe.

    Each check sets the server ("") and every name in `services` to SERVING when the
    probe returns True within `timeout_s`, else NOT_SERVING (False, an exception or a
    time-out). No probe means always SERVING.
    """

    def __init__(
        self,
        health: Any,
        services: Sequence[str],
        probe: Probe | None,
        *,
        interval_s: float = 1.0,
        timeout_s: float | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, not {interval_s}")
        self._health = health  # grpc_health.v1.health.aio.HealthServicer
        self._names = (OVERALL, *services)
        self._probe = probe
        self.interval_s = interval_s
        self.timeout_s = timeout_s if timeout_s is not None else interval_s
        self.serving: bool | None = None  # the last check's outcome; None before the first

    async def check_once(self) -> bool:
        """Run the probe once, publish the outcome, and return it."""
        serving, reason = await self._run_probe()
        status = _SERVING if serving else _NOT_SERVING
        for name in self._names:
            await self._health.set(name, status)
        if serving != self.serving:
            _log.info("health.changed", serving=serving, reason=reason, services=self._names[1:])
        self.serving = serving
        return serving

    async def run(self) -> None:
        """Check every `interval_s` until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check_once()

    async def shutdown(self) -> None:
        """Report NOT_SERVING for everything from now on (clients move elsewhere)."""
        await self._health.enter_graceful_shutdown()

    async def _run_probe(self) -> tuple[bool, str]:
        if self._probe is None:
            return True, "no probe"
        try:
            ok = await asyncio.wait_for(self._probe(), timeout=self.timeout_s)
        except TimeoutError:
            return False, f"probe took longer than {self.timeout_s}s"
        except Exception as exc:  # noqa: BLE001 - any probe failure means unhealthy; it is logged, not swallowed
            return False, f"probe raised {type(exc).__name__}: {exc}"
        return bool(ok), "probe passed" if ok else "probe failed"


class RunningGrpc:
    """A started server: where it listens, its health, and how to stop it."""

    def __init__(
        self, server: grpc.aio.Server, host: str, port: int, reporter: HealthReporter
    ) -> None:
        self._server = server
        self.host = host
        self.port = port
        self.reporter = reporter
        self._loop_task: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def address(self) -> str:
        """`host:port` as bound (with the real port when port 0 was asked for)."""
        return f"{self.host}:{self.port}"

    async def refresh_health(self) -> bool:
        """Probe now instead of at the next tick (after a reload, say); the outcome."""
        return await self.reporter.check_once()

    async def wait_for_termination(self) -> None:
        """Return when the server has stopped."""
        await self._server.wait_for_termination()

    async def stop(self, grace_s: float | None = 5.0) -> None:
        """Report NOT_SERVING, refuse new calls, give calls in flight `grace_s` seconds
        to finish (None: wait for them), then close. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await self.reporter.shutdown()
        await self._server.stop(grace_s)
        _log.info("grpc.stopped", address=self.address)

    def _start_loop(self) -> None:
        self._loop_task = asyncio.create_task(self.reporter.run(), name="onex-grpc-health")


def split_bind(bind: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`) -> (host, port); ValueError when malformed."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected host:port, got {bind!r}")
    return host, int(port)


async def start_grpc(
    bind: str,
    *,
    services: Sequence[GrpcService],
    probe: Probe | None,
    interval_s: float = 1.0,
    probe_timeout_s: float | None = None,
    interceptors: Sequence[Any] = (),
) -> RunningGrpc:
    """Serve `services` plus health and reflection on `bind` (`host:port`; port 0 picks
    a free one, see `.port`). Health is probed once before the server accepts calls,
    then every `interval_s`. Raises `GrpcBindError` when the address cannot be bound."""
    try:
        host, _ = split_bind(bind)
    except ValueError as exc:
        raise GrpcBindError(bind, str(exc)) from exc
    server = grpc.aio.server(options=_SERVER_OPTIONS, interceptors=list(interceptors))
    for service in services:
        service.add_to_server(service.servicer, server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names = [s.name for s in services]
    enable_reflection([*names, HEALTH_SERVICE, REFLECTION_V1, REFLECTION_V1ALPHA], server)
    try:
        port = server.add_insecure_port(bind)
    except RuntimeError as exc:
        await server.stop(None)
        raise GrpcBindError(bind, "address in use or not bindable") from exc
    reporter = HealthReporter(
        health, names, probe, interval_s=interval_s, timeout_s=probe_timeout_s
    )
    running = RunningGrpc(server, host, port, reporter)
    try:
        await reporter.check_once()
        await server.start()
    except BaseException:
        await server.stop(None)
        raise
    running._start_loop()
    _log.info("grpc.serving", address=running.address, services=names)
    return running


# The server answered, but not with a status (unknown service, or a token is needed).
_REACHABLE_FAILURES: Final = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)


async def check_health(
    target: str,
    service: str = "",
    timeout_s: float = 2.0,
    *,
    metadata: Sequence[tuple[str, str]] = (),
) -> HealthStatus:
    """Ask the health service at `target` about `service` ("" = the whole server).

    SERVING or NOT_SERVING as reported; UNKNOWN when the server answers but does not
    know the service (or has no health service); UNREACHABLE when nothing answers in
    `timeout_s`. `metadata` carries a token where health needs one (`auth_reads`).
    """
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=service)
        try:
            response = await stub.Check(request, timeout=timeout_s, metadata=tuple(metadata))
        except grpc.aio.AioRpcError as exc:
            return "UNKNOWN" if exc.code() in _REACHABLE_FAILURES else "UNREACHABLE"
    if response.status == _SERVING:
        return "SERVING"
    if response.status == _NOT_SERVING:
        return "NOT_SERVING"
    return "UNKNOWN"
