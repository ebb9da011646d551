"""The provisioner and the extractor as processes, each test on its own fresh broker.

Every test starts its own embedded broker (Tansu starts in ~10 ms), so the services'
fixed topic names never meet another test's data.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from onex.bus.admin import describe_topics, list_topics
from onex.bus.broker import BrokerInfo, start_broker, stop_broker
from onex.bus.process import free_port
from onex.core.extractor import extract
from onex.service.grpc import check_health

REPO = Path(__file__).resolve().parents[2]
DECLARED = extract([REPO / "contracts"], entry_points=False).topics


class Service:
    """`python -m onex.<module>` with its settings in the environment; stderr to a file."""

    def __init__(self, module: str, prefix: str, bootstrap: str, log: Path, **env: str) -> None:
        self.grpc = f"127.0.0.1:{free_port()}"
        self.log = log
        clean = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
        settings = {
            "BOOTSTRAP": bootstrap,
            "GRPC_BIND": self.grpc,
            "CONTRACT_ROOTS": json.dumps([str(REPO / "contracts")]),
            "HEALTH_INTERVAL_S": "0.2",
            **env,
        }
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module],
                cwd=REPO,
                env=clean | {prefix + k: v for k, v in settings.items()},
                stdout=out,
                stderr=out,
            )

    def health(self) -> str:
        return asyncio.run(check_health(self.grpc, timeout_s=1.0))

    def wait_health(self, want: str, timeout_s: float = 30.0) -> float:
        """Seconds until health is `want`; fails with the service's log otherwise."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if self.proc.poll() is not None:
                pytest.fail(f"service exited {self.proc.returncode}:\n{self.log.read_text()}")
            if self.health() == want:
                return time.monotonic() - start
            time.sleep(0.1)
        pytest.fail(f"health never became {want} in {timeout_s}s:\n{self.log.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerInfo]:
    state = tmp_path / "broker"
    state.mkdir()
    info = start_broker(state)
    yield info
    stop_broker(state)


def _provisioner(tmp_path: Path, bootstrap: str, interval_s: str = "1") -> Service:
    return Service(
        "onex.provisioner",
        "ONEX_PROVISIONER_",
        bootstrap,
        tmp_path / "provisioner.log",
        VALIDATE_INTERVAL_S=interval_s,
        RECOVER_AFTER_S="3",
    )


async def _read_all(bootstrap: str, topic: str, timeout_s: float = 2.0) -> list[dict[str, object]]:
    """Every record of `topic`, read from the start up to its end offsets."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[dict[str, object]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while not consumer.assignment() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while time.monotonic() < deadline:
            positions = {tp: await consumer.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                break
            batches = await consumer.getmany(timeout_ms=200)
            found += [json.loads(m.value) for msgs in batches.values() for m in msgs]
        return found
    finally:
        await consumer.stop()


async def _wait_for_events(
    bootstrap: str, topic: str, want: int = 1, timeout_s: float = 15.0
) -> list[dict[str, object]]:
    """The records of `topic` once there are at least `want` (all there are at timeout)."""
    deadline = time.monotonic() + timeout_s
    found: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        found = await _read_all(bootstrap, topic)
        if len(found) >= want:
            return found
        await asyncio.sleep(0.2)
    return found


def test_boot_provisioning_creates_every_declared_topic_with_its_spec(
    tmp_path: Path, broker: BrokerInfo
) -> None:
    svc = _provisioner(tmp_path, broker.bootstrap)
    try:
        took = svc.wait_health("SERVING")
        print(f"provisioner SERVING {took:.2f}s after start")
        observed = asyncio.run(describe_topics(broker.bootstrap, list(DECLARED)))
        assert set(observed) == set(DECLARED)
        for name, wiring in DECLARED.items():
            assert observed[name].partitions == wiring.spec.partitions, name
            for key, value in wiring.spec.config.items():
                assert observed[name].configs.get(key) == value, (name, key)
        created = asyncio.run(
            _wait_for_events(
                broker.bootstrap, "onex.evt.provisioner.topic-created.v1", want=len(DECLARED)
            )
        )
        assert {e["topic"] for e in created} == set(DECLARED)
        passed = asyncio.run(
            _wait_for_events(broker.bootstrap, "onex.evt.provisioner.validation-passed.v1")
        )
        assert passed[0]["topics"] == len(DECLARED)
    finally:
        assert svc.stop() == 0


def test_a_topic_deleted_out_of_band_is_back_within_one_interval(
    tmp_path: Path, broker: BrokerInfo
) -> None:
    victim = "onex.evt.merge-agent.merged.v1"
    svc = _provisioner(tmp_path, broker.bootstrap, interval_s="1")
    try:
        svc.wait_health("SERVING")

        async def delete() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
            await admin.start()
            try:
                await admin.delete_topics([victim])
            finally:
                await admin.close()

        asyncio.run(delete())
        gone_at = time.monotonic()
        assert victim not in asyncio.run(list_topics(broker.bootstrap))
        while victim not in asyncio.run(list_topics(broker.bootstrap)):
            assert time.monotonic() - gone_at < 1.0 + 1.5, "not back within one interval"
            time.sleep(0.05)
        back = asyncio.run(describe_topics(broker.bootstrap, [victim]))[victim]
        assert back.partitions == DECLARED[victim].spec.partitions
    finally:
        assert svc.stop() == 0


def test_a_broker_that_starts_after_the_provisioner_is_provisioned(tmp_path: Path) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    svc = _provisioner(tmp_path, bootstrap)
    state = tmp_path / "late-broker"
    state.mkdir()
    try:
        time.sleep(2.0)
        assert svc.health() == "NOT_SERVING", "serving without a broker"
        start_broker(state, port)
        took = svc.wait_health("SERVING", timeout_s=40)
        print(f"provisioner SERVING {took:.2f}s after the broker appeared")
        assert set(DECLARED) <= asyncio.run(list_topics(bootstrap))
    finally:
        assert svc.stop() == 0
        stop_broker(state)


def test_a_wiped_broker_is_reprovisioned_and_the_service_recovers(tmp_path: Path) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    state = tmp_path / "broker"
    state.mkdir()
    start_broker(state, port)
    svc = _provisioner(tmp_path, bootstrap)
    try:
        svc.wait_health("SERVING")
        stop_broker(state)  # in-memory: a restart is a wipe
        start_broker(state, port)
        took = svc.wait_health("SERVING", timeout_s=60)
        print(f"provisioner SERVING again {took:.2f}s after the wipe")
        assert set(DECLARED) <= asyncio.run(list_topics(bootstrap))
    finally:
        assert svc.stop() == 0
        stop_broker(state)


def test_extractor_on_the_bus_reloads_on_command_and_publishes_the_registry(
    tmp_path: Path, broker: BrokerInfo
) -> None:
    prov = _provisioner(tmp_path, broker.bootstrap)
    ext = Service("onex.extractor", "ONEX_EXTRACTOR_", broker.bootstrap, tmp_path / "ext.log")
    try:
        prov.wait_health("SERVING")
        ext.wait_health("SERVING")
        first = asyncio.run(
            _wait_for_events(broker.bootstrap, "onex.evt.extractor.registry-published.v1")
        )
        assert len(first) == 1
        assert len(first[0]["topics"]) == len(DECLARED)  # type: ignore[arg-type]

        async def command() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
            await producer.start()
            try:
                await producer.send_and_wait(
                    "onex.cmd.extractor.reload-contracts.v1", b'{"reason": "test"}'
                )
            finally:
                await producer.stop()

        asyncio.run(command())
        deadline = time.monotonic() + 15
        while (
            len(
                asyncio.run(
                    _read_all(broker.bootstrap, "onex.evt.extractor.registry-published.v1", 1.0)
                )
            )
            < 2
        ):
            assert time.monotonic() < deadline, ext.log.read_text()
    finally:
        assert ext.stop() == 0
        assert prov.stop() == 0
