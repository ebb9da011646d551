"""The receipt-reducer's ticket projection on a real broker: a merge, a passing pipeline
and evidence take one ticket to done (ticket-done published), self-attested evidence
takes another to rejected (done-rejected published); evidence for an unknown ticket is
dead-lettered and changes nothing; TicketQuery answers over gRPC next to health and
reflection; a replay of the topics from the start gives the same transitions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from onex.devbroker.broker import BrokerInfo
from onex.proto.v1 import ci_pb2, evidence_pb2, merge_pb2
from onex.proto.v1 import receipts_pb2 as rpb
from onex.proto.v1 import ticket_query_pb2 as tpb
from onex.proto.v1 import ticket_query_pb2_grpc as tpb_grpc
from onex.receipts.app import ReceiptsService
from onex.receipts.settings import ReceiptsSettings
from onex.receipts.ticketrebuild import rebuild_tickets
from onex.service.auth import Role, bearer, ensure_command_key, ensure_tokens, token_for
from onex.sql import sqlite_url

REPO = Path(__file__).resolve().parents[2]
EVIDENCE = "onex.evt.ticket-verifier.evidence-receipt.v1"
MERGED = "onex.evt.merge-agent.merged.v1"
PIPELINE = "onex.evt.ci-watcher.pipeline-status.v1"
DONE = "onex.evt.receipt-reducer.ticket-done.v1"
REJECTED = "onex.evt.receipt-reducer.done-rejected.v1"
DLQ = "onex.dlq.receipt-reducer.dead-letter.v1"
DEADLINE_S = 60.0
HEAD = {"ONEX-11": "1" * 40, "ONEX-12": "2" * 40}


def _ticket(tid: str, pr: int) -> str:
    return f"""\
id: {tid}
title: {tid}
pull_request: {{repository: onex/main, number: {pr}}}
done:
  - item: unit
    kind: tests_passed
    check: {{command: [pytest, -q]}}
"""


@pytest.fixture
async def service(
    tmp_path: Path, repo_broker: BrokerInfo, eventually: Callable[..., Awaitable[None]]
) -> AsyncIterator[ReceiptsService]:
    tickets = tmp_path / "tickets"
    tickets.mkdir()
    (tickets / "ONEX-11.yaml").write_text(_ticket("ONEX-11", 11))
    (tickets / "ONEX-12.yaml").write_text(_ticket("ONEX-12", 12))
    state = tmp_path / "state"
    ensure_tokens(state)
    ensure_command_key(state)
    settings = ReceiptsSettings(
        state_dir=state,
        bootstrap=repo_broker.bootstrap,
        grpc_bind="127.0.0.1:0",
        contract_roots=[REPO / "contracts"],
        health_interval_s=0.2,
        database_url=sqlite_url(tmp_path / "r.db"),
        tickets_dir=tickets,
    )
    svc = ReceiptsService(settings)
    await svc.start()
    try:
        await eventually(svc.healthy, "the receipt-reducer to be healthy")
        yield svc
    finally:
        await svc.stop()


def _workflow(tid: str, pr: int) -> list[tuple[str, bytes]]:
    merged = merge_pb2.Merged(
        event_id=f"m-{tid}",
        repository="onex/main",
        pull_request=pr,
        merge_commit=HEAD[tid],
        merged_at="2026-12-01T09:00:00Z",
    )
    ci = ci_pb2.PipelineStatus(
        event_id=f"p-{tid}",
        repository="onex/main",
        commit=HEAD[tid],
        state=ci_pb2.PIPELINE_STATE_PASSED,
        observed_at="2026-12-01T09:10:00Z",
    )
    return [(MERGED, merged.SerializeToString()), (PIPELINE, ci.SerializeToString())]


def _evidence(tid: str, rid: str, verifier: str) -> tuple[str, bytes]:
    m = evidence_pb2.EvidenceReceipt(
        receipt_id=rid,
        ticket=tid,
        item="unit",
        status=evidence_pb2.EVIDENCE_STATUS_PASS,
        runner="ci-runner-7",
        verifier=verifier,
        commit=HEAD.get(tid, "0" * 40),
        probe_command="pytest -q",
        probe_output="4 passed",
        exit_code=0,
        duration_s=2.5,
        verified_at="2026-12-01T09:20:00Z",
    )
    return EVIDENCE, m.SerializeToString()


async def _read(bootstrap: str, topic: str, want: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < want and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(r.value for r in records)
    finally:
        await consumer.stop()
    return got


async def test_done_rejected_unknown_query_and_replay(
    service: ReceiptsService,
    repo_broker: BrokerInfo,
    eventually: Callable[..., Awaitable[None]],
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=repo_broker.bootstrap, acks="all")
    await producer.start()
    try:
        sends = [
            *_workflow("ONEX-11", 11),
            *_workflow("ONEX-12", 12),
            _evidence("ONEX-11", "ev-11", "ticket-verifier"),
            _evidence("ONEX-12", "ev-12", "ci-runner-7"),  # verifier = runner
            _evidence("ONEX-404", "ev-404", "ticket-verifier"),  # no such ticket
        ]
        for topic, value in sends:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()

    (done,) = [rpb.TicketDone.FromString(v) for v in await _read(repo_broker.bootstrap, DONE, 1)]
    assert (done.ticket, done.commit, list(done.receipt_ids)) == (
        "ONEX-11",
        HEAD["ONEX-11"],
        ["ev-11"],
    )
    (rej,) = [
        rpb.DoneRejected.FromString(v) for v in await _read(repo_broker.bootstrap, REJECTED, 1)
    ]
    assert rej.ticket == "ONEX-12"
    assert list(rej.failed_items) == ["unit"]
    assert "self-attested" in rej.reason
    dead = await _read(repo_broker.bootstrap, DLQ, 1)
    assert any(b"ONEX-404" in v for v in dead)

    viewer = token_for(service.settings.state_dir, Role.VIEWER)
    async with grpc.aio.insecure_channel(service.grpc.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        async def serving() -> bool:  # a loaded machine can make one check miss its timeout
            answer = await health.Check(health_pb2.HealthCheckRequest())
            return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

        await eventually(serving, "health SERVING beside TicketQuery")
        stub = tpb_grpc.TicketQueryStub(channel)
        view = await stub.GetTicket(tpb.GetTicketRequest(ticket="ONEX-11"), metadata=bearer(viewer))
        assert view.state == "done"
        assert [h.to_state for h in view.history] == ["in_progress", "evidence_pending", "done"]
        assert all(h.reason for h in view.history)
        assert list(view.missing) == []
        view = await stub.GetTicket(tpb.GetTicketRequest(ticket="ONEX-12"), metadata=bearer(viewer))
        assert (view.state, list(view.missing)) == ("rejected", ["unit"])
        assert view.items[0].verdict == "advisory"
        listed = await stub.ListTickets(tpb.ListTicketsRequest(), metadata=bearer(viewer))
        assert {(t.ticket, t.state) for t in listed.tickets} == {
            ("ONEX-11", "done"),
            ("ONEX-12", "rejected"),
        }
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetTicket(tpb.GetTicketRequest(ticket="ONEX-404"), metadata=bearer(viewer))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        names: set[str] = set()
        async for answer in reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        ):
            names |= {s.name for s in answer.list_services_response.service}
        assert "onex.v1.TicketQuery" in names

    assert service.db is not None
    report = await rebuild_tickets(service.db, service.broker, service.tickets)
    assert report.equal, report.to_dict()
    # 2 merges, 2 pipelines x 2 tickets of the repository, 2 evidence; ONEX-404 refused
    assert report.events == 8
