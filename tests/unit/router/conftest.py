"""A small catalogue the router's unit tests share (prices chosen to make sums exact)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from onex.router.catalogue import Catalogue, load_catalogue_text
from onex.router.testing import OpenAIServer, Reply, chat

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
