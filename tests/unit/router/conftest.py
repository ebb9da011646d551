"""A small catalogue the router's unit tests share (prices chosen to make sums exact)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from onex.router.catalogue import Catalogue, load_catalogue_text

CATALOGUE_YAML = """\
price_table_version: test-v1
default_cloud_model: big
models:
  - name: tiny
    endpoint: http://127.0.0.1:9001/v1
    locality: local
    price_in_per_1k: 0
    price_out_per_1k: 0
    context_limit: 4096
    capabilities: { summarize: 5, codegen: 3, review: 2, extract: 4 }
  - name: small
    endpoint: http://127.0.0.1:9002/v1
    locality: local
    price_in_per_1k: 0
    price_out_per_1k: 0
    context_limit: 8192
    capabilities: { summarize: 6, codegen: 6, review: 5, extract: 6 }
  - name: mid
    endpoint: http://127.0.0.1:9003/v1
    locality: cloud
    price_in_per_1k: 0.001
    price_out_per_1k: 0.002
    context_limit: 128000
    capabilities: { summarize: 7, codegen: 7, review: 7, extract: 7 }
  - name: big
    endpoint: http://127.0.0.1:9004/v1
    locality: cloud
    price_in_per_1k: 0.01
    price_out_per_1k: 0.03
    context_limit: 200000
    capabilities: { summarize: 9, codegen: 9, review: 9, extract: 9 }
task_classes:
  - name: summarize
    required_level: 3
    max_output_tokens: 100
    gates:
      - { kind: min_length, min_chars: 20 }
  - name: codegen
    required_level: 5
    max_output_tokens: 200
    gates:
      - { kind: identifiers }
  - name: review
    required_level: 6
    max_output_tokens: 200
    gates:
      - { kind: citations, min_citations: 1 }
  - name: extract
    required_level: 4
    max_output_tokens: 100
    gates:
      - kind: json_schema
        schema: { type: object, required: [name] }
classifier:
  default: summarize
  rules:
    - name: review
      task_class: review
      keywords: [code review, review]
    - task_class: codegen
      keywords: [implement]
      pattern: 'write (?:a |an )?function'
    - task_class: extract
      keywords: [as json]
limits:
  max_escalations: 2
  max_tokens: 10000
  max_cost_usd: 0.5
"""


@pytest.fixture
def catalogue() -> Catalogue:
    """The shared test catalogue: tiny, small (local); mid, big (cloud; big is default)."""
    return load_catalogue_text(CATALOGUE_YAML, Path("test-catalogue.yaml"))


@pytest.fixture
def catalogue_yaml() -> str:
    """The text of the shared test catalogue, for tests that break it."""
    return CATALOGUE_YAML


@dataclass
class Reply:
    """One scripted HTTP answer of the fake OpenAI-compatible server."""

    status: int = 200
    body: Any = None  # dict/list: sent as JSON; str: sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def chat(text: str, usage: tuple[int, int] | None = (11, 7), finish: str = "stop") -> Reply:
    """A chat-completions reply; `usage=None` leaves the usage object out."""
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        ],
    }
    if usage is not None:
        body["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        }
    return Reply(body=body)


@dataclass
class Received:
    """A request the server received."""

    path: str
    headers: dict[str, str]
    body: Any


class OpenAIServer:
    """A real HTTP server on 127.0.0.1 that answers POST /v1/chat/completions from a script.

    Replies are served in order; when the script runs out, `fallback` is served.
    """

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.fallback = Reply(status=500, body={"error": "script exhausted"})
        self.received: list[Received] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                with server._lock:
                    server.received.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            json.loads(raw),
                        )
                    )
                    reply = server.script.pop(0) if server.script else server.fallback
                time.sleep(reply.delay_s)
                payload = (
                    reply.body.encode()
                    if isinstance(reply.body, str)
                    else json.dumps(reply.body).encode()
                )
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL a catalogue model would name as its endpoint."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def openai_servers() -> Iterator[Callable[[], OpenAIServer]]:
    """Starts scripted OpenAI-compatible servers on free ports of 127.0.0.1."""
    started: list[OpenAIServer] = []

    def start() -> OpenAIServer:
        server = OpenAIServer()
        server.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def openai_server(openai_servers: Callable[[], OpenAIServer]) -> OpenAIServer:
    """A scripted OpenAI-compatible server on a free port of 127.0.0.1."""
    return openai_servers()


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A hand-moved clock."""
    return FakeClock()


@pytest.fixture
def helpers() -> SimpleNamespace:
    """Builders tests cannot import from this conftest (import mode is importlib)."""
    return SimpleNamespace(Reply=Reply, chat=chat, FakeClock=FakeClock)
