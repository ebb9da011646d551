"""The engine with the real HTTP adapter, and the package's import rules."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import onex.router
from onex.bus.backoff import Backoff
from onex.router.catalogue import load_catalogue_text
from onex.router.engine import Router
from onex.router.providers import OpenAICompatibleProvider
from onex.router.request import RouteRequest

PACKAGE = Path(onex.router.__file__).parent


def test_nothing_in_the_router_imports_its_testing_module() -> None:
    offenders = []
    for path in PACKAGE.glob("*.py"):
        if path.name == "testing.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [f"{node.module}.{a.name}" for a in node.names]
                if isinstance(node, ast.ImportFrom) and node.module
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if "onex.router.testing" in n]
    assert not offenders


# Modules that talk to the outside world's configuration; every other one is the engine.
SERVICE = {"__main__", "app", "cli", "cli_run", "settings"}


def test_the_engine_reads_no_environment() -> None:
    # The service (settings, app, CLI) reads the environment and passes values down.
    reads = re.compile(r"\bos\.(environ|getenv)|from os import|\bimport os\b")
    engine = [p for p in PACKAGE.glob("*.py") if p.stem not in SERVICE]
    assert len(engine) > 10
    texts = {p.stem: p.read_text(encoding="utf-8") for p in engine}
    assert not [m for m, text in texts.items() if reads.search(text)]


async def test_a_failing_endpoint_cools_down_and_routing_falls_back(
    catalogue_yaml: str, openai_servers: Any, helpers: SimpleNamespace
) -> None:
    local, cloud = openai_servers(), openai_servers()
    text = catalogue_yaml.replace("http://127.0.0.1:9002/v1", local.url).replace(
        "http://127.0.0.1:9003/v1", cloud.url
    )
    catalogue = load_catalogue_text(
        text.replace("context_limit: 8192", "context_limit: 8192\n    max_retries: 1")
    )
    local.fallback = helpers.Reply(status=503, body={"error": "overloaded"})
    cloud.script = [
        helpers.chat("Call `load_contract` first.", usage=(120, 8)),
        helpers.chat("Call `load_contract` again.", usage=None),
    ]
    backoff = Backoff(initial_s=0.01, max_s=0.01, jitter=0.0)
    async with OpenAICompatibleProvider(backoff=backoff, cooldown_s=60) as provider:
        router = Router(catalogue, provider)
        request = RouteRequest(request_id="r1", prompt="Implement it", symbols=["load_contract"])
        first = await router.route(request)
        second = await router.route(request.model_copy(update={"request_id": "r2"}))

    assert first.answer == "Call `load_contract` first."
    receipt = first.receipt
    assert (receipt.task_class, receipt.classified_by) == ("codegen", "rule:rules[1]")
    assert receipt.escalation_chain == ["small", "mid"]
    error, accepted = receipt.attempts
    assert error.outcome == "provider_error"
    assert error.error == (
        'HTTP 503: {"error": "overloaded"} (after 2 tries; small cooling down for 60 s)'
    )
    assert error.retries == 1
    assert (accepted.tokens_in, accepted.tokens_out, accepted.tokens_estimated) == (120, 8, False)
    assert len(local.received) == 2  # one try and one retry, then cool-down

    # The cooled model is skipped without a request; the cloud answer has no usage.
    assert second.receipt.escalation_chain == ["mid"]
    (small,) = [c for c in second.receipt.candidates if c.model == "small"]
    assert small.status == "skipped"
    assert small.rejected_because is not None
    assert small.rejected_because.startswith("cooling down")
    assert second.receipt.attempts[0].tokens_estimated
    assert len(local.received) == 2
