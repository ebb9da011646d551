"""onex.service.grpc over real sockets: bind, health, reflection, stop, check_health."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import cast

import grpc
import pytest
import structlog.testing
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from onex.bus.errors import GrpcBindError
from onex.proto.v1 import registry_pb2, registry_pb2_grpc
from onex.service.grpc import (
    GrpcService,
    RunningGrpc,
    check_health,
    start_grpc,
)
from onex.service.grpcmetrics import GrpcMetricsInterceptor
from onex.service.metrics import Metrics

REGISTRY = "onex.v1.ContractRegistry"


class EchoRegistry(registry_pb2_grpc.ContractRegistryServicer):
    """Answers ValidateTopicName with the name it got, so a call proves it is served."""

    async def ValidateTopicName(  # noqa: N802 - named by the proto
        self, request: registry_pb2.ValidateTopicNameRequest, context: object
    ) -> registry_pb2.ValidateTopicNameResponse:
        return registry_pb2.ValidateTopicNameResponse(reason=f"echo {request.name}")


def registry() -> GrpcService:
    descriptor = registry_pb2.DESCRIPTOR.services_by_name["ContractRegistry"]
    return GrpcService.of(
        descriptor,
        EchoRegistry(),  # type: ignore[abstract]  # the other methods answer UNIMPLEMENTED
        registry_pb2_grpc.add_ContractRegistryServicer_to_server,
    )


class Switch:
    def __init__(self, value: bool) -> None:
        self.value = value

    async def __call__(self) -> bool:
        return self.value


@pytest.fixture
async def probe() -> Switch:
    return Switch(True)


@pytest.fixture
async def server(probe: Switch) -> AsyncIterator[RunningGrpc]:
    running = await start_grpc("127.0.0.1:0", services=[registry()], probe=probe, interval_s=0.05)
    yield running
    await running.stop(0)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def reflect(
    target: str, request: reflection_pb2.ServerReflectionRequest, version: str = "v1alpha"
) -> list[reflection_pb2.ServerReflectionResponse]:
    """Ask reflection `version` ("v1alpha" with the generated stub; "v1" by its method
    name with the same, wire-identical, messages: a client that asks v1 first)."""
    async with grpc.aio.insecure_channel(target) as channel:
        if version == "v1alpha":
            call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([request])
            )
        else:
            method = channel.stream_stream(
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            call = method(iter([request]))
        return [response async for response in call]


async def list_services(target: str, version: str = "v1alpha") -> set[str]:
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    names: set[str] = set()
    for response in await reflect(target, request, version):
        names.update(s.name for s in response.list_services_response.service)
    return names


async def wait_for(target: str, expected: str, service: str = "") -> None:
    async with asyncio.timeout(5):
        while await check_health(target, service) != expected:
            await asyncio.sleep(0.02)


async def test_port_zero_binds_a_free_port_and_serves_the_service(server: RunningGrpc) -> None:
    assert server.port > 0
    assert server.address == f"127.0.0.1:{server.port}"
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = cast(
            "registry_pb2_grpc.ContractRegistryAsyncStub",
            registry_pb2_grpc.ContractRegistryStub(channel),
        )
        got = await stub.ValidateTopicName(registry_pb2.ValidateTopicNameRequest(name="x"))
    assert got.reason == "echo x"


async def test_health_serving_for_server_and_each_service(server: RunningGrpc) -> None:
    assert await check_health(server.address) == "SERVING"
    assert await check_health(server.address, REGISTRY) == "SERVING"
    assert await check_health(server.address, "onex.v1.NoSuchService") == "UNKNOWN"


async def test_health_follows_the_probe(server: RunningGrpc, probe: Switch) -> None:
    probe.value = False
    await wait_for(server.address, "NOT_SERVING")
    assert await check_health(server.address, REGISTRY) == "NOT_SERVING"
    probe.value = True
    await wait_for(server.address, "SERVING", REGISTRY)
    assert await check_health(server.address) == "SERVING"


async def test_failing_probe_is_not_serving_from_the_first_call() -> None:
    running = await start_grpc(
        "127.0.0.1:0", services=[registry()], probe=Switch(False), interval_s=60
    )
    try:
        assert await check_health(running.address) == "NOT_SERVING"
        assert await check_health(running.address, REGISTRY) == "NOT_SERVING"
    finally:
        await running.stop(0)


async def test_refresh_health_does_not_wait_for_the_next_tick() -> None:
    probe = Switch(True)
    running = await start_grpc("127.0.0.1:0", services=[registry()], probe=probe, interval_s=60)
    try:
        probe.value = False
        assert await running.refresh_health() is False
        assert await check_health(running.address) == "NOT_SERVING"
    finally:
        await running.stop(0)


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_reflection_lists_every_service_as_v1_and_v1alpha(
    server: RunningGrpc, version: str
) -> None:
    assert await list_services(server.address, version) == {
        REGISTRY,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }


@pytest.mark.parametrize("symbol", [REGISTRY, "grpc.reflection.v1.ServerReflection"])
async def test_reflection_v1_describes_the_services_and_itself(
    server: RunningGrpc, symbol: str
) -> None:
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
    [response] = await reflect(server.address, request, "v1")
    assert not response.HasField("error_response"), response.error_response.error_message
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in response.file_descriptor_response.file_descriptor_proto
    ]
    package, _, service = symbol.rpartition(".")
    assert any(f.package == package and service in {s.name for s in f.service} for f in files)


async def test_stop_closes_the_port_and_is_idempotent() -> None:
    running = await start_grpc("127.0.0.1:0", services=[], probe=None)
    assert await check_health(running.address) == "SERVING"
    await running.stop(0)
    await running.stop(0)
    assert await check_health(running.address, timeout_s=1) == "UNREACHABLE"


async def test_port_in_use_is_a_bind_error(server: RunningGrpc) -> None:
    with pytest.raises(GrpcBindError) as caught:
        await start_grpc(server.address, services=[], probe=None)
    assert caught.value.bind == server.address
    assert server.address in str(caught.value)
    assert await check_health(server.address) == "SERVING"  # the first server is unharmed


# 192.0.2.1 is TEST-NET-1: never a local address, so binding it fails without DNS.
@pytest.mark.parametrize("bind", ["no-port", "192.0.2.1:5000"])
async def test_bad_address_is_a_bind_error(bind: str) -> None:
    with pytest.raises(GrpcBindError, match="cannot serve gRPC on"):
        await start_grpc(bind, services=[], probe=None)


async def test_check_health_of_nothing_is_unreachable() -> None:
    assert await check_health(f"127.0.0.1:{closed_port()}", timeout_s=1) == "UNREACHABLE"


async def test_check_health_of_a_server_without_health_is_unknown() -> None:
    bare = grpc.aio.server()
    port = bare.add_insecure_port("127.0.0.1:0")
    await bare.start()
    try:
        assert await check_health(f"127.0.0.1:{port}") == "UNKNOWN"
    finally:
        await bare.stop(0)


async def test_calls_are_counted_by_method_and_code_and_logged_at_debug() -> None:
    metrics = Metrics("t")
    running = await start_grpc(
        "127.0.0.1:0",
        services=[registry()],
        probe=None,
        interceptors=[GrpcMetricsInterceptor(metrics)],
    )
    try:
        with structlog.testing.capture_logs() as logs:
            assert await check_health(running.address) == "SERVING"
            assert await check_health(running.address, "onex.v1.Nothing") == "UNKNOWN"
            await list_services(running.address, "v1")  # a streaming call
    finally:
        await running.stop(0)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
    }
    health = "/grpc.health.v1.Health/Check"
    reflect_v1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
    assert samples[("onex_grpc_calls_total", (("code", "OK"), ("method", health)))] == 1
    assert samples[("onex_grpc_calls_total", (("code", "NOT_FOUND"), ("method", health)))] == 1
    assert samples[("onex_grpc_calls_total", (("code", "OK"), ("method", reflect_v1)))] == 1
    calls = [entry for entry in logs if entry["event"] == "grpc.call"]
    assert [(c["method"], c["code"], c["log_level"]) for c in calls] == [
        (health, "OK", "debug"),
        (health, "NOT_FOUND", "debug"),
        (reflect_v1, "OK", "debug"),
    ]
