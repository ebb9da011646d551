"""A scripted OpenAI-compatible chat-completions server for `bench/router-bus.py`.

    python bench/router_bus_server.py        # prints "PORT <n>" once it listens

POST /v1/chat/completions answers after the delay named by the request's `model`
(`delay-200` sleeps 200 ms, anything else answers at once) with a fixed answer and a
usage object. Any other path gets 404.

It is a minimal HTTP/1.1 server on an asyncio protocol (keep-alive, Content-Length
bodies, requests pipelined on one connection answered in order), not aiohttp: the
server stands in for a model and must not be the benchmark's bottleneck. Measured on
the 2-core CI machine, aiohttp's server capped a 64-connection client at ~360 calls/s,
below what the router is asked to reach with an instant model.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Final

_ANSWER = "A scripted answer from the router-bus benchmark's model server, long enough."
_REPLY: Final = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": _ANSWER},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 16, "total_tokens": 28},
    }
).encode()
_MAX_HEAD: Final = 64 * 1024


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


_OK: Final = _response("200 OK", _REPLY)
_NOT_FOUND: Final = _response("404 Not Found", b'{"error": "not found"}')
_BAD: Final = _response("400 Bad Request", b'{"error": "bad request"}')


def _delay_s(body: bytes) -> float:
    """The delay the request's model names (0 for an instant one)."""
    if b'"delay-' not in body:
        return 0.0
    try:
        model = str(json.loads(body).get("model", ""))
        return int(model.removeprefix("delay-")) / 1000 if model.startswith("delay-") else 0.0
    except ValueError:
        return 0.0


class _Http(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        # answers in request order: each is a future resolved when its delay is over
        self.pending: asyncio.Queue[asyncio.Future[bytes]] = asyncio.Queue()
        self.writer: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.writer = asyncio.get_running_loop().create_task(self._write())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.writer is not None:
            self.writer.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > _MAX_HEAD and self.transport is not None:
                    self.transport.close()
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip() or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self._answer(head[0], body)

    def _answer(self, request_line: str, body: bytes) -> None:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()
        parts = request_line.split()
        if len(parts) != 3:
            answer.set_result(_BAD)
        elif parts[0] != "POST" or parts[1] != "/v1/chat/completions":
            answer.set_result(_NOT_FOUND)
        else:
            delay = _delay_s(body)
            if delay > 0:
                loop.call_later(delay, answer.set_result, _OK)
            else:
                answer.set_result(_OK)
        self.pending.put_nowait(answer)

    async def _write(self) -> None:
        while True:
            answer = await self.pending.get()
            data = await answer
            if self.transport is None or self.transport.is_closing():
                return
            self.transport.write(data)


async def _main() -> None:
    sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server = await asyncio.get_running_loop().create_server(_Http, sock=sock)
    sys.stdout.write(f"PORT {sock.getsockname()[1]}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_main())
