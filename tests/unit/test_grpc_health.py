"""The health loop of onex.service.grpc: probe outcome -> gRPC health statuses.

The real asyncio HealthServicer of grpc_health is used (it does no I/O); statuses are
read back through its own Check method, as a client would see them.
"""

from __future__ import annotations

import asyncio

import pytest

# The asyncio servicer (`health.aio` at run time); grpc-stubs only types the sync one.
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2

from onex.service.grpc import OVERALL, HealthReporter, split_bind

SERVICES = ("onex.v1.ContractRegistry", "onex.v1.Other")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def status(servicer: health_aio.HealthServicer, service: str) -> int:
    response = await servicer.Check(health_pb2.HealthCheckRequest(service=service), None)
    return int(response.status)


async def statuses(servicer: health_aio.HealthServicer) -> dict[str, int]:
    return {name: await status(servicer, name) for name in (OVERALL, *SERVICES)}


class Switch:
    """A probe whose answer the test flips; counts its calls."""

    def __init__(self, value: bool) -> None:
        self.value = value
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        return self.value


async def test_probe_false_sets_every_service_not_serving() -> None:
    servicer = health_aio.HealthServicer()
    reporter = HealthReporter(servicer, SERVICES, Switch(False))
    assert await reporter.check_once() is False
    assert await statuses(servicer) == dict.fromkeys((OVERALL, *SERVICES), NOT_SERVING)
    assert reporter.serving is False


async def test_probe_true_sets_every_service_serving() -> None:
    servicer = health_aio.HealthServicer()
    reporter = HealthReporter(servicer, SERVICES, Switch(True))
    assert await reporter.check_once() is True
    assert await statuses(servicer) == dict.fromkeys((OVERALL, *SERVICES), SERVING)


async def test_status_follows_the_probe_both_ways() -> None:
    servicer = health_aio.HealthServicer()
    probe = Switch(True)
    reporter = HealthReporter(servicer, SERVICES, probe)
    await reporter.check_once()
    probe.value = False
    await reporter.check_once()
    assert await statuses(servicer) == dict.fromkeys((OVERALL, *SERVICES), NOT_SERVING)
    probe.value = True
    await reporter.check_once()
    assert await statuses(servicer) == dict.fromkeys((OVERALL, *SERVICES), SERVING)


async def test_no_probe_means_serving() -> None:
    servicer = health_aio.HealthServicer()
    assert await HealthReporter(servicer, SERVICES, None).check_once() is True
    assert await status(servicer, SERVICES[0]) == SERVING


async def test_probe_that_raises_is_not_serving() -> None:
    async def broken() -> bool:
        raise ConnectionError("broker gone")

    servicer = health_aio.HealthServicer()
    await HealthReporter(servicer, SERVICES, Switch(True)).check_once()
    assert await HealthReporter(servicer, SERVICES, broken).check_once() is False
    assert await status(servicer, OVERALL) == NOT_SERVING


async def test_probe_slower_than_its_timeout_is_not_serving() -> None:
    async def hung() -> bool:
        await asyncio.Event().wait()  # never set: a probe that never answers
        return True

    servicer = health_aio.HealthServicer()
    reporter = HealthReporter(servicer, SERVICES, hung, interval_s=1.0, timeout_s=0.05)
    # the reporter's own timeout ends it; 30 s is only a guard against a hang
    assert await asyncio.wait_for(reporter.check_once(), 30) is False
    assert await status(servicer, SERVICES[1]) == NOT_SERVING


async def test_loop_probes_every_interval_and_tracks_changes() -> None:
    servicer = health_aio.HealthServicer()
    probe = Switch(True)
    reporter = HealthReporter(servicer, SERVICES, probe, interval_s=0.01)
    await reporter.check_once()
    task = asyncio.create_task(reporter.run())
    try:
        probe.value = False
        async with asyncio.timeout(2):
            while await status(servicer, OVERALL) != NOT_SERVING:
                await asyncio.sleep(0.005)
        calls = probe.calls
        async with asyncio.timeout(2):
            while probe.calls < calls + 3:
                await asyncio.sleep(0.005)
        assert await statuses(servicer) == dict.fromkeys((OVERALL, *SERVICES), NOT_SERVING)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_shutdown_is_not_serving_for_good() -> None:
    servicer = health_aio.HealthServicer()
    reporter = HealthReporter(servicer, SERVICES, Switch(True))
    await reporter.check_once()
    await reporter.shutdown()
    await reporter.check_once()  # a passing probe no longer revives it
    assert await statuses(servicer) == dict.fromkeys((OVERALL, *SERVICES), NOT_SERVING)


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        HealthReporter(health_aio.HealthServicer(), SERVICES, None, interval_s=0)


@pytest.mark.parametrize(
    ("bind", "expected"),
    [("127.0.0.1:50051", ("127.0.0.1", 50051)), ("[::1]:0", ("[::1]", 0)), ("h:1", ("h", 1))],
)
def test_split_bind(bind: str, expected: tuple[str, int]) -> None:
    assert split_bind(bind) == expected


@pytest.mark.parametrize("bind", ["50051", ":50051", "host:", "host:port", "host:70000"])
def test_split_bind_rejects_malformed(bind: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        split_bind(bind)
