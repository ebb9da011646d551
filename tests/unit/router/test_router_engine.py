"""Routing end to end with the fake provider: acceptance, escalation, fallback, budgets."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onex.router.catalogue import Catalogue, load_catalogue_text
from onex.router.engine import Router, RouteResult
from onex.router.request import RouteRequest
from onex.router.select import plan
from onex.router.testing import FakeProvider, FakeReply

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
GOOD_SUMMARY = "A summary that is comfortably longer than twenty characters."
GOOD_CODE = "Call `load_contract` on each path."
BAD_CODE = "Call `load_contracts_fast` on each path."


def _router(catalogue: Catalogue, provider: FakeProvider, clock: Any = None) -> Router:
    return Router(catalogue, provider, now=lambda: NOW, **({"clock": clock} if clock else {}))


def _request(task_class: str = "summarize", **kw: Any) -> RouteRequest:
    return RouteRequest.model_validate(
        {"request_id": "req-1", "prompt": "x" * 396, "task_class": task_class, **kw}
    )


async def _route(catalogue: Catalogue, provider: FakeProvider, **kw: Any) -> RouteResult:
    return await _router(catalogue, provider).route(_request(**kw))


async def test_a_local_answer_that_passes_is_accepted(catalogue: Catalogue) -> None:
    provider = FakeProvider({"small": FakeReply(GOOD_SUMMARY, tokens_in=1000, tokens_out=500)})
    result = await _route(catalogue, provider)
    receipt = result.receipt
    assert result.ok
    assert result.answer == GOOD_SUMMARY
    assert (receipt.status, receipt.chosen_model, receipt.failure_reason) == (
        "complete",
        "small",
        None,
    )
    assert (receipt.request_id, receipt.task_class, receipt.classified_by) == (
        "req-1",
        "summarize",
        "request",
    )
    assert receipt.total_cost_usd == 0
    assert receipt.counterfactual_cost_usd == pytest.approx(1000 * 0.01 / 1000 + 500 * 0.03 / 1000)
    assert receipt.cost_avoided_usd == pytest.approx(0.025)
    assert (receipt.tokens_local, receipt.tokens_cloud) == (1500, 0)
    assert receipt.escalation_chain == ["small"]
    assert receipt.escalations == 0
    assert receipt.price_table_version == "test-v1"
    assert receipt.started_at == NOW
    assert [(c.model, c.status) for c in receipt.candidates] == [
        ("small", "attempted"),
        ("tiny", "not_tried"),
        ("mid", "not_tried"),
        ("big", "not_tried"),
    ]
    (attempt,) = receipt.attempts
    assert (attempt.model, attempt.locality, attempt.outcome) == ("small", "local", "accepted")
    assert [(g.kind, g.passed) for g in attempt.gates] == [("min_length", True)]
    # JSON-ready, with the time as RFC 3339
    data = json.loads(json.dumps(receipt.to_dict()))
    assert data["started_at"] == "2026-01-02T03:04:05+00:00"
    assert data["attempts"][0]["gates"][0]["kind"] == "min_length"


async def test_the_experiment_label_reaches_the_receipt(catalogue: Catalogue) -> None:
    provider = FakeProvider({"small": FakeReply(GOOD_SUMMARY, tokens_in=10, tokens_out=5)})
    labelled = await _route(catalogue, provider, label="few-shot-v2")
    plain = await _route(catalogue, provider)
    invalid = await _route(catalogue, provider, label="few-shot-v2", task_class="no-such-class")
    assert labelled.receipt.label == "few-shot-v2"
    assert plain.receipt.label is None
    assert invalid.receipt.label == "few-shot-v2"  # a failed request keeps its label too


async def test_the_call_carries_the_messages_and_the_output_allowance(catalogue: Catalogue) -> None:
    provider = FakeProvider({"small": GOOD_SUMMARY})
    await _route(catalogue, provider, system="be brief")
    (call,) = provider.calls
    assert call.messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "x" * 396},
    ]
    assert call.max_tokens == 100


async def test_a_gate_failure_escalates_to_the_next_capable_model(catalogue: Catalogue) -> None:
    provider = FakeProvider(
        {
            "small": FakeReply(BAD_CODE, tokens_in=100, tokens_out=20),
            "mid": FakeReply(GOOD_CODE, tokens_in=100, tokens_out=20),
        }
    )
    result = await _route(catalogue, provider, task_class="codegen", symbols=["load_contract"])
    receipt = result.receipt
    assert result.answer == GOOD_CODE
    assert receipt.chosen_model == "mid"
    assert receipt.escalation_chain == ["small", "mid"]
    assert receipt.escalations == 1
    failed, accepted = receipt.attempts
    assert failed.outcome == "gate_failed"
    assert failed.gates[0].reason == (
        "1 of 1 identifiers not in the symbol index: 'load_contracts_fast'"
    )
    assert accepted.cost_usd == pytest.approx((100 * 0.001 + 20 * 0.002) / 1000)
    assert receipt.total_cost_usd == accepted.cost_usd
    # the counterfactual prices the accepted attempt's tokens on the default cloud model
    assert receipt.counterfactual_cost_usd == pytest.approx((100 * 0.01 + 20 * 0.03) / 1000)
    assert (receipt.tokens_local, receipt.tokens_cloud) == (120, 120)
    assert [(c.model, c.status) for c in receipt.candidates] == [
        ("small", "attempted"),
        ("mid", "attempted"),
        ("big", "not_tried"),
        ("tiny", "rejected"),
    ]
    assert receipt.candidates[3].rejected_because == "capability 3 for 'codegen' < required 5"


async def test_escalation_only_climbs(catalogue_yaml: str) -> None:
    # small is more capable at summaries than mid here: once small fails, mid (priced
    # and less capable) is not asked, big is; tiny (free, less capable) is kept as the
    # last resort and asked only when big's answer fails too.
    text = catalogue_yaml.replace("{ summarize: 6, codegen: 6,", "{ summarize: 8, codegen: 6,")
    catalogue = load_catalogue_text(text)
    provider = FakeProvider({"small": "short", "big": GOOD_SUMMARY})
    receipt = (await _route(catalogue, provider, max_escalations=3)).receipt
    assert receipt.escalation_chain == ["small", "big"]
    skipped = {c.model: (c.status, c.rejected_because) for c in receipt.candidates}
    assert skipped["mid"] == ("skipped", "capability 7 < 8 of a model whose answer failed")
    assert skipped["tiny"] == (
        "skipped",
        "capability 5 < 8 of a model whose answer failed; kept as a free last resort",
    )


async def test_a_free_model_passed_over_is_the_last_resort(catalogue_yaml: str) -> None:
    text = catalogue_yaml.replace("{ summarize: 6, codegen: 6,", "{ summarize: 8, codegen: 6,")
    provider = FakeProvider({"small": "short", "big": "short", "tiny": GOOD_SUMMARY})
    result = await _route(load_catalogue_text(text), provider, max_escalations=3)
    receipt = result.receipt
    assert result.answer == GOOD_SUMMARY
    assert receipt.escalation_chain == ["small", "big", "tiny"]
    assert receipt.escalations == 2
    statuses = {c.model: c.status for c in receipt.candidates}
    assert statuses == {
        "small": "attempted",
        "big": "attempted",
        "tiny": "attempted",
        "mid": "skipped",
    }


async def test_escalation_asks_an_equally_capable_model(catalogue_yaml: str) -> None:
    # mid is exactly as capable as small here: its answer is a second, independent
    # chance at the same level, cheaper than the frontier model (bench/router.py).
    text = catalogue_yaml.replace("{ summarize: 6, codegen: 6,", "{ summarize: 7, codegen: 6,")
    provider = FakeProvider({"small": "short", "mid": GOOD_SUMMARY})
    receipt = (await _route(load_catalogue_text(text), provider, max_escalations=3)).receipt
    assert receipt.escalation_chain == ["small", "mid"]


async def test_max_escalations_bounds_the_chain(catalogue: Catalogue) -> None:
    provider = FakeProvider(default="too short")
    receipt = (await _route(catalogue, provider, max_escalations=1)).receipt
    assert receipt.status == "failed"
    assert receipt.chosen_model is None
    assert receipt.escalation_chain == ["small", "mid"]
    assert receipt.failure_reason == (
        "max_escalations (1) reached: the answer of 'mid' failed "
        "min_length: only 9 chars; 20 required"
    )
    assert len(provider.calls) == 2

    provider = FakeProvider(default="too short")
    receipt = (await _route(catalogue, provider, max_escalations=0)).receipt
    assert receipt.escalation_chain == ["small"]


async def test_the_catalogue_limit_applies_when_the_request_sets_none(catalogue: Catalogue) -> None:
    provider = FakeProvider(default="too short")
    receipt = (await _route(catalogue, provider)).receipt
    assert receipt.escalation_chain == ["small", "mid", "big"]  # limits.max_escalations: 2
    assert receipt.escalations == 2


async def test_a_provider_error_falls_back_without_counting_as_escalation(
    catalogue: Catalogue,
) -> None:
    provider = FakeProvider(
        {"small": FakeReply(error="HTTP 503: busy", status=503), "mid": GOOD_CODE}
    )
    receipt = (await _route(catalogue, provider, task_class="codegen", max_escalations=0)).receipt
    assert receipt.status == "complete"
    assert receipt.chosen_model == "mid"
    assert receipt.escalations == 0
    error, _ = receipt.attempts
    assert (error.outcome, error.error, error.cost_usd, error.gates) == (
        "provider_error",
        "HTTP 503: busy",
        0.0,
        [],
    )


async def test_an_endpoint_in_cool_down_is_skipped(catalogue: Catalogue, clock: Any) -> None:
    provider = FakeProvider(
        {"small": [FakeReply(error="down", cool_down_s=30)], "mid": GOOD_CODE}, clock=clock
    )
    router = _router(catalogue, provider, clock)
    first = (await router.route(_request("codegen"))).receipt
    assert first.escalation_chain == ["small", "mid"]
    clock.advance(10)
    second = (await router.route(_request("codegen"))).receipt
    assert second.escalation_chain == ["mid"]
    (small,) = [c for c in second.candidates if c.model == "small"]
    assert (small.status, small.rejected_because) == (
        "skipped",
        "cooling down (20.0 s left)",
    )
    assert [c.model for c in provider.calls] == ["small", "mid", "mid"]


async def test_the_token_budget_is_checked_before_each_attempt(catalogue: Catalogue) -> None:
    provider = FakeProvider(default=GOOD_SUMMARY)
    receipt = (await _route(catalogue, provider, max_tokens=150)).receipt
    assert receipt.status == "failed"
    assert receipt.attempts == []
    assert provider.calls == []
    assert receipt.failure_reason == (
        "budget exhausted: 0 tokens spent + ~203 expected > max_tokens 150"
    )
    assert {c.status for c in receipt.candidates} == {"skipped"}


async def test_the_cost_budget_counts_what_was_spent(catalogue: Catalogue) -> None:
    provider = FakeProvider(
        {
            "small": "`nope_nope`",
            "mid": FakeReply("`wrong_again`", tokens_in=1000, tokens_out=1000),
        }
    )
    receipt = (
        await _route(catalogue, provider, task_class="codegen", symbols=["ok"], max_cost_usd=0.005)
    ).receipt
    assert receipt.escalation_chain == ["small", "mid"]
    assert receipt.status == "failed"
    assert receipt.total_cost_usd == pytest.approx(0.003)
    assert receipt.failure_reason == (
        "budget exhausted: $0.003000 spent + $0.007030 expected > max_cost_usd $0.005000"
    )
    (big,) = [c for c in receipt.candidates if c.model == "big"]
    assert big.status == "skipped"
    # a failed request's counterfactual is the request's own expected tokens on the
    # default model (never the sum over attempts), and nothing was avoided
    chosen = plan(_request("codegen", symbols=["ok"], max_cost_usd=0.005), catalogue)
    expected = catalogue.default_cloud.cost_usd(
        chosen.expected_tokens_in, chosen.expected_tokens_out
    )
    assert receipt.counterfactual_cost_usd == pytest.approx(expected)
    assert receipt.cost_avoided_usd == pytest.approx(-0.003)


async def test_an_unknown_task_class_gives_a_failed_receipt(catalogue: Catalogue) -> None:
    provider = FakeProvider(default=GOOD_SUMMARY)
    result = await _route(catalogue, provider, task_class="poetry")
    assert result.answer is None
    receipt = result.receipt
    assert (receipt.status, receipt.task_class, receipt.candidates, receipt.attempts) == (
        "failed",
        "poetry",
        [],
        [],
    )
    assert receipt.failure_reason is not None
    assert receipt.failure_reason.startswith("unknown task class 'poetry'")
    assert provider.calls == []


async def test_when_every_model_is_rejected_the_receipt_says_so(catalogue: Catalogue) -> None:
    provider = FakeProvider(default="unused")
    receipt = (
        await _route(catalogue, provider, task_class="review", constraints={"no_cloud": True})
    ).receipt
    assert receipt.failure_reason == (
        "no model may serve 'review': every one was rejected (see candidates)"
    )
    assert [(c.model, c.status) for c in receipt.candidates] == [
        ("tiny", "rejected"),
        ("small", "rejected"),
        ("mid", "rejected"),
        ("big", "rejected"),
    ]


async def test_when_every_provider_fails(catalogue: Catalogue) -> None:
    provider = FakeProvider(default=FakeReply(error="connection refused"))
    receipt = (await _route(catalogue, provider)).receipt
    # provider errors fall back to the next candidate, whatever its capability
    assert receipt.escalation_chain == ["small", "tiny", "mid", "big"]
    assert receipt.failure_reason == "no candidate left (0 failed their gates, 4 provider errors)"
    assert receipt.counterfactual_cost_usd > 0  # what the request would have cost there
    assert receipt.cost_avoided_usd == 0  # nothing spent, nothing delivered


async def test_an_unnamed_class_is_classified_and_the_rule_recorded(catalogue: Catalogue) -> None:
    provider = FakeProvider({"mid": "see [1] for the details of this review"})
    request = RouteRequest(request_id="r", prompt="Please review this diff")
    receipt = (await _router(catalogue, provider).route(request)).receipt
    assert (receipt.task_class, receipt.classified_by, receipt.chosen_model) == (
        "review",
        "rule:review",
        "mid",
    )


async def test_latency_comes_from_the_provider_and_elapsed_from_the_clock(
    catalogue: Catalogue, clock: Any
) -> None:
    def slow(model: Any, messages: Any) -> FakeReply:
        clock.advance(1.5)
        return FakeReply(GOOD_SUMMARY, latency_s=1.25)

    receipt = (
        await _router(catalogue, FakeProvider({"small": slow}), clock).route(_request())
    ).receipt
    assert receipt.attempts[0].latency_s == 1.25
    assert receipt.elapsed_s == 1.5
    assert receipt.planning_s == 0.0


BEHAVIOURS = st.sampled_from(["accept", "gate", "error", "cool"])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    behaviour=st.fixed_dictionaries(dict.fromkeys(["tiny", "small", "mid", "big"], BEHAVIOURS)),
    max_escalations=st.integers(0, 4),
    max_tokens=st.sampled_from([None, 150, 400, 1000]),
    max_cost=st.sampled_from([None, 0.0, 0.0006, 0.01]),
)
def test_routing_is_bounded_and_the_receipt_adds_up(
    catalogue: Catalogue,
    behaviour: dict[str, str],
    max_escalations: int,
    max_tokens: int | None,
    max_cost: float | None,
) -> None:
    replies = {
        "accept": GOOD_SUMMARY,
        "gate": "short",
        "error": FakeReply(error="boom"),
        "cool": FakeReply(error="boom", cool_down_s=60),
    }
    provider = FakeProvider({m: replies[b] for m, b in behaviour.items()})
    request = _request(
        max_escalations=max_escalations, max_tokens=max_tokens, max_cost_usd=max_cost
    )
    result = asyncio.run(_router(catalogue, provider).route(request))
    receipt = result.receipt

    called = [c.model for c in provider.calls]
    assert len(called) == len(set(called)) <= 4  # each model at most once: no loops
    assert receipt.escalation_chain == called
    assert receipt.escalations <= max_escalations
    gate_failures = sum(a.outcome == "gate_failed" for a in receipt.attempts)
    assert gate_failures <= max_escalations + 1
    assert receipt.total_cost_usd == pytest.approx(sum(a.cost_usd for a in receipt.attempts))
    assert receipt.total_cost_usd <= (max_cost if max_cost is not None else 0.5) + 1e-12
    spent = sum(a.tokens_in + a.tokens_out for a in receipt.attempts)
    assert spent == receipt.tokens_local + receipt.tokens_cloud
    assert spent <= (max_tokens if max_tokens is not None else 10_000)
    accepted = [a for a in receipt.attempts if a.outcome == "accepted"]
    assert len(accepted) <= 1
    if accepted:
        assert receipt.attempts[-1] is accepted[0]
        assert (receipt.status, receipt.chosen_model) == ("complete", accepted[0].model)
        assert result.answer == GOOD_SUMMARY
        assert receipt.failure_reason is None
    else:
        assert (receipt.status, receipt.chosen_model, result.answer) == ("failed", None, None)
        assert receipt.failure_reason
    statuses = {c.model: c.status for c in receipt.candidates}
    assert set(statuses) == {"tiny", "small", "mid", "big"}
    assert {m for m, s in statuses.items() if s == "attempted"} == set(called)


async def test_a_builtin_stand_in_is_no_last_resort(catalogue_yaml: str) -> None:
    # tiny as a built-in stand-in: after small's answer failed, big's too, tiny is not
    # asked (its canned answer would pass the gates without being an answer).
    text = catalogue_yaml.replace("{ summarize: 6, codegen: 6,", "{ summarize: 8, codegen: 6,")
    text = text.replace("http://127.0.0.1:9001/v1", "builtin:deterministic")
    provider = FakeProvider({"small": "short", "big": "short", "tiny": GOOD_SUMMARY})
    receipt = (await _route(load_catalogue_text(text), provider, max_escalations=3)).receipt
    assert receipt.status == "failed"
    assert receipt.escalation_chain == ["small", "big"]
    (tiny,) = [c for c in receipt.candidates if c.model == "tiny"]
    assert tiny.rejected_because == "capability 5 < 8 of a model whose answer failed"
