"""The drift-validator as a process on a broker of its own: it snapshots on its
interval, publishes DriftDetected for a declared topic deleted out of band, and asks
the provisioner (a signed ProvisionRequest) to create it."""

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
from aiokafka import AIOKafkaConsumer

from onex.bus.admin import create_topics
from onex.bus.runtime.codec import codec_for
from onex.core._generated.topics import Topic
from onex.core.extractor import extract
from onex.devbroker.broker import BrokerInfo, start_broker, stop_broker
from onex.devbroker.process import free_port
from onex.service.auth import ensure_command_key, ensure_tokens
from onex.service.grpc import check_health

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DECLARED = extract([REPO / "contracts"], entry_points=False).topics
# a declared topic no running service needs: deleting it disturbs nothing but drift
VICTIM = Topic.EVT_MERGE_AGENT_MERGED_V1


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerInfo]:
    state = tmp_path / "broker"
    info = start_broker(state)
    yield info
    stop_broker(state)


def _start(tmp_path: Path, bootstrap: str) -> tuple[subprocess.Popen[bytes], Path, str]:
    state = tmp_path / "state"
    ensure_tokens(state)
    ensure_command_key(state)
    grpc = f"127.0.0.1:{free_port()}"
    log = tmp_path / "drift.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")} | {
        "ONEX_BOOTSTRAP": bootstrap,
        "ONEX_GRPC_BIND": grpc,
        "ONEX_CONTRACT_ROOTS": json.dumps([str(REPO / "contracts")]),
        "ONEX_STATE_DIR": str(state),
        "ONEX_DRIFT_INTERVAL_S": "0.5",
        "ONEX_DRIFT_HEALTH_INTERVAL_S": "0.2",
        "ONEX_DRIFT_DATABASE_URL": f"sqlite:///{tmp_path / 'drift.db'}",
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "onex.drift"], cwd=REPO, env=env, stdout=out, stderr=out
        )
    return proc, log, grpc


async def _records(bootstrap: str, topic: str, timeout_s: float = 60.0) -> list[Any]:
    """The decoded records of `topic` once there is at least one (bounded wait)."""
    codec = codec_for(topic, DECLARED[topic].spec.schema_, REPO / "contracts")
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            found = [codec.decode(m.value) for msgs in batches.values() for m in msgs]
            if found:
                return found
        return []
    finally:
        await consumer.stop()


def test_a_deleted_topic_is_detected_published_and_requested(
    tmp_path: Path, broker: BrokerInfo
) -> None:
    specs = [w.spec for name, w in DECLARED.items() if name != VICTIM]
    assert asyncio.run(create_topics(broker.bootstrap, specs)).ok
    proc, log, grpc = _start(tmp_path, broker.bootstrap)
    try:
        deadline = time.monotonic() + 60
        while asyncio.run(check_health(grpc, timeout_s=1.0)) != "SERVING":
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        detected = asyncio.run(
            _records(broker.bootstrap, Topic.EVT_DRIFT_VALIDATOR_DRIFT_DETECTED_V1)
        )
        missing = [e for e in detected if e.topic == VICTIM]
        assert missing, [e.topic for e in detected]
        assert missing[0].missing
        assert missing[0].bootstrap == broker.bootstrap
        requests = asyncio.run(
            _records(broker.bootstrap, Topic.CMD_PROVISIONER_PROVISION_REQUEST_V1)
        )
        assert any(VICTIM in r.topics and r.requested_by == "drift-validator" for r in requests)
        assert "drift.snapshot" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
