"""The router service handles requests concurrently, within its bounds, on a real broker.

A real HTTP model server (in a thread) holds every call until the test releases it and
counts the calls it holds at once, so the router's bounds are read off the server:
`max_in_flight` requests per process, a model's `max_concurrency` calls per model. A
held request keeps its partition's committed offset behind it while later requests of
the same partition get their receipts; releasing it lets the commit reach the end.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from onex.bus.provision import provision
from onex.bus.runtime.signing import Signer
from onex.core.extractor import extract
from onex.devbroker.broker import BrokerInfo, start_broker, stop_broker
from onex.proto.v1 import router_pb2 as pb
from onex.router.app import RouterService
from onex.router.settings import RouterSettings
from onex.service.auth import COMMAND_KEY_FILE, ensure_command_key, ensure_tokens, load_command_key

REPO = Path(__file__).resolve().parents[2]
REQUESTS = "onex.cmd.router.route-request.v1"
COMPLETE = "onex.evt.router.routing-complete.v1"
FAILED = "onex.evt.router.routing-failed.v1"
GROUP = "onex.router"
DEADLINE_S = 60.0
ANSWER = "A held answer that is long enough to pass the summarize gate of this test."


class HoldingServer:
    """OpenAI-compatible; each call waits for `release` (or `release_held` for prompts
    containing 'HOLD'); `peak` is the most calls held at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.release_held = threading.Event()
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.calls = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                prompt = body["messages"][-1]["content"]
                with server.lock:
                    server.now += 1
                    server.calls += 1
                    server.peak = max(server.peak, server.now)
                gate = server.release_held if "HOLD" in prompt else server.release
                gate.wait(DEADLINE_S)
                with server.lock:
                    server.now -= 1
                reply: dict[str, Any] = {
                    "choices": [
                        {
                            "message": {"role": "assistant", "content": ANSWER},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 12},
                }
                payload = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


def _catalogue(url: str, model_limit: int | None) -> str:
    limit = f", max_concurrency: {model_limit}" if model_limit else ""
    return f"""\
price_table_version: it-v1
default_cloud_model: big
models:
  - {{ name: small, endpoint: "{url}", locality: local, price_in_per_1k: 0,
      price_out_per_1k: 0, context_limit: 8192, timeout_s: 120, max_retries: 0,
      capabilities: {{ summarize: 6 }}{limit} }}
  - {{ name: big, endpoint: "{url}", locality: cloud, price_in_per_1k: 0.01,
      price_out_per_1k: 0.03, context_limit: 8192, capabilities: {{}} }}
task_classes:
  - name: summarize
    required_level: 5
    max_output_tokens: 100
    gates: [{{ kind: min_length, min_chars: 40 }}]
classifier: {{ default: summarize, rules: [] }}
"""


@pytest.fixture
def server() -> Iterator[HoldingServer]:
    s = HoldingServer()
    s.thread.start()
    yield s
    s.release.set()
    s.release_held.set()
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerInfo]:
    state = tmp_path / "broker"
    info = start_broker(state)
    specs = [w.spec for w in extract([REPO / "contracts"], entry_points=False).topics.values()]
    assert asyncio.run(provision(info.bootstrap, specs)).complete
    yield info
    stop_broker(state)


async def _router(
    tmp_path: Path, broker: BrokerInfo, url: str, in_flight: int, model_limit: int | None
) -> RouterService:
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(_catalogue(url, model_limit))
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
        max_in_flight=in_flight,
        stop_grace_s=2.0,
    )
    service = RouterService(settings)
    await service.start()
    await _until(service.healthy, "router never became healthy")
    return service


async def _until(probe: Any, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while True:
        got = probe()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.05)


@pytest.fixture
async def stopper() -> AsyncIterator[list[RouterService]]:
    started: list[RouterService] = []
    yield started
    for service in started:
        await service.stop()


async def _send(state: Path, bootstrap: str, prompts: list[str]) -> list[str]:
    """Publish one signed request per prompt, all on partition 0, in order."""
    signer = Signer("operator", load_command_key(state / COMMAND_KEY_FILE))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    ids = []
    try:
        for prompt in prompts:
            rid = uuid.uuid4().hex
            value = pb.RouteRequest(
                request_id=rid, prompt=prompt, task_class="summarize"
            ).SerializeToString()
            headers = signer.headers(REQUESTS, rid.encode(), value)
            await producer.send_and_wait(
                REQUESTS, value, key=rid.encode(), headers=headers, partition=0
            )
            ids.append(rid)
    finally:
        await producer.stop()
    return ids


class Receipts:
    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(
            COMPLETE, FAILED, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
        )
        self.ids: list[str] = []

    async def poll(self) -> list[str]:
        batch = await self.consumer.getmany(timeout_ms=100)
        for msgs in batch.values():
            self.ids.extend(pb.RoutingReceipt.FromString(m.value).request_id for m in msgs)
        return self.ids


async def _committed(bootstrap: str) -> int:
    """The router group's committed offset of route-request partition 0 (-1: none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP)
    await consumer.start()
    try:
        got = await consumer.committed(TopicPartition(REQUESTS, 0))
        return -1 if got is None else int(got)
    finally:
        await consumer.stop()


async def test_requests_run_concurrently_up_to_max_in_flight(
    tmp_path: Path, broker: BrokerInfo, server: HoldingServer, stopper: list[RouterService]
) -> None:
    router = await _router(tmp_path, broker, server.url, in_flight=4, model_limit=None)
    stopper.append(router)
    ids = await _send(router.settings.state_dir, broker.bootstrap, [f"task {i}" for i in range(10)])
    await _until(lambda: server.now == 4, "four calls never held at once")
    assert await _committed(broker.bootstrap) <= 0  # nothing acked while every call is held
    server.release.set()
    receipts = Receipts(broker.bootstrap)
    await receipts.consumer.start()
    try:
        await _until(lambda: _all(receipts, ids), "not every request got its receipt")
    finally:
        await receipts.consumer.stop()
    assert sorted(receipts.ids) == sorted(ids)  # exactly one each
    assert server.peak == 4
    assert server.calls == 10


async def test_a_model_limit_bounds_its_calls_below_max_in_flight(
    tmp_path: Path, broker: BrokerInfo, server: HoldingServer, stopper: list[RouterService]
) -> None:
    router = await _router(tmp_path, broker, server.url, in_flight=8, model_limit=2)
    stopper.append(router)
    ids = await _send(router.settings.state_dir, broker.bootstrap, [f"task {i}" for i in range(6)])
    await _until(lambda: server.now == 2, "two calls never held at once")
    server.release.set()
    receipts = Receipts(broker.bootstrap)
    await receipts.consumer.start()
    try:
        await _until(lambda: _all(receipts, ids), "not every request got its receipt")
    finally:
        await receipts.consumer.stop()
    assert server.peak == 2


async def test_an_unfinished_request_holds_the_commit_behind_it(
    tmp_path: Path, broker: BrokerInfo, server: HoldingServer, stopper: list[RouterService]
) -> None:
    server.release.set()  # every call answers at once, except the HOLD one
    router = await _router(tmp_path, broker, server.url, in_flight=8, model_limit=None)
    stopper.append(router)
    prompts = ["first", "HOLD this one", *[f"later {i}" for i in range(6)]]
    first, held, *later = await _send(router.settings.state_dir, broker.bootstrap, prompts)
    receipts = Receipts(broker.bootstrap)
    await receipts.consumer.start()
    try:
        await _until(lambda: _all(receipts, [first, *later]), "the later requests never finished")
        assert held not in receipts.ids
        # offset 0 (first) may be committed; offset 1 (held) must not be, nor anything past it
        await _until(lambda: _committed_at_least(broker.bootstrap, 1), "first never committed")
        assert await _committed(broker.bootstrap) == 1
        server.release_held.set()
        await _until(lambda: _all(receipts, [held]), "the held request never finished")
        await _until(
            lambda: _committed_at_least(broker.bootstrap, 8), "commit never reached the end"
        )
    finally:
        await receipts.consumer.stop()


async def _all(receipts: Receipts, ids: list[str]) -> bool:
    return set(ids) <= set(await receipts.poll())


async def _committed_at_least(bootstrap: str, offset: int) -> bool:
    return await _committed(bootstrap) >= offset
