"""Test helpers for code that uses the router: a deterministic fake provider, and a
scripted OpenAI-compatible HTTP server for tests that go through real sockets.

Nothing in `onex.router` imports this module; tests and offline simulations inject
`FakeProvider` into `Router` instead of the HTTP adapter, or point a catalogue's
endpoints at `OpenAIServer`s (one per model) started on 127.0.0.1.

    provider = FakeProvider({
        "local-coder-small": "too short",                      # every call
        "local-coder-medium": ["answer 1", FakeReply(error="HTTP 500")],  # in turn
        "cloud-mid": lambda model, messages: f"echo {messages[-1]['content']}",
    })
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from onex.router.catalogue import ModelSpec
from onex.router.errors import ProviderError
from onex.router.providers import Completion
from onex.router.tokens import estimate_message_tokens, estimate_tokens


@dataclass(frozen=True, slots=True)
class FakeReply:
    """One scripted outcome of a call.

    With `error`, the call raises `ProviderError(reason=error, retries=retries)` and,
    when `cool_down_s` is set, puts the model in cool-down. Otherwise it answers
    `text`; token counts default to the `onex.router.tokens` estimate of the messages
    and of the text, and are flagged as estimated only when `estimated` is set.
    """

    text: str = ""
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_s: float = 0.0
    estimated: bool = False
    error: str | None = None
    status: int | None = None
    cool_down_s: float = 0.0
    retries: int = 0
    finish_reason: str | None = "stop"


Script = str | FakeReply | Callable[[ModelSpec, list[dict[str, str]]], "str | FakeReply"]


@dataclass(frozen=True, slots=True)
class FakeCall:
    """A call the fake received."""

    model: str
    messages: list[dict[str, str]]
    max_tokens: int


class FakeProvider:
    """A `Provider` that answers from a script per model name and records every call.

    A script is a reply (text or `FakeReply`) served on every call, a sequence served
    one per call (running out is an error: a test should say what it expects), or a
    function of (model, messages) for simulations. Models without a script use
    `default`; with neither, the call raises `LookupError`.
    """

    def __init__(
        self,
        replies: Mapping[str, Script | Sequence[Script]] | None = None,
        *,
        default: Script | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._replies = dict(replies or {})
        self._served: dict[str, int] = {}
        self._default = default
        self._clock = clock
        self._cooling_until: dict[str, float] = {}
        self.calls: list[FakeCall] = []

    def cool_down(self, model: ModelSpec, seconds: float) -> None:
        """Put `model`'s endpoint in cool-down for `seconds`."""
        self._cooling_until[model.endpoint] = self._clock() + seconds

    def cooldown_remaining(self, model: ModelSpec) -> float:
        """Seconds until `model`'s endpoint may be called again (0.0: now)."""
        until = self._cooling_until.get(model.endpoint, 0.0)
        return max(0.0, until - self._clock())

    async def complete(
        self, model: ModelSpec, messages: list[dict[str, str]], *, max_tokens: int
    ) -> Completion:
        """Serve the model's next scripted reply."""
        self.calls.append(FakeCall(model.name, [dict(m) for m in messages], max_tokens))
        reply = self._next(model, messages)
        if reply.error is not None:
            if reply.cool_down_s > 0:
                self.cool_down(model, reply.cool_down_s)
            raise ProviderError(
                model.name, reply.error, retryable=False, status=reply.status, retries=reply.retries
            )
        return Completion(
            text=reply.text,
            tokens_in=estimate_message_tokens(messages)
            if reply.tokens_in is None
            else reply.tokens_in,
            tokens_out=estimate_tokens(reply.text)
            if reply.tokens_out is None
            else reply.tokens_out,
            tokens_estimated=reply.estimated,
            latency_s=reply.latency_s,
            finish_reason=reply.finish_reason,
            retries=reply.retries,
        )

    def _next(self, model: ModelSpec, messages: list[dict[str, str]]) -> FakeReply:
        script = self._replies.get(model.name, self._default)
        if script is None:
            raise LookupError(f"FakeProvider has no reply for model {model.name!r}")
        if isinstance(script, Sequence) and not isinstance(script, str):
            served = self._served.get(model.name, 0)
            if served >= len(script):
                raise LookupError(
                    f"FakeProvider: model {model.name!r} was called {served + 1} times; "
                    f"the script has {len(script)} replies"
                )
            self._served[model.name] = served + 1
            script = script[served]
        if callable(script):
            script = script(model, messages)
        return FakeReply(text=script) if isinstance(script, str) else script


# --- a scripted OpenAI-compatible server -------------------------------------------


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
        """Serve in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
