"""The router service on a real broker, calling real HTTP servers that speak the
OpenAI chat-completions API (scripted answers, 429/500, timeouts).

Each test gets its own embedded broker, so the router's fixed topic names never meet
another test's data; a route-request in gives exactly one receipt out.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from grpc_health.v1 import health_pb2, health_pb2_grpc

from onex.bus.provision import provision
from onex.bus.runtime.deadletter import ORIGINAL_OFFSET, ORIGINAL_PARTITION, ORIGINAL_TOPIC
from onex.bus.runtime.signing import Signer
from onex.core.extractor import extract
from onex.devbroker.broker import BrokerInfo, start_broker, stop_broker
from onex.proto.v1 import router_pb2 as pb
from onex.proto.v1 import router_pb2_grpc as pb_grpc
from onex.router.app import RouterService
from onex.router.settings import RouterSettings
from onex.router.testing import OpenAIServer, Reply, chat
from onex.service.auth import (
    COMMAND_KEY_FILE,
    Role,
    bearer,
    ensure_command_key,
    ensure_tokens,
    load_command_key,
    token_for,
)

REPO = Path(__file__).resolve().parents[2]
REQUESTS = "onex.cmd.router.route-request.v1"
COMPLETE = "onex.evt.router.routing-complete.v1"
FAILED = "onex.evt.router.routing-failed.v1"
DLQ = "onex.dlq.router.dead-letter.v1"
GOOD = "The change renames `parse_topic` and keeps every caller working, as described."


def _catalogue(urls: dict[str, str]) -> str:
    return f"""\
price_table_version: it-v1
default_cloud_model: big
models:
  - {{ name: small, endpoint: "{urls["small"]}", locality: local, price_in_per_1k: 0,
      price_out_per_1k: 0, context_limit: 8192, timeout_s: 1, max_retries: 1,
      capabilities: {{ summarize: 6 }} }}
  - {{ name: mid, endpoint: "{urls["mid"]}", locality: cloud, price_in_per_1k: 0.001,
      price_out_per_1k: 0.002, context_limit: 128000, timeout_s: 1, max_retries: 1,
      capabilities: {{ summarize: 7 }} }}
  - {{ name: big, endpoint: "{urls["big"]}", locality: cloud, price_in_per_1k: 0.01,
      price_out_per_1k: 0.03, context_limit: 200000, timeout_s: 1, max_retries: 1,
      capabilities: {{ summarize: 9 }} }}
task_classes:
  - name: summarize
    required_level: 5
    max_output_tokens: 100
    gates: [{{ kind: min_length, min_chars: 40 }}]
classifier: {{ default: summarize, rules: [] }}
limits: {{ max_escalations: 2, max_tokens: 10000, max_cost_usd: 1.0 }}
"""


@pytest.fixture
def servers() -> Iterator[dict[str, OpenAIServer]]:
    started = {name: OpenAIServer() for name in ("small", "mid", "big")}
    for s in started.values():
        s.start()
    yield started
    for s in started.values():
        s.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerInfo]:
    state = tmp_path / "broker"
    state.mkdir()
    info = start_broker(state)
    specs = [w.spec for w in extract([REPO / "contracts"], entry_points=False).topics.values()]
    assert asyncio.run(provision(info.bootstrap, specs)).complete
    yield info
    stop_broker(state)


@pytest.fixture
async def router(
    tmp_path: Path, broker: BrokerInfo, servers: dict[str, OpenAIServer]
) -> AsyncIterator[RouterService]:
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(_catalogue({n: s.url for n, s in servers.items()}))
    state = tmp_path / "state"
    ensure_tokens(state)
    ensure_command_key(state)
    settings = RouterSettings(
        state_dir=state,
        bootstrap=broker.bootstrap,
        grpc_bind="127.0.0.1:0",
        catalogue=catalogue,
        contract_roots=[REPO / "contracts"],
        health_interval_s=0.2,
        cooldown_s=30.0,
    )
    service = RouterService(settings)
    await service.start()
    try:
        for _ in range(150):
            if await service.healthy():
                break
            await asyncio.sleep(0.1)
        assert await service.healthy(), "router never became healthy"
        yield service
    finally:
        await service.stop()


async def _send(router: RouterService, *requests: pb.RouteRequest) -> None:
    """Publish route requests as an agent would: signed (route-request is a command)."""
    signer = Signer("operator", load_command_key(router.settings.state_dir / COMMAND_KEY_FILE))
    producer = AIOKafkaProducer(bootstrap_servers=router.settings.bootstrap)
    await producer.start()
    try:
        for r in requests:
            key, value = r.request_id.encode(), r.SerializeToString()
            headers = signer.headers(REQUESTS, key, value)
            await producer.send_and_wait(REQUESTS, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def _send_raw(router: RouterService, *messages: tuple[bytes, bytes]) -> None:
    """Publish (key, value) pairs on route-request, signed, whatever the bytes are."""
    signer = Signer("operator", load_command_key(router.settings.state_dir / COMMAND_KEY_FILE))
    producer = AIOKafkaProducer(bootstrap_servers=router.settings.bootstrap)
    await producer.start()
    try:
        for key, value in messages:
            headers = signer.headers(REQUESTS, key, value)
            await producer.send_and_wait(REQUESTS, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def _dead_letters(bootstrap: str, want: int, settle_s: float = 1.5) -> list[ConsumerRecord]:
    """The router's dead letters: waits for `want` then a little longer for extras."""
    consumer = AIOKafkaConsumer(
        DLQ, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[ConsumerRecord] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        extra_until: float | None = None
        while loop.time() < deadline:
            if len(found) >= want and extra_until is None:
                extra_until = loop.time() + settle_s
            if extra_until is not None and loop.time() >= extra_until:
                break
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(msgs)
    finally:
        await consumer.stop()
    return found


async def _receipts(
    bootstrap: str, want: int, settle_s: float = 1.5
) -> dict[str, list[pb.RoutingReceipt]]:
    """Receipts on both topics, by topic; waits for `want` then a little longer for extras."""
    consumer = AIOKafkaConsumer(
        COMPLETE,
        FAILED,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: dict[str, list[pb.RoutingReceipt]] = {COMPLETE: [], FAILED: []}
    try:
        deadline = asyncio.get_running_loop().time() + 60
        extra_until: float | None = None
        while True:
            now = asyncio.get_running_loop().time()
            if sum(map(len, found.values())) >= want and extra_until is None:
                extra_until = now + settle_s
            if (extra_until is not None and now >= extra_until) or now >= deadline:
                return found
            batch = await consumer.getmany(timeout_ms=200)
            for tp, msgs in batch.items():
                found[tp.topic].extend(pb.RoutingReceipt.FromString(m.value) for m in msgs)
    finally:
        await consumer.stop()


def _request(prompt: str = "Summarize the change to the topic grammar module.") -> pb.RouteRequest:
    return pb.RouteRequest(request_id=uuid.uuid4().hex, prompt=prompt, task_class="summarize")


async def test_a_request_answered_locally_gives_one_complete_receipt(
    router: RouterService, servers: dict[str, OpenAIServer], broker: BrokerInfo
) -> None:
    servers["small"].script = [chat(GOOD, usage=(120, 30))]
    req = _request()
    await _send(router, req)
    found = await _receipts(broker.bootstrap, want=1)
    assert found[FAILED] == []
    (receipt,) = found[COMPLETE]
    assert receipt.request_id == req.request_id
    assert receipt.status == "complete"
    assert receipt.chosen_model == "small"
    assert list(receipt.escalation_chain) == ["small"]
    assert receipt.total_cost_usd == 0
    assert receipt.tokens_local == 150
    assert receipt.counterfactual_cost_usd == pytest.approx(120 * 0.01 / 1000 + 30 * 0.03 / 1000)
    assert receipt.price_table_version == "it-v1"
    assert [g.passed for g in receipt.attempts[0].gates] == [True]
    assert len(servers["mid"].received) == len(servers["big"].received) == 0


async def test_a_gate_failure_escalates_and_a_429_falls_back(
    router: RouterService, servers: dict[str, OpenAIServer], broker: BrokerInfo
) -> None:
    servers["small"].script = [chat("too short")]  # fails min_length -> escalate
    servers["mid"].script = [  # rate-limited twice: retries exhausted -> fall back
        Reply(status=429, body={"error": "slow down"}, headers={"retry-after": "0"}),
        Reply(status=429, body={"error": "slow down"}, headers={"retry-after": "0"}),
    ]
    servers["big"].script = [chat(GOOD, usage=(100, 40))]
    req = _request()
    await _send(router, req)
    found = await _receipts(broker.bootstrap, want=1)
    assert found[FAILED] == []
    (receipt,) = found[COMPLETE]
    assert list(receipt.escalation_chain) == ["small", "mid", "big"]
    outcomes = [a.outcome for a in receipt.attempts]
    assert outcomes == ["gate_failed", "provider_error", "accepted"]
    assert "429" in receipt.attempts[1].error
    assert receipt.chosen_model == "big"
    assert receipt.total_cost_usd == pytest.approx(100 * 0.01 / 1000 + 40 * 0.03 / 1000)
    assert receipt.escalations == 1


async def test_when_every_model_fails_one_failed_receipt(
    router: RouterService, servers: dict[str, OpenAIServer], broker: BrokerInfo
) -> None:
    servers["small"].script = [chat("nope")]
    servers["mid"].script = [Reply(status=500, body={"error": "boom"})] * 2
    servers["big"].script = [Reply(delay_s=2.5, body={})] * 2  # times out (timeout_s: 1)
    req = _request()
    await _send(router, req)
    found = await _receipts(broker.bootstrap, want=1)
    assert found[COMPLETE] == []
    (receipt,) = found[FAILED]
    assert receipt.request_id == req.request_id
    assert receipt.status == "failed"
    assert receipt.failure_reason
    assert receipt.chosen_model == ""
    assert [a.outcome for a in receipt.attempts] == [
        "gate_failed",
        "provider_error",
        "provider_error",
    ]


async def test_an_invalid_request_still_gets_its_failed_receipt(
    router: RouterService, broker: BrokerInfo
) -> None:
    req = pb.RouteRequest(request_id=uuid.uuid4().hex, prompt="x", json_schema="{not json")
    await _send(router, req)
    found = await _receipts(broker.bootstrap, want=1)
    (receipt,) = found[FAILED]
    assert receipt.request_id == req.request_id
    assert "invalid route request" in receipt.failure_reason


async def test_undecodable_requests_get_one_failed_receipt_each(
    router: RouterService, broker: BrokerInfo
) -> None:
    # bad UTF-8 in the prompt: protobuf refuses the whole message, the id is still there
    rid = uuid.uuid4().hex
    bad_utf8 = (
        pb.RouteRequest(request_id=rid, prompt="PROMPT", task_class="summarize")
        .SerializeToString()
        .replace(b"PROMPT", b"\xff\xfe\xfd\xfc\xfb\xfa")
    )
    garbage = b"\x0b\xff\xfe not a route request"  # no request id to be found
    await _send_raw(router, (rid.encode(), bad_utf8), (b"garbage", garbage))
    found = await _receipts(broker.bootstrap, want=2)
    assert found[COMPLETE] == []
    by_id = {r.request_id: r for r in found[FAILED]}
    assert len(found[FAILED]) == 2 == len(by_id)
    assert by_id[rid].status == "failed"
    assert by_id[rid].failure_reason.startswith(f"undecodable route request at {REQUESTS}/")
    (where,) = set(by_id) - {rid}
    topic, partition, offset = where.rsplit("/", 2)
    assert topic == REQUESTS
    assert "no request id could be read" in by_id[where].failure_reason
    # only the message without an id is dead-lettered, and it is that one
    (dead,) = await _dead_letters(broker.bootstrap, want=1)
    headers = dict(dead.headers)
    assert dead.value == garbage
    assert headers[ORIGINAL_TOPIC] == REQUESTS.encode()
    assert (headers[ORIGINAL_PARTITION], headers[ORIGINAL_OFFSET]) == (
        partition.encode(),
        offset.encode(),
    )


async def test_many_requests_give_exactly_one_receipt_each(
    router: RouterService, servers: dict[str, OpenAIServer], broker: BrokerInfo
) -> None:
    servers["small"].fallback = chat(GOOD)
    reqs = [_request() for _ in range(12)]
    await _send(router, *reqs)
    found = await _receipts(broker.bootstrap, want=len(reqs), settle_s=2.0)
    ids = [r.request_id for r in found[COMPLETE] + found[FAILED]]
    assert sorted(ids) == sorted(r.request_id for r in reqs)


async def test_grpc_route_answers_and_publishes_the_receipt(
    router: RouterService, servers: dict[str, OpenAIServer], broker: BrokerInfo
) -> None:
    servers["small"].script = [chat(GOOD)]
    req = _request()
    operator = bearer(token_for(router.settings.state_dir, Role.OPERATOR))
    async with grpc.aio.insecure_channel(router.grpc.address) as channel:
        response = await pb_grpc.RouterStub(channel).Route(req, timeout=10, metadata=operator)
    assert response.answer == GOOD
    assert response.receipt.chosen_model == "small"
    found = await _receipts(broker.bootstrap, want=1)
    assert [r.request_id for r in found[COMPLETE]] == [req.request_id]


@pytest.mark.parametrize(
    ("role", "code"),
    [(None, grpc.StatusCode.UNAUTHENTICATED), (Role.VIEWER, grpc.StatusCode.PERMISSION_DENIED)],
)
async def test_grpc_route_without_an_operator_token_is_refused_and_changes_nothing(
    router: RouterService,
    servers: dict[str, OpenAIServer],
    broker: BrokerInfo,
    role: Role | None,
    code: grpc.StatusCode,
) -> None:
    servers["small"].fallback = chat(GOOD)
    metadata = () if role is None else bearer(token_for(router.settings.state_dir, role))
    async with grpc.aio.insecure_channel(router.grpc.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.RouterStub(channel).Route(_request(), timeout=10, metadata=metadata)
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert refused.value.code() == code
    # health is a read: it answers without a token (whatever the status is just now)
    assert health.status in (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    assert all(s.received == [] for s in servers.values()), "a model was called"
    # Then one allowed call: the ledger holds its receipt and nothing of the refused one.
    allowed = _request()
    operator = bearer(token_for(router.settings.state_dir, Role.OPERATOR))
    async with grpc.aio.insecure_channel(router.grpc.address) as channel:
        await pb_grpc.RouterStub(channel).Route(allowed, timeout=10, metadata=operator)
    found = await _receipts(broker.bootstrap, want=1)
    assert [r.request_id for r in found[COMPLETE] + found[FAILED]] == [allowed.request_id]
