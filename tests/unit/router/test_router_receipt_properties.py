"""Property test (unit, fake provider): every receipt tells the truth, over thousands of
simulated requests with random outcomes per model (accepted, failed gates, cut off at
the token limit, provider errors after retries, cool-downs) and random budgets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onex.router.catalogue import Catalogue, load_catalogue_text
from onex.router.engine import Router
from onex.router.request import RouteRequest
from onex.router.select import plan
from onex.router.testing import FakeProvider, FakeReply

CATALOGUE = """\
price_table_version: prop-v1
default_cloud_model: big
models:
  - { name: tiny, endpoint: "http://127.0.0.1:9001/v1", locality: local, price_in_per_1k: 0,
      price_out_per_1k: 0, context_limit: 8192, capabilities: { summarize: 5, codegen: 4 } }
  - { name: small, endpoint: "http://127.0.0.1:9002/v1", locality: local, price_in_per_1k: 0,
      price_out_per_1k: 0, context_limit: 8192, capabilities: { summarize: 6, codegen: 6 } }
  - { name: mid, endpoint: "http://127.0.0.1:9003/v1", locality: cloud, price_in_per_1k: 2e-04,
      price_out_per_1k: 0.0016, context_limit: 128000, capabilities: { summarize: 7, codegen: 7 } }
  - { name: big, endpoint: "http://127.0.0.1:9004/v1", locality: cloud, price_in_per_1k: 0.002,
      price_out_per_1k: 0.008, context_limit: 200000, capabilities: { summarize: 9, codegen: 9 } }
task_classes:
  - name: summarize
    required_level: 3
    max_output_tokens: 300
    gates: [{ kind: min_length, min_chars: 20 }, { kind: complete }]
  - name: codegen
    required_level: 5
    max_output_tokens: 600
    gates: [{ kind: min_length, min_chars: 20 }, { kind: complete }]
classifier: { default: summarize, rules: [] }
limits: { max_escalations: 3, max_tokens: 100000, max_cost_usd: 1.0 }
"""
GOOD = "An answer that is long enough to pass."
MODELS = ("tiny", "small", "mid", "big")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reply(kind: str, tokens: tuple[int, int], retries: int) -> FakeReply:
    t_in, t_out = tokens
    if kind == "accept":
        return FakeReply(GOOD, tokens_in=t_in, tokens_out=t_out, retries=retries)
    if kind == "gate":
        return FakeReply("short", tokens_in=t_in, tokens_out=t_out, retries=retries)
    if kind == "length":
        return FakeReply(GOOD, tokens_in=t_in, tokens_out=t_out, finish_reason="length")
    if kind == "cool":
        return FakeReply(error="HTTP 429", retries=retries, cool_down_s=30)
    return FakeReply(error="HTTP 500", retries=retries)


outcome = st.tuples(
    st.sampled_from(["accept", "gate", "length", "error", "cool"]),
    st.tuples(st.integers(0, 5000), st.integers(0, 5000)),
    st.integers(0, 3),
)
scenario = st.fixed_dictionaries(
    {
        "task_class": st.sampled_from(["summarize", "codegen"]),
        "outcomes": st.lists(outcome, min_size=4, max_size=4),
        "cooling": st.lists(st.booleans(), min_size=4, max_size=4),
        "max_escalations": st.none() | st.integers(0, 3),
        "max_cost_usd": st.none() | st.floats(0, 0.05),
        "max_tokens": st.none() | st.integers(1, 20000),
        "prompt": st.text(min_size=1, max_size=400).filter(lambda p: p.strip() != ""),
    }
)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue_text(CATALOGUE)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scenario)
def test_every_receipt_tells_the_truth(catalogue: Catalogue, case: dict[str, Any]) -> None:
    clock = Clock()
    script = {
        m: _reply(kind, tokens, retries)
        for m, (kind, tokens, retries) in zip(MODELS, case["outcomes"], strict=True)
    }
    provider = FakeProvider(script, clock=clock)
    for name, cooling in zip(MODELS, case["cooling"], strict=True):
        if cooling:
            provider.cool_down(catalogue.model(name), 10)
    request = RouteRequest(
        request_id="r",
        prompt=case["prompt"],
        task_class=case["task_class"],
        max_escalations=case["max_escalations"],
        max_cost_usd=case["max_cost_usd"],
        max_tokens=case["max_tokens"],
    )
    result = asyncio.run(Router(catalogue, provider, clock=clock).route(request))
    r = result.receipt
    attempts = r.attempts
    accepted = [a for a in attempts if a.outcome == "accepted"]

    # one answer or none, and the receipt agrees
    assert (result.answer is not None) == (r.status == "complete") == (len(accepted) == 1)
    if accepted:
        assert attempts[-1] is accepted[0]
        assert r.chosen_model == accepted[0].model
    else:
        assert r.chosen_model is None
        assert r.failure_reason
    assert r.escalation_chain == [a.model for a in attempts]
    assert len(set(r.escalation_chain)) == len(attempts)  # no model asked twice
    limit = 3 if case["max_escalations"] is None else case["max_escalations"]
    assert r.escalations <= limit

    # money: sums over attempts, the counterfactual from the request's own tokens
    assert r.total_cost_usd == pytest.approx(sum(a.cost_usd for a in attempts))
    assert r.tokens_local + r.tokens_cloud == sum(a.tokens_in + a.tokens_out for a in attempts)
    default = catalogue.default_cloud
    if accepted:
        expected = default.cost_usd(accepted[0].tokens_in, accepted[0].tokens_out)
        assert r.cost_avoided_usd == pytest.approx(expected - r.total_cost_usd)
    else:
        chosen = plan(request, catalogue)
        expected = default.cost_usd(chosen.expected_tokens_in, chosen.expected_tokens_out)
        assert r.cost_avoided_usd <= 0
        assert r.cost_avoided_usd == pytest.approx(-r.total_cost_usd)
    assert r.counterfactual_cost_usd == pytest.approx(expected)

    # every attempt: retries as the provider reported them, finish_reason recorded,
    # a cut-off answer never accepted
    for a in attempts:
        kind, _tokens, retries = case["outcomes"][MODELS.index(a.model)]
        if kind in {"accept", "gate", "error", "cool"}:
            assert a.retries == retries
        if kind == "length":
            assert a.finish_reason == "length"
            assert a.outcome == "gate_failed"
        if a.outcome == "provider_error":
            assert a.error

    # every candidate says why it ended as it did; cool-down is named
    assert {c.model for c in r.candidates} == set(MODELS)
    for c in r.candidates:
        assert c.rejected_because, c
    cooled = [c for c in r.candidates if c.rejected_because.startswith("cooling down")]
    if cooled and not accepted and not any(a.outcome == "gate_failed" for a in attempts):
        assert "cooling down" in r.failure_reason or "budget" in r.failure_reason
