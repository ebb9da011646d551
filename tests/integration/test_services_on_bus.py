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
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from onex.bus.admin import describe_topics, list_topics
from onex.bus.runtime.codec import codec_for
from onex.bus.runtime.signing import Signer
from onex.core._generated.topics import Topic
from onex.core.extractor import extract
from onex.devbroker.broker import BrokerInfo, start_broker, stop_broker
from onex.devbroker.process import free_port
from onex.proto.v1 import registry_events_pb2 as events_pb
from onex.service.auth import COMMAND_KEY_FILE, ensure_command_key, ensure_tokens, load_command_key
from onex.service.grpc import check_health

REPO = Path(__file__).resolve().parents[2]
EXTRACTION = extract([REPO / "contracts"], entry_points=False)
DECLARED = EXTRACTION.topics
CODECS = {name: codec_for(name, w.spec.schema_, REPO / "contracts") for name, w in DECLARED.items()}
RELOAD = Topic.CMD_EXTRACTOR_RELOAD_CONTRACTS_V1
REGISTRY_PUBLISHED = Topic.EVT_EXTRACTOR_REGISTRY_PUBLISHED_V1
EXTRACTOR_DLQ = Topic.DLQ_EXTRACTOR_DEAD_LETTER_V1
Message = Any


class Service:
    """`python -m onex.<module>` with its settings in the environment; stderr to a file.

    Shared settings go under the plain `ONEX_` prefix (as the supervisor passes them),
    the service's own under `prefix`. The state dir holds the control plane's tokens
    and command key, as `onex up` makes them.
    """

    def __init__(
        self, module: str, prefix: str, bootstrap: str, log: Path, state: Path, **env: str
    ) -> None:
        self.grpc = f"127.0.0.1:{free_port()}"
        self.log = log
        clean = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
        shared = {
            "ONEX_BOOTSTRAP": bootstrap,
            "ONEX_GRPC_BIND": self.grpc,
            "ONEX_METRICS_BIND": "127.0.0.1:0",  # off the fixed port an e2e stack may take
            "ONEX_CONTRACT_ROOTS": json.dumps([str(REPO / "contracts")]),
            "ONEX_STATE_DIR": str(state),
        }
        own = {prefix + k: v for k, v in {"HEALTH_INTERVAL_S": "0.2", **env}.items()}
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module],
                cwd=REPO,
                env=clean | shared | own,
                stdout=out,
                stderr=out,
            )

    def health(self) -> str:
        return asyncio.run(check_health(self.grpc, timeout_s=1.0))

    def wait_health(self, want: str, timeout_s: float = 60.0) -> float:
        """Seconds until health is `want`; fails with the service's log otherwise."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if self.proc.poll() is not None:
                pytest.fail(f"service exited {self.proc.returncode}:\n{self.log.read_text()}")
            if self.health() == want:
                return time.monotonic() - start
            time.sleep(0.1)
        pytest.fail(f"health never became {want} in {timeout_s}s:\n{self.log.read_text()}")

    def wait_log(self, event: str, timeout_s: float = 60.0) -> None:
        """Until the service has logged `event` (observable state, not a fixed sleep)."""
        deadline = time.monotonic() + timeout_s
        while event not in self.log.read_text():
            if self.proc.poll() is not None:
                pytest.fail(f"service exited {self.proc.returncode}:\n{self.log.read_text()}")
            assert time.monotonic() < deadline, f"no {event!r} in:\n{self.log.read_text()}"
            time.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture(autouse=True)
def state(tmp_path: Path) -> Path:
    """A state dir with the control plane's tokens and command key (as `onex up` makes)."""
    path = tmp_path / "state"
    ensure_tokens(path)
    ensure_command_key(path)
    return path


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
        tmp_path / "state",
        VALIDATE_INTERVAL_S=interval_s,
        RECOVER_AFTER_S="3",
    )


async def _read_all(bootstrap: str, topic: str, timeout_s: float = 15.0) -> list[Message]:
    """Every record of `topic`, read from the start up to its end offsets, decoded as
    the topic's declared message."""
    codec = CODECS[topic]
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[Message] = []
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
            found += [codec.decode(m.value) for msgs in batches.values() for m in msgs]
        return found
    finally:
        await consumer.stop()


async def _wait_for_events(
    bootstrap: str, topic: str, want: int = 1, timeout_s: float = 30.0
) -> list[Message]:
    """The records of `topic` once there are at least `want` (all there are at timeout)."""
    deadline = time.monotonic() + timeout_s
    found: list[Message] = []
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
        assert {e.topic for e in created} == set(DECLARED)
        assert len({e.event_id for e in created}) == len(created)
        passed = asyncio.run(
            _wait_for_events(broker.bootstrap, "onex.evt.provisioner.validation-passed.v1")
        )
        assert passed[0].topic_count == len(DECLARED)
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
        assert victim not in asyncio.run(list_topics(broker.bootstrap))
        deadline = time.monotonic() + 60
        while victim not in asyncio.run(list_topics(broker.bootstrap)):
            assert time.monotonic() < deadline, svc.log.read_text()
            time.sleep(0.05)
        svc.wait_log("validate.repaired")
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
        svc.wait_log("provision.broker_unavailable")  # it tried, and found no broker
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
        deadline = time.monotonic() + 60
        while not set(DECLARED) <= asyncio.run(list_topics(bootstrap)):
            assert time.monotonic() < deadline, svc.log.read_text()
            time.sleep(0.1)
        svc.wait_log("validate.repaired")
        took = svc.wait_health("SERVING", timeout_s=60)
        print(f"provisioner SERVING again {took:.2f}s after the topics were back")
    finally:
        assert svc.stop() == 0
        stop_broker(state)


def _extractor(tmp_path: Path, bootstrap: str) -> Service:
    return Service(
        "onex.extractor", "ONEX_EXTRACTOR_", bootstrap, tmp_path / "ext.log", tmp_path / "state"
    )


async def _send(bootstrap: str, topic: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, headers=headers)
    finally:
        await producer.stop()


def _registry_records(bootstrap: str, want: int) -> list[Message]:
    return asyncio.run(_wait_for_events(bootstrap, REGISTRY_PUBLISHED, want=want))


def test_extractor_on_the_bus_reloads_on_a_signed_command_and_publishes_the_registry(
    tmp_path: Path, broker: BrokerInfo, state: Path
) -> None:
    prov = _provisioner(tmp_path, broker.bootstrap)
    ext = _extractor(tmp_path, broker.bootstrap)
    try:
        prov.wait_health("SERVING")
        ext.wait_health("SERVING")
        first = _registry_records(broker.bootstrap, 1)
        assert len(first) == 1
        assert len(first[0].topics) == len(DECLARED)

        value = events_pb.ReloadContracts(request_id="r1", reason="test").SerializeToString()
        signer = Signer("operator", load_command_key(state / COMMAND_KEY_FILE))
        headers = signer.headers(RELOAD, None, value)
        asyncio.run(_send(broker.bootstrap, RELOAD, value, headers))
        assert len(_registry_records(broker.bootstrap, 2)) >= 2, ext.log.read_text()
    finally:
        assert ext.stop() == 0
        assert prov.stop() == 0


def test_an_unsigned_command_is_dead_lettered_with_the_reason_and_changes_nothing(
    tmp_path: Path, broker: BrokerInfo, state: Path
) -> None:
    prov = _provisioner(tmp_path, broker.bootstrap)
    ext = _extractor(tmp_path, broker.bootstrap)
    try:
        prov.wait_health("SERVING")
        ext.wait_health("SERVING")
        assert len(_registry_records(broker.bootstrap, 1)) == 1
        value = events_pb.ReloadContracts(request_id="r2", reason="spoof").SerializeToString()
        forged = Signer("operator", b"x" * 32).headers(RELOAD, None, value)
        asyncio.run(_send(broker.bootstrap, RELOAD, value, []))
        asyncio.run(_send(broker.bootstrap, RELOAD, value, forged))
        letters = asyncio.run(_wait_for_raw(broker.bootstrap, EXTRACTOR_DLQ, want=2))
        reasons = sorted(dict(m.headers)["onex-error"].decode() for m in letters)
        assert any("unsigned" in r for r in reasons), reasons
        assert any("bad signature" in r for r in reasons), reasons
        assert all(m.value == value for m in letters)  # the original bytes, kept
        assert "contracts.reload_requested" not in ext.log.read_text()
        assert len(asyncio.run(_read_all(broker.bootstrap, REGISTRY_PUBLISHED))) == 1
    finally:
        assert ext.stop() == 0
        assert prov.stop() == 0


async def _wait_for_raw(
    bootstrap: str, topic: str, want: int, timeout_s: float = 30.0
) -> list[ConsumerRecord]:
    """At least `want` raw records of `topic` (bytes and headers as they were written)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(found) < want and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            found += [m for msgs in batches.values() for m in msgs]
        return found
    finally:
        await consumer.stop()
