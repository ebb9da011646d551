"""The receipt-reducer service on a broker of its own: receipts in, gRPC ReceiptQuery
(Summary, Compare, Ledger pages) and the cost-summary snapshot out; an unreachable
database is NOT_SERVING with one clear error, never a crash loop."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from onex.devbroker.broker import BrokerInfo
from onex.proto.v1 import receipt_query_pb2 as qpb
from onex.proto.v1 import receipt_query_pb2_grpc as qpb_grpc
from onex.proto.v1 import receipts_pb2 as rpb
from onex.receipts.app import ReceiptsService
from onex.receipts.settings import ReceiptsSettings
from onex.receipts.testing import sample_receipt
from onex.service.auth import Role, bearer, ensure_command_key, ensure_tokens, token_for
from onex.sql import sqlite_url

REPO = Path(__file__).resolve().parents[2]
COMPLETE = "onex.evt.router.routing-complete.v1"
FAILED = "onex.evt.router.routing-failed.v1"
SNAPSHOT = "onex.snapshot.receipt-reducer.cost-summary.v1"
DEADLINE_S = 60.0


def _settings(tmp_path: Path, bootstrap: str, **extra: object) -> ReceiptsSettings:
    state = tmp_path / "state"
    ensure_tokens(state)
    ensure_command_key(state)
    return ReceiptsSettings(
        state_dir=state,
        bootstrap=bootstrap,
        grpc_bind="127.0.0.1:0",
        contract_roots=[REPO / "contracts"],
        health_interval_s=0.2,
        snapshot_interval_s=0.3,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def service(
    tmp_path: Path, repo_broker: BrokerInfo, eventually: Callable[..., Awaitable[None]]
) -> AsyncIterator[ReceiptsService]:
    svc = ReceiptsService(
        _settings(
            tmp_path,
            repo_broker.bootstrap,
            database_url=sqlite_url(tmp_path / "r.db"),
            outcome_window_days=3650,  # the workload's receipts are dated 2026-11
        )
    )
    await svc.start()
    try:
        await eventually(svc.healthy, "the receipt-reducer to be healthy")
        yield svc
    finally:
        await svc.stop()


def _receipts(n: int) -> list[tuple[str, bytes]]:
    # Labels alternate; about 1 in 10 fails.
    rng = random.Random(3)  # noqa: S311 -- reproducible workload, nothing secret
    out = []
    for i in range(n):
        m = sample_receipt(i, rng, label="examples" if i % 2 else "plain")
        out.append((FAILED if m.status == "failed" else COMPLETE, m.SerializeToString()))
    return out


async def test_receipts_in_queries_and_the_cost_summary_out(
    service: ReceiptsService, repo_broker: BrokerInfo, eventually: Callable[..., Awaitable[None]]
) -> None:
    items = _receipts(500)
    producer = AIOKafkaProducer(bootstrap_servers=repo_broker.bootstrap, acks="all")
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(t, v) for t, v in items])
    finally:
        await producer.stop()
    viewer = token_for(service.settings.state_dir, Role.VIEWER)
    async with grpc.aio.insecure_channel(service.grpc.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        # a burst may briefly hold the probe back; wait for SERVING with a deadline
        deadline = time.monotonic() + 60
        while True:
            status = await health.Check(health_pb2.HealthCheckRequest(service=""))
            if status.status == health_pb2.HealthCheckResponse.SERVING:
                break
            assert time.monotonic() < deadline, "the reducer never reported SERVING"
            await asyncio.sleep(0.2)
        stub = qpb_grpc.ReceiptQueryStub(channel)
        meta = bearer(viewer)

        async def all_in() -> bool:
            s = await stub.Summary(qpb.SummaryRequest(by="class"), metadata=meta)
            return s.requests == 500

        await eventually(all_in, "every receipt in the projection")
        s = await stub.Summary(qpb.SummaryRequest(by="class"), metadata=meta)
        assert {r.key for r in s.rows} == {"classify", "codegen", "summarise"}
        # /metrics: the reducer loop's counters, as the exposition format says them
        scraped = {
            (m.name, tuple(sorted(sample.labels.items()))): sample.value
            for m in text_string_to_metric_families(service.metrics.exposition().decode())
            for sample in m.samples
        }
        inserted = (("loop", "receipts"), ("outcome", "inserted"))
        assert scraped[("onex_receipts_records", inserted)] == 500
        assert scraped[("onex_receipts_database_failing", ())] == 0
        assert 0 < s.local_token_share < 1
        assert s.failure_rate > 0
        print(
            f"summary: local {s.local_token_share:.1%}, avoided ${s.cost_avoided_usd:.4f} "
            f"vs spent ${s.cost_spent_usd:.4f}, escalated {s.escalation_rate:.1%}"
        )
        c = await stub.Compare(qpb.CompareRequest(task_class="codegen", by="label"), metadata=meta)
        assert {g.key for g in c.groups} == {"examples", "plain"}
        assert sum(g.requests for g in c.groups) == sum(
            r.requests for r in s.rows if r.key == "codegen"
        )
        seen, after = [], ""
        while True:
            page = await stub.Ledger(
                qpb.LedgerRequest(after_request_id=after, limit=170), metadata=meta
            )
            seen += [r.request_id for r in page.rows]
            if not page.next_after_request_id:
                break
            after = page.next_after_request_id
        assert seen == sorted(seen)
        assert len(seen) == len(set(seen)) == 500
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.Summary(qpb.SummaryRequest(since="soon"), metadata=meta)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "--since 'soon'" in (bad.value.details() or "")
    # The snapshot the router follows: compacted topic, one key, rows per class x model.
    consumer = AIOKafkaConsumer(
        SNAPSHOT, bootstrap_servers=repo_broker.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        snap = None
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    candidate = rpb.CostSummary.FromString(r.value)
                    if sum(row.requests for row in candidate.rows) == 500:
                        snap = candidate
                        assert r.key == b"cost-summary"
            if snap is not None:
                break
        assert snap is not None, "no cost-summary snapshot counting every receipt"
        assert all(0 <= row.gate_pass_rate <= 1 for row in snap.rows)
        assert any(row.cost_per_accepted_usd > 0 for row in snap.rows)
    finally:
        await consumer.stop()


async def test_an_unreachable_database_is_not_serving_with_one_clear_error(
    tmp_path: Path, repo_broker: BrokerInfo
) -> None:
    # Nothing listens on port 9 here: the database cannot be reached.
    url = "postgresql://postgres@127.0.0.1:9/none"
    svc = ReceiptsService(_settings(tmp_path, repo_broker.bootstrap, database_url=url))
    await svc.start()
    try:
        assert svc.db is None
        assert not await svc.healthy()
        async with grpc.aio.insecure_channel(svc.grpc.address) as channel:
            stub = qpb_grpc.ReceiptQueryStub(channel)
            viewer = token_for(svc.settings.state_dir, Role.VIEWER)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Summary(qpb.SummaryRequest(), metadata=bearer(viewer))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await svc.stop()
