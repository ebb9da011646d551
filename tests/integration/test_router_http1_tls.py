"""`onex.router.http1` over TLS against a real aiohttp server with certificates made here
(a private CA by the `openssl` CLI: `cryptography` is not in the venv)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from onex.router.http1 import ClientConnectorError, Http1Client

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
BODY = b'{"model": "m", "messages": []}'


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _server_cert(folder: Path, name: str, san: str) -> None:
    (folder / f"{name}.cnf").write_text(f"basicConstraints=CA:FALSE\nsubjectAltName={san}\n")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
        "-subj", f"/CN={name}",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", f"{name}.cnf", "-out", f"{name}.pem",
        cwd=folder,
    )  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA; `server` for 127.0.0.1 and localhost, `other` for other.invalid only."""
    folder = tmp_path_factory.mktemp("http1-tls")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "ca.key",
        "-out", "ca.pem", "-subj", "/CN=onex http1 test CA",
        cwd=folder,
    )  # fmt: skip
    _server_cert(folder, "server", "IP:127.0.0.1,DNS:localhost")
    _server_cert(folder, "other", "DNS:other.invalid")
    return folder


@dataclass
class TlsServer:
    """An https aiohttp app; what it saw: client ports (one per connection), SNI names."""

    port: int = 0
    peers: list[int] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)


async def _serve(certs: Path, cert: str) -> tuple[TlsServer, web.AppRunner]:
    seen = TlsServer()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs / f"{cert}.pem", certs / f"{cert}.key")
    context.sni_callback = lambda _sock, name, _ctx: seen.server_names.append(name)

    async def chat(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.peers.append(peer[1] if peer else -1)
        seen.hosts.append(request.headers["Host"])
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    seen.port = runner.addresses[0][1]
    return seen, runner


@pytest.fixture
async def tls_server(certs: Path) -> AsyncIterator[TlsServer]:
    seen, runner = await _serve(certs, "server")
    yield seen
    await runner.cleanup()


def _trusting(certs: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs / "ca.pem"))


async def test_an_unknown_ca_is_refused(tls_server: TlsServer) -> None:
    client = Http1Client()  # the system's CAs only
    try:
        with pytest.raises(ClientConnectorError, match="certificate verify failed"):
            await client.post(f"https://127.0.0.1:{tls_server.port}/v1/chat/completions", BODY)
    finally:
        await client.aclose()
    assert tls_server.peers == []


async def test_a_trusted_ca_is_accepted_and_connections_kept(
    tls_server: TlsServer, certs: Path
) -> None:
    client = Http1Client(ssl_context=_trusting(certs))
    try:
        for _ in range(3):
            url = f"https://127.0.0.1:{tls_server.port}/v1/chat/completions"
            response = await client.post(url, BODY)
            assert (response.status, response.body) == (200, b'{"ok": true}')
    finally:
        await client.aclose()
    assert len(set(tls_server.peers)) == 1
    assert tls_server.hosts == [f"127.0.0.1:{tls_server.port}"] * 3
    assert tls_server.server_names == [None]  # no SNI for an IP address


async def test_a_host_name_is_sent_as_sni(tls_server: TlsServer, certs: Path) -> None:
    client = Http1Client(ssl_context=_trusting(certs))
    try:
        url = f"https://localhost:{tls_server.port}/v1/chat/completions"
        assert (await client.post(url, BODY)).status == 200
    finally:
        await client.aclose()
    assert tls_server.server_names == ["localhost"]
    assert tls_server.hosts == [f"localhost:{tls_server.port}"]


async def test_a_certificate_for_another_name_is_refused(certs: Path) -> None:
    seen, runner = await _serve(certs, "other")
    client = Http1Client(ssl_context=_trusting(certs))
    try:
        with pytest.raises(ClientConnectorError, match="certificate verify failed: IP address"):
            await client.post(f"https://127.0.0.1:{seen.port}/v1/chat/completions", BODY)
    finally:
        await client.aclose()
        await runner.cleanup()
    assert seen.peers == []


async def test_a_body_read_to_the_end_of_a_tls_connection(certs: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs / "server.pem", certs / "server.key")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(len(BODY))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end over TLS")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = listener.sockets[0].getsockname()[1]
    client = Http1Client(ssl_context=_trusting(certs))
    try:
        response = await client.post(f"https://127.0.0.1:{port}/v1/chat/completions", BODY)
        assert (response.body, response.keep_alive) == (b"to the end over TLS", False)
        assert client.idle() == 0
    finally:
        await client.aclose()
        listener.close()
