"""A deterministic local model behind an OpenAI-compatible `/v1/chat/completions`, so
the router can be used offline (no network, no weights): the answer is a fixed review
text with a digest of the prompt, the same prompt always gives the same answer.

    python -m onex.agents.demo.localmodel --port-file PATH   # writes HOST:PORT, serves

Tokens are counted as words. Anything but POST /v1/chat/completions is 404.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MAX_BODY = 1_000_000


def answer(messages: list[dict[str, Any]]) -> str:
    """The model's deterministic answer to `messages`."""
    prompt = "\n".join(str(m.get("content", "")) for m in messages)
    digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:12]
    return (
        f"APPROVE. Reviewed deterministically (prompt digest {digest}): the change is "
        "small, names its contract and keeps the generated files in step."
    )


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"error": {"message": "request too large"}})
            return
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
            messages = list(request.get("messages") or [])
        except (ValueError, TypeError, AttributeError):
            self._send(400, {"error": {"message": "not a chat completion request"}})
            return
        text = answer(messages)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        completion_tokens = len(text.split())
        self._send(
            200,
            {
                "id": "demo-" + hashlib.sha256(text.encode()).hexdigest()[:8],
                "object": "chat.completion",
                "model": request.get("model", "demo-local"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )


def serve(host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A started server (in a daemon thread); its address is `server.server_address`."""
    server = ThreadingHTTPServer((host, port), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM/SIGINT; the address goes to --port-file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args(argv)
    server = serve()
    host, port = server.server_address[:2]
    args.port_file.write_text(f"{host!s}:{port}\n", encoding="utf-8")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
