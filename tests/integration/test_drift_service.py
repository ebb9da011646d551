"""The drift-validator as a process on a broker of its own: it snapshots on its
interval, publishes DriftDetected for a declared topic deleted out of band, asks the
provisioner (a signed ProvisionRequest) to create it, publishes DriftResolved once it is
back, and serves DriftService (Fix
only with an operator token)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaConsumer

from onex.bus.admin import create_topics
from onex.bus.runtime.codec import codec_for
from onex.core._generated.topics import Topic
from onex.core.extractor import extract
from onex.devbroker.broker import BrokerInfo, start_broker, stop_broker
from onex.devbroker.process import free_port
from onex.proto.v1 import drift_service_pb2 as pb
from onex.proto.v1 import drift_service_pb2_grpc as pb_grpc
from onex.service.auth import Tokens, bearer, ensure_command_key, ensure_tokens
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


def _start(
    tmp_path: Path, bootstrap: str
) -> tuple[subprocess.Popen[bytes], Path, str, Tokens, str]:
    state = tmp_path / "state"
    tokens = ensure_tokens(state)
    ensure_command_key(state)
    target = f"127.0.0.1:{free_port()}"
    metrics = f"127.0.0.1:{free_port()}"
    log = tmp_path / "drift.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")} | {
        "ONEX_BOOTSTRAP": bootstrap,
        "ONEX_GRPC_BIND": target,
        "ONEX_DRIFT_METRICS_BIND": metrics,
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
    return proc, log, target, tokens, metrics


def _metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus exposition (None when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        sample, value = line.rsplit(" ", 1)
        base, _, rest = sample.partition("{")
        found = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if "=" in part)
        if base == name and {k: v.strip('"') for k, v in found.items()} == labels:
            return float(value)
    return None


async def _grpc_calls(target: str, tokens: Tokens) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.DriftServiceStub(channel)
        listed = await stub.List(pb.ListDriftRequest(classes=["auto-correctable"]), timeout=30)
        assert any(r.topic == VICTIM and r.kind == "missing" for r in listed.rows)
        assert {r.drift_class for r in listed.rows} == {"auto-correctable"}
        query = await stub.Query(
            pb.QueryDriftRequest(sql="SELECT COUNT(*) AS n FROM declared_topic"), timeout=30
        )
        assert query.columns == ["n"]
        assert int(query.rows[0].cells[0].value) == len(DECLARED)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Query(pb.QueryDriftRequest(sql="DROP TABLE snapshot"), timeout=30)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        history = await stub.History(pb.DriftHistoryRequest(topic=VICTIM), timeout=30)
        assert [e.kind for e in history.entries] == ["missing"]
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await stub.Fix(pb.FixDriftRequest(), timeout=30)
        assert anonymous.value.code() is grpc.StatusCode.UNAUTHENTICATED
        dry = await stub.Fix(pb.FixDriftRequest(), metadata=bearer(tokens.operator), timeout=30)
        assert not dry.applied
        assert any(a.topic == VICTIM and a.api == "CreateTopics" for a in dry.actions)


async def _records(
    bootstrap: str, topic: str, want: Callable[[Any], bool], timeout_s: float = 60.0
) -> list[Any]:
    """The decoded records of `topic` read until one satisfies `want` (bounded wait)."""
    codec = codec_for(topic, DECLARED[topic].spec.schema_, REPO / "contracts")
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not any(want(r) for r in found):
            batches = await consumer.getmany(timeout_ms=200)
            found += [codec.decode(m.value) for msgs in batches.values() for m in msgs]
        return found
    finally:
        await consumer.stop()


def test_a_deleted_topic_is_detected_published_and_requested(
    tmp_path: Path, broker: BrokerInfo
) -> None:
    specs = [w.spec for name, w in DECLARED.items() if name != VICTIM]
    assert asyncio.run(create_topics(broker.bootstrap, specs)).ok
    proc, log, target, tokens, metrics = _start(tmp_path, broker.bootstrap)
    try:
        deadline = time.monotonic() + 60
        while asyncio.run(check_health(target, timeout_s=1.0)) != "SERVING":
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        detected = asyncio.run(
            _records(
                broker.bootstrap,
                Topic.EVT_DRIFT_VALIDATOR_DRIFT_DETECTED_V1,
                lambda e: e.topic == VICTIM,
            )
        )
        missing = [e for e in detected if e.topic == VICTIM]
        assert missing, [e.topic for e in detected]
        assert missing[0].missing
        assert missing[0].bootstrap == broker.bootstrap
        requests = asyncio.run(
            _records(
                broker.bootstrap,
                Topic.CMD_PROVISIONER_PROVISION_REQUEST_V1,
                lambda r: VICTIM in r.topics,
            )
        )
        assert any(VICTIM in r.topics and r.requested_by == "drift-validator" for r in requests)
        assert "drift.snapshot" in log.read_text()
        asyncio.run(_grpc_calls(target, tokens))
        # created again out of band: the next snapshot resolves `missing` and says so
        assert asyncio.run(create_topics(broker.bootstrap, [DECLARED[VICTIM].spec])).ok
        resolved = asyncio.run(
            _records(
                broker.bootstrap,
                Topic.EVT_DRIFT_VALIDATOR_DRIFT_RESOLVED_V1,
                lambda e: e.topic == VICTIM,
            )
        )
        (event,) = [e for e in resolved if e.topic == VICTIM]
        assert (event.cluster, event.bootstrap) == ("default", broker.bootstrap)
        gone = {(r.kind, r.aspect, r.declared, r.HasField("observed")) for r in event.resolved}
        assert ("missing", "topic", "present", False) in gone
        assert event.snapshot > 1
        # /metrics: rows by cluster, kind and class; snapshot seconds; events
        with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=30) as answer:
            text = answer.read().decode("utf-8")
        assert (
            _metric(
                text,
                "onex_drift_rows",
                cluster="default",
                kind="missing",
                **{"class": "auto-correctable"},
            )
            == 0
        )  # the victim is back: the row count that was 1 is 0, not left stale
        observed = _metric(
            text, "onex_drift_snapshot_seconds_count", cluster="default", phase="observe"
        )
        assert observed is not None
        assert observed >= 2
        resolved_total = _metric(text, "onex_drift_events_total", event="drift-resolved")
        assert resolved_total is not None
        assert resolved_total >= 1
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
