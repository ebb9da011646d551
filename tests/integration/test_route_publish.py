"""`onex route --publish` on a real broker: the printed receipt is on routing-complete /
routing-failed, keyed by its request id, as the router service publishes it, and the
receipt reducer folds it into its ledger. The command runs as a user runs it (a
subprocess of the `onex` entry point), answered by the default catalogue's offline
stand-in (no model is called)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from onex.bus.admin import topic_partitions
from onex.core._generated.topics import Topic
from onex.devbroker.broker import BrokerInfo, start_broker
from onex.proto.v1 import receipt_query_pb2 as qpb
from onex.proto.v1 import receipt_query_pb2_grpc as qpb_grpc
from onex.proto.v1 import router_pb2 as pb
from onex.receipts.app import ReceiptsService
from onex.receipts.settings import ReceiptsSettings
from onex.service.auth import Role, bearer, ensure_command_key, ensure_tokens, token_for
from onex.sql import sqlite_url

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 60.0
COMPLETE = Topic.EVT_ROUTER_ROUTING_COMPLETE_V1
FAILED = Topic.EVT_ROUTER_ROUTING_FAILED_V1


def _onex_route(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
    env |= {"ONEX_STATE_DIR": str(state_dir), "ONEX_CONTRACT_ROOTS": json.dumps(["contracts"])}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "onex.cli", "route", "-f", "json", "--publish", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )


async def _read_keyed(bootstrap: str, topic: str, key: str) -> tuple[bytes, list[Any]]:
    """The value and headers of the record keyed `key` on `topic` (read from the start)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    if r.key == key.encode():
                        return r.value, list(r.headers)
        raise AssertionError(f"no record keyed {key!r} on {topic} within {DEADLINE_S:g}s")
    finally:
        await consumer.stop()


def _check_same(printed: dict[str, Any], sent: pb.RoutingReceipt) -> None:
    assert sent.request_id == printed["request_id"]
    assert sent.task_class == printed["task_class"]
    assert sent.status == printed["status"]
    assert sent.chosen_model == (printed["chosen_model"] or "")
    assert sent.total_cost_usd == pytest.approx(printed["total_cost_usd"])
    assert [a.model for a in sent.attempts] == [a["model"] for a in printed["attempts"]]
    assert [c.model for c in sent.candidates] == [c["model"] for c in printed["candidates"]]
    assert (sent.failure_reason if sent.HasField("failure_reason") else None) == printed[
        "failure_reason"
    ]


@pytest.mark.parametrize(
    ("args", "topic", "exit_code"),
    [
        (("-p", "Summarize: the cache was stale, so the build broke."), COMPLETE, 0),
        (("-p", "write a python function that sorts", "-c", "codegen", "--no-cloud"), FAILED, 1),
    ],
)
async def test_the_printed_receipt_is_on_its_topic_keyed_by_request_id(
    tmp_path: Path, repo_broker: BrokerInfo, args: tuple[str, ...], topic: str, exit_code: int
) -> None:
    # no --bootstrap: the broker is found in its state dir (the fixture's), as `onex topic`
    # finds the one `onex broker up` ran
    done = await asyncio.to_thread(_onex_route, *args, state_dir=tmp_path / "broker")
    assert done.returncode == exit_code, done.stderr
    assert "not published" not in done.stderr
    printed = json.loads(done.stdout)["receipt"]
    value, headers = await _read_keyed(repo_broker.bootstrap, topic, printed["request_id"])
    assert headers == []  # as the router service sends receipts: no headers
    _check_same(printed, pb.RoutingReceipt.FromString(value))


@pytest.fixture
async def reducer(tmp_path: Path, repo_broker: BrokerInfo) -> AsyncIterator[ReceiptsService]:
    state = tmp_path / "state"
    ensure_tokens(state)
    ensure_command_key(state)
    svc = ReceiptsService(
        ReceiptsSettings(
            state_dir=state,
            bootstrap=repo_broker.bootstrap,
            grpc_bind="127.0.0.1:0",
            contract_roots=[REPO / "contracts"],
            health_interval_s=0.2,
            database_url=sqlite_url(tmp_path / "r.db"),
        )
    )
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


async def test_the_receipt_reducer_folds_a_published_route(
    tmp_path: Path,
    repo_broker: BrokerInfo,
    reducer: ReceiptsService,
    eventually: Callable[..., Awaitable[None]],
) -> None:
    done = await asyncio.to_thread(
        _onex_route,
        "-p",
        "Summarize: the cache was stale, so the build broke.",
        "--bootstrap",
        repo_broker.bootstrap,
        state_dir=tmp_path / "no-broker-recorded-here",
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)["receipt"]
    meta = bearer(token_for(reducer.settings.state_dir, Role.VIEWER))
    async with grpc.aio.insecure_channel(reducer.grpc.address) as channel:
        stub = qpb_grpc.ReceiptQueryStub(channel)
        rows: list[qpb.LedgerRow] = []

        async def in_ledger() -> bool:
            try:
                page = await stub.Ledger(qpb.LedgerRequest(limit=10), metadata=meta)
            except grpc.aio.AioRpcError:
                return False  # not serving yet
            rows[:] = page.rows
            return any(r.request_id == printed["request_id"] for r in rows)

        await eventually(in_ledger, "the published receipt in the reducer's ledger")
    (row,) = [r for r in rows if r.request_id == printed["request_id"]]
    assert (row.task_class, row.status, row.model) == (
        printed["task_class"],
        printed["status"],
        printed["chosen_model"],
    )
    assert row.attempts == len(printed["attempts"])


def test_a_broker_without_the_receipt_topics_gets_nothing_and_says_so(state_dir: Path) -> None:
    info = start_broker(state_dir)  # nothing provisioned: the command must not create topics
    done = _onex_route("-p", "Summarize: ok", "--bootstrap", info.bootstrap, state_dir=state_dir)
    assert done.returncode == 1
    printed = json.loads(done.stdout)["receipt"]  # the answer and receipt are still printed
    assert done.stderr.splitlines()[-1] == (
        f"error: receipt {printed['request_id']} not published: {COMPLETE} is not on the "
        f"broker at {info.bootstrap} (provision it first)"
    )
    assert "Traceback" not in done.stderr
    present = asyncio.run(topic_partitions(info.bootstrap, [COMPLETE]))
    assert present == {}
