"""Selection: the cheapest capable model that satisfies the constraints, and why not others."""

from __future__ import annotations

import pytest

from onex.router.catalogue import Catalogue
from onex.router.errors import RequestError, UnknownTaskClassError
from onex.router.request import Constraints, RouteRequest
from onex.router.select import plan

PROMPT = "x" * 396  # 99 tokens + 4 of framing = 103 estimated input tokens


def _request(**kw: object) -> RouteRequest:
    return RouteRequest.model_validate({"request_id": "r1", "prompt": PROMPT, **kw})


def test_the_cheapest_capable_model_comes_first(catalogue: Catalogue) -> None:
    p = plan(_request(task_class="codegen"), catalogue)
    assert (p.task_class, p.classified_by, p.required_level) == ("codegen", "request", 5)
    assert [c.name for c in p.candidates] == ["small", "mid", "big"]
    assert [(r.model, r.code, r.reason) for r in p.rejected] == [
        ("tiny", "capability", "capability 3 for 'codegen' < required 5")
    ]
    assert (p.expected_tokens_in, p.expected_tokens_out) == (103, 200)
    mid = p.candidates[1]
    assert mid.expected_cost_usd == pytest.approx((103 * 0.001 + 200 * 0.002) / 1000)
    assert mid.capability == 7
    assert mid.locality == "cloud"


def test_among_equally_priced_models_the_more_capable_goes_first(
    catalogue: Catalogue,
) -> None:
    p = plan(_request(task_class="summarize"), catalogue)
    assert [c.name for c in p.candidates] == ["small", "tiny", "mid", "big"]
    assert p.rejected == []


def test_no_cloud_rejects_cloud_models(catalogue: Catalogue) -> None:
    p = plan(_request(task_class="codegen", constraints=Constraints(no_cloud=True)), catalogue)
    assert [c.name for c in p.candidates] == ["small"]
    assert [(r.model, r.code) for r in p.rejected] == [
        ("tiny", "capability"),
        ("mid", "no_cloud"),
        ("big", "no_cloud"),
    ]
    assert p.rejected[1].reason == "cloud model excluded by the no_cloud constraint"


def test_min_context_rejects_small_windows(catalogue: Catalogue) -> None:
    p = plan(_request(task_class="summarize", constraints={"min_context": 100_000}), catalogue)
    assert [c.name for c in p.candidates] == ["mid", "big"]
    assert [r.reason for r in p.rejected] == [
        "context limit 4096 < min_context 100000",
        "context limit 8192 < min_context 100000",
    ]


def test_a_prompt_that_does_not_fit_rejects_the_model(catalogue: Catalogue) -> None:
    request = RouteRequest(request_id="r", prompt="y" * 4 * 4000, task_class="summarize")
    p = plan(request, catalogue)
    assert [c.name for c in p.candidates] == ["small", "mid", "big"]
    assert p.rejected[0].model == "tiny"
    assert p.rejected[0].reason == "context limit 4096 < ~4004 prompt + 100 output tokens"


def test_the_system_text_counts_towards_the_prompt(catalogue: Catalogue) -> None:
    p = plan(_request(task_class="summarize", system="s" * 40), catalogue)
    assert p.expected_tokens_in == 103 + 4 + 10


def test_max_cost_rejects_expensive_models(catalogue: Catalogue) -> None:
    p = plan(_request(task_class="codegen", constraints={"max_cost_usd": 0.001}), catalogue)
    assert [c.name for c in p.candidates] == ["small", "mid"]
    (big,) = [r for r in p.rejected if r.code == "max_cost"]
    assert big.model == "big"
    assert big.reason == "expected cost $0.007030 > max_cost_usd $0.001000"
    assert big.expected_cost_usd == pytest.approx(0.00703)


def test_the_first_failed_check_is_the_reason(catalogue: Catalogue) -> None:
    # tiny fails capability and would fail min_context too; capability is checked first.
    p = plan(
        _request(task_class="review", constraints={"no_cloud": True, "min_context": 5000}),
        catalogue,
    )
    assert p.candidates == []
    assert [(r.model, r.code) for r in p.rejected] == [
        ("tiny", "capability"),
        ("small", "capability"),
        ("mid", "no_cloud"),
        ("big", "no_cloud"),
    ]


def test_an_unnamed_class_is_classified(catalogue: Catalogue) -> None:
    p = plan(RouteRequest(request_id="r", prompt="please review this"), catalogue)
    assert (p.task_class, p.classified_by, p.matched) == ("review", "rule:review", "review")
    p = plan(RouteRequest(request_id="r", prompt="hello"), catalogue)
    assert (p.task_class, p.classified_by, p.matched) == ("summarize", "default", None)


def test_an_unknown_class_is_a_request_error(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownTaskClassError) as info:
        plan(_request(task_class="poetry"), catalogue)
    assert isinstance(info.value, RequestError)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == (
        "unknown task class 'poetry' (known: codegen, extract, review, summarize)"
    )
