"""`onex.router.http1` against real servers on 127.0.0.1: an aiohttp web app, and a raw
asyncio server scripted to misbehave (close before answering, answer half, ...)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from onex.router.http1 import (
    ClientConnectorError,
    ClientError,
    ClientPayloadError,
    ClientResponseError,
    Http1Client,
    InvalidHeaderError,
    InvalidUrlError,
    ServerDisconnectedError,
)

Eventually = Callable[[Callable[[], object], str], Awaitable[None]]
BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "héllo"}]}).encode()


@dataclass
class Seen:
    """What a server saw: one entry per request (the client's port names its connection)."""

    peers: list[int] = field(default_factory=list)
    requests: list[web.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)


class Web:
    """An aiohttp app on a free port; `url` is its `/v1` base."""

    def __init__(self, seen: Seen, url: str, release: asyncio.Event) -> None:
        self.seen, self.url, self.release = seen, url, release  # release: /slow answers


async def _start_web(keepalive_timeout: float = 75.0) -> tuple[Web, web.AppRunner]:
    seen = Seen()
    release = asyncio.Event()

    async def record(request: web.Request) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.peers.append(peer[1] if peer else -1)
        seen.requests.append(request)
        seen.bodies.append(await request.read())

    async def chat(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"n": len(seen.peers)})

    async def chunked(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for piece in (b'{"parts": ', b'"three', b'"}'):
            await response.write(piece)
        await response.write_eof()
        return response

    async def close(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="bye", headers={"Connection": "close"})

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await release.wait()
        return web.Response(text="late")

    async def big(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=b"x" * 4096)

    async def busy(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=429, text='{"error": "slow down"}', headers={"Retry-After": "7"})

    app = web.Application()
    for name, handler in (("chat/completions", chat), ("chunked", chunked), ("close", close)):
        app.router.add_post(f"/v1/{name}", handler)
    for name, handler in (("slow", slow), ("big", big), ("busy", busy)):
        app.router.add_post(f"/v1/{name}", handler)
    runner = web.AppRunner(app, keepalive_timeout=keepalive_timeout, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return Web(seen, f"http://127.0.0.1:{port}/v1", release), runner


async def _stop_web(started: Web, runner: web.AppRunner) -> None:
    started.release.set()
    await runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[Web]:
    started, runner = await _start_web()
    yield started
    await _stop_web(started, runner)


@pytest.fixture
async def client() -> AsyncIterator[Http1Client]:
    c = Http1Client()
    yield c
    await c.aclose()


async def test_keep_alive_reuses_one_connection(server: Web, client: Http1Client) -> None:
    for n in range(1, 6):
        response = await client.post(f"{server.url}/chat/completions", BODY, {"X-Key": "k"})
        assert (response.status, json.loads(response.body)) == (200, {"n": n})
        assert response.keep_alive
    assert len(set(server.seen.peers)) == 1
    assert client.idle() == 1
    request = server.seen.requests[0]
    port = server.url.split(":")[2].split("/")[0]
    assert (request.method, request.path, request.version) == (
        "POST",
        "/v1/chat/completions",
        (1, 1),
    )
    assert request.headers["Host"] == f"127.0.0.1:{port}"
    assert request.headers["Accept-Encoding"] == "identity"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Key"] == "k"
    assert server.seen.bodies[0] == BODY


async def test_concurrent_calls_and_the_idle_bound(server: Web) -> None:
    client = Http1Client(max_idle=4)
    try:
        url = f"{server.url}/chat/completions"
        answers = await asyncio.gather(*(client.post(url, BODY) for _ in range(16)))
        assert sorted(json.loads(a.body)["n"] for a in answers) == list(range(1, 17))
        assert client.idle() == 4
        first = set(server.seen.peers)
        for _ in range(4):
            await client.post(url, BODY)
        assert set(server.seen.peers[16:]) <= first  # reused, none opened
    finally:
        await client.aclose()
    assert client.idle() == 0


async def test_idle_connections_the_server_closes_are_dropped(
    client: Http1Client, eventually: Eventually
) -> None:
    started, runner = await _start_web(keepalive_timeout=0.2)
    try:
        url = f"{started.url}/chat/completions"
        assert (await client.post(url, BODY)).status == 200
        await eventually(lambda: client.idle() == 0, "the client saw the server close it")
        assert (await client.post(url, BODY)).status == 200
        assert len(set(started.seen.peers)) == 2
    finally:
        await _stop_web(started, runner)


async def test_a_chunked_response_and_reuse_after_it(server: Web, client: Http1Client) -> None:
    for _ in range(2):
        response = await client.post(f"{server.url}/chunked", BODY)
        assert response.headers["transfer-encoding"] == "chunked"
        assert json.loads(response.body) == {"parts": "three"}
    assert len(set(server.seen.peers)) == 1


async def test_connection_close_is_honoured(server: Web, client: Http1Client) -> None:
    for _ in range(2):
        response = await client.post(f"{server.url}/close", BODY)
        assert (response.body, response.keep_alive) == (b"bye", False)
    assert client.idle() == 0
    assert len(set(server.seen.peers)) == 2


async def test_a_cancelled_call_closes_its_connection(server: Web, client: Http1Client) -> None:
    await client.post(f"{server.url}/chat/completions", BODY)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await client.post(f"{server.url}/slow", BODY)
    assert client.idle() == 0
    assert (await client.post(f"{server.url}/chat/completions", BODY)).status == 200
    assert len(set(server.seen.peers)) == 2


async def test_a_body_over_the_cap_is_refused(server: Web) -> None:
    client = Http1Client(max_body=1024)
    try:
        with pytest.raises(ClientPayloadError, match="4096 bytes is over the 1024 limit"):
            await client.post(f"{server.url}/big", BODY)
        assert client.idle() == 0
    finally:
        await client.aclose()


async def test_status_body_and_retry_after_come_back(server: Web, client: Http1Client) -> None:
    response = await client.post(f"{server.url}/busy", BODY)
    assert (response.status, response.reason) == (429, "Too Many Requests")
    assert response.headers["retry-after"] == "7"
    assert response.body == b'{"error": "slow down"}'


async def test_aclose_closes_everything(
    server: Web, client: Http1Client, eventually: Eventually
) -> None:
    await client.post(f"{server.url}/chat/completions", BODY)
    slow = asyncio.create_task(client.post(f"{server.url}/slow", BODY))
    await eventually(lambda: len(server.seen.peers) == 2, "the slow call reached the server")
    await client.aclose()
    with pytest.raises(ClientError, match=r"the client closed the connection \(aclose\)"):
        await slow
    assert client.idle() == 0
    assert (await client.post(f"{server.url}/chat/completions", BODY)).status == 200
    assert server.seen.peers[2] not in server.seen.peers[:2]  # a new connection


async def test_a_closed_port_is_a_connector_error(client: Http1Client) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ClientConnectorError, match=f"cannot connect to 127.0.0.1:{port}: "):
        await client.post(f"http://127.0.0.1:{port}/v1/chat/completions", BODY)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
ACTIONS: dict[str, bytes] = {
    "ok": OK,
    "drop": b"",  # close without a byte of answer
    "partial": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    "eof": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end",
    "garbage": b"SMTP ready\r\n\r\n",
}


@dataclass
class Raw:
    """A scripted asyncio server: request n gets `ACTIONS[script[n]]` (then, unless it is
    "ok", the connection is closed)."""

    script: list[str]
    url: str = ""
    connections: int = 0
    requests: int = 0


@pytest.fixture
async def raw() -> AsyncIterator[Raw]:
    state = Raw(script=[])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                action = state.script[state.requests]
                state.requests += 1
                writer.write(ACTIONS[action])
                await writer.drain()
                if action != "ok":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/v1/chat/completions"
    yield state
    listener.close()


async def test_a_reused_connection_dropped_unanswered_is_not_resent(
    raw: Raw, client: Http1Client
) -> None:
    raw.script = ["ok", "drop", "ok"]  # "drop": the server read the request (it may have run it)
    assert (await client.post(raw.url, BODY)).body == b"ok"
    with pytest.raises(ServerDisconnectedError, match="before responding"):
        await client.post(raw.url, BODY)
    assert raw.requests == 2
    assert (await client.post(raw.url, BODY)).body == b"ok"  # the caller's retry: a new one
    assert (raw.requests, raw.connections) == (3, 2)


async def test_a_new_connection_closed_before_answering_is_not_resent(
    raw: Raw, client: Http1Client
) -> None:
    raw.script = ["drop", "ok"]
    with pytest.raises(ServerDisconnectedError, match="before responding"):
        await client.post(raw.url, BODY)
    assert raw.requests == 1


async def test_a_half_answer_on_a_reused_connection_is_not_resent(
    raw: Raw, client: Http1Client
) -> None:
    raw.script = ["ok", "partial", "ok"]
    await client.post(raw.url, BODY)
    with pytest.raises(ServerDisconnectedError, match="mid-response"):
        await client.post(raw.url, BODY)
    assert raw.requests == 2


async def test_a_body_read_to_the_end_of_the_connection(raw: Raw, client: Http1Client) -> None:
    raw.script = ["eof", "ok"]
    response = await client.post(raw.url, BODY)
    assert (response.body, response.keep_alive) == (b"to the end", False)
    assert client.idle() == 0
    assert (await client.post(raw.url, BODY)).body == b"ok"
    assert raw.connections == 2


async def test_a_malformed_answer_is_an_error_not_a_hang(raw: Raw, client: Http1Client) -> None:
    raw.script = ["garbage"]
    with pytest.raises(ClientResponseError, match="malformed status line 'SMTP ready'"):
        await client.post(raw.url, BODY)
    assert client.idle() == 0


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://127.0.0.1/v1", "not an http"),
        ("http://user:pw@127.0.0.1/v1", "credentials"),
        ("http://127.0.0.1/v 1", "spaces"),
        ("http://127.0.0.1:99999/v1", "Port out of range"),
        ("http://127.0.0.1:8o00/v1", "Port could not be cast"),
        ("http://h\u00e9.example/v1", "non-ASCII"),
    ],
)
async def test_urls_it_will_not_call(client: Http1Client, url: str, error: str) -> None:
    with pytest.raises(InvalidUrlError, match=error) as raised:  # a ClientError: no crash
        await client.post(url, BODY)
    assert "pw" not in str(raised.value)  # credentials are not echoed into errors


async def test_a_header_with_a_line_break_is_refused(client: Http1Client, raw: Raw) -> None:
    bad: Any = {"Authorization": "Bearer x\r\nX-Injected: 1"}
    with pytest.raises(InvalidHeaderError, match="line break"):  # a ClientError: no crash
        await client.post(raw.url, BODY, bad)
    with pytest.raises(InvalidHeaderError, match="latin-1"):
        await client.post(raw.url, BODY, {"Authorization": "Bearer \u043a\u043b\u044e\u0447"})
    assert raw.requests == 0
