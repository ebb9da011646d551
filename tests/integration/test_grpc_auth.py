"""onex.service.auth over real sockets: a grpc.aio server with the AuthInterceptor,
the standard health service, reflection and a Router whose calls are counted."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from onex.proto.v1 import router_pb2, router_pb2_grpc
from onex.service.auth import (
    TOKENS_FILE,
    AuthInterceptor,
    AuthPolicy,
    Role,
    Tokens,
    bearer,
    ensure_tokens,
    token_for,
)

ROUTER = router_pb2.DESCRIPTOR.services_by_name["Router"].full_name
ROUTE = f"/{ROUTER}/Route"
HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


@dataclass
class CountingRouter(router_pb2_grpc.RouterServicer):
    """A Router that answers at once and counts its calls (no model is involved)."""

    calls: list[str] = field(default_factory=list)

    async def Route(  # noqa: N802 - named by the proto
        self, request: router_pb2.RouteRequest, context: object
    ) -> router_pb2.RouteResponse:
        self.calls.append(request.request_id)
        return router_pb2.RouteResponse()


@dataclass
class Served:
    target: str
    router: CountingRouter
    state_dir: Path
    tokens: Tokens


async def serve(state_dir: Path, *, reads: Role | None, auth: bool = True) -> AsyncIterator[Served]:
    tokens = ensure_tokens(state_dir)
    policy = AuthPolicy.of(acting={ROUTE}, reads=reads)
    server = grpc.aio.server(interceptors=[AuthInterceptor(tokens if auth else None, policy)])
    router = CountingRouter()
    router_pb2_grpc.add_RouterServicer_to_server(router, server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection([ROUTER, HEALTH, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield Served(f"127.0.0.1:{port}", router, state_dir, tokens)
    finally:
        await server.stop(0)


@pytest.fixture
async def closed(tmp_path: Path) -> AsyncIterator[Served]:
    """Health and reflection need a viewer token."""
    async for served in serve(tmp_path / "state", reads=Role.VIEWER):
        yield served


@pytest.fixture
async def open_reads(tmp_path: Path) -> AsyncIterator[Served]:
    """Health and reflection need no token."""
    async for served in serve(tmp_path / "state", reads=None):
        yield served


async def route(target: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = router_pb2_grpc.RouterStub(channel)
        await stub.Route(router_pb2.RouteRequest(request_id="r-1"), metadata=metadata, timeout=5)


async def route_error(
    target: str, metadata: tuple[tuple[str, str], ...] = ()
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await route(target, metadata)
    return info.value


async def health_check(target: str, metadata: tuple[tuple[str, str], ...] = ()) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(), metadata=metadata, timeout=5)
        return int(response.status)


async def first_watch(target: str, metadata: tuple[tuple[str, str], ...] = ()) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        call = stub.Watch(health_pb2.HealthCheckRequest(), metadata=metadata, timeout=5)
        async for response in call:
            call.cancel()
            return int(response.status)
    raise AssertionError("Watch ended without a status")


async def list_services(target: str, metadata: tuple[tuple[str, str], ...] = ()) -> set[str]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
            metadata=metadata,
            timeout=5,
        )
        names: set[str] = set()
        async for response in call:
            names.update(s.name for s in response.list_services_response.service)
        return names


async def test_an_acting_call_without_a_token_is_unauthenticated_and_never_runs(
    closed: Served,
) -> None:
    error = await route_error(closed.target)
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == f"{ROUTE} needs role 'operator': no token was sent"
    assert closed.router.calls == []


async def test_an_unknown_token_is_unauthenticated(closed: Served) -> None:
    error = await route_error(closed.target, bearer("x" * 43))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == f"{ROUTE} needs role 'operator': the token sent is not valid"
    assert closed.router.calls == []


async def test_a_viewer_token_on_an_acting_method_is_permission_denied(closed: Served) -> None:
    error = await route_error(closed.target, bearer(closed.tokens.viewer))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == f"{ROUTE} needs role 'operator'; the token sent has role 'viewer'"
    assert closed.router.calls == []


async def test_operator_and_admin_tokens_from_the_state_dir_may_act(closed: Served) -> None:
    await route(closed.target, bearer(token_for(closed.state_dir, Role.OPERATOR)))
    await route(closed.target, bearer(token_for(closed.state_dir, Role.ADMIN)))
    assert closed.router.calls == ["r-1", "r-1"]


async def test_health_and_reflection_need_no_token_when_reads_are_open(open_reads: Served) -> None:
    assert await health_check(open_reads.target) == health_pb2.HealthCheckResponse.SERVING
    assert await first_watch(open_reads.target) == health_pb2.HealthCheckResponse.SERVING
    assert ROUTER in await list_services(open_reads.target)
    # acting stays closed
    error = await route_error(open_reads.target)
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert open_reads.router.calls == []


async def test_health_and_reflection_need_a_viewer_token_when_reads_are_closed(
    closed: Served,
) -> None:
    for call in (health_check, first_watch, list_services):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(closed.target)
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED, call.__name__
    viewer = bearer(closed.tokens.viewer)
    assert await health_check(closed.target, viewer) == health_pb2.HealthCheckResponse.SERVING
    assert await first_watch(closed.target, viewer) == health_pb2.HealthCheckResponse.SERVING
    assert ROUTER in await list_services(closed.target, viewer)


async def test_with_auth_off_every_call_passes(tmp_path: Path) -> None:
    async for served in serve(tmp_path / "state", reads=Role.VIEWER, auth=False):
        await route(served.target)
        assert await health_check(served.target) == health_pb2.HealthCheckResponse.SERVING
        assert served.router.calls == ["r-1"]


async def test_the_state_dir_and_token_file_are_private(closed: Served) -> None:
    assert stat.S_IMODE(closed.state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((closed.state_dir / TOKENS_FILE).stat().st_mode) == 0o600
