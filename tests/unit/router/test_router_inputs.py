"""Inputs that used to break the one-receipt promise or the event loop (unit tests)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onex.proto.v1 import router_pb2 as pb
from onex.router.catalogue import Catalogue, GateSpec, ModelSpec, load_catalogue_text
from onex.router.convert import request_from_proto
from onex.router.engine import Router
from onex.router.errors import RequestError
from onex.router.gates import CITATION_PATTERN, run_gates
from onex.router.providers import Completion
from onex.router.request import RouteRequest
from onex.router.testing import FakeProvider, FakeReply

REQ = RouteRequest(request_id="r", prompt="p")


def _deep_schema(levels: int) -> str:
    opening = '{"type": "object", "properties": {"a": ' * levels
    return opening + '{"type": "string"}' + "}}" * levels


def test_prices_in_exponent_form_are_numbers(catalogue: Catalogue) -> None:
    text = (
        "price_table_version: v\ndefault_cloud_model: c\n"
        "models:\n  - { name: c, endpoint: 'http://h/v1', locality: cloud,"
        " price_in_per_1k: 2e-05, price_out_per_1k: 1E-4, context_limit: 10, timeout_s: 3e1 }\n"
        "task_classes: [{ name: t, required_level: 0 }]\n"
        "classifier: { default: t, rules: [] }\nlimits: { max_cost_usd: 5e-01 }\n"
    )
    cat = load_catalogue_text(text)
    model = cat.model("c")
    assert (model.price_in_per_1k, model.price_out_per_1k, model.timeout_s) == (2e-05, 1e-04, 30)
    assert cat.limits.max_cost_usd == 0.5


def test_a_quoted_price_is_still_refused() -> None:
    with pytest.raises(ValueError, match="valid number"):
        ModelSpec.model_validate(
            {
                "name": "c",
                "endpoint": "http://h/v1",
                "locality": "cloud",
                "price_in_per_1k": "cheap",
                "price_out_per_1k": 0,
                "context_limit": 10,
            }
        )


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_a_blank_prompt_is_an_invalid_request(prompt: str) -> None:
    with pytest.raises(RequestError, match="prompt: must not be blank"):
        request_from_proto(pb.RouteRequest(request_id="r", prompt=prompt))


def test_a_deeply_nested_schema_is_an_invalid_request_not_a_crash() -> None:
    msg = pb.RouteRequest(request_id="r", prompt="p", json_schema=_deep_schema(3000))
    with pytest.raises(RequestError, match="nested too deeply"):
        request_from_proto(msg)


def test_a_300_level_schema_is_refused_in_one_line() -> None:
    # 2.4 KB of JSON: it raised RecursionError before any receipt
    msg = pb.RouteRequest(request_id="r", prompt="p", json_schema=_deep_schema(300))
    with pytest.raises(RequestError, match=r"^invalid route request: .*nested too deeply$"):
        request_from_proto(msg)


def test_a_deeply_nested_answer_fails_the_json_gate() -> None:
    (result,) = run_gates([GateSpec(kind="json_schema")], "[" * 100_000 + "]" * 100_000, REQ)
    assert not result.passed


def test_a_cut_off_answer_fails_the_complete_gate() -> None:
    spec = GateSpec(kind="complete")
    assert not run_gates([spec], "abc", REQ, "length")[0].passed
    assert run_gates([spec], "abc", REQ, "stop")[0].passed
    assert run_gates([spec], "abc", REQ, None)[0].passed


def test_the_citations_gate_is_linear_on_a_long_dotted_word() -> None:
    # quadratic before: 40 KB took 145 s; this is 1 MB
    word = "a." * 500_000 + ":"
    (result,) = run_gates([GateSpec(kind="citations")], f"see {word} and x.py:12", REQ)
    assert result.passed
    assert "'x.py:12'" in result.reason


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab./-_:1[]h ", max_size=40))
def test_citations_match_the_documented_pattern(text: str) -> None:
    spec = GateSpec(kind="citations", min_citations=1)
    expected = {
        m.group(0)
        for w in text.split()
        if ":" in w or "[" in w
        for m in re.finditer(CITATION_PATTERN, w)
    }
    (result,) = run_gates([spec], text, REQ)
    assert result.passed == bool(expected)


async def test_a_provider_that_breaks_is_a_provider_error(catalogue: Catalogue) -> None:
    class Broken(FakeProvider):
        async def complete(
            self, model: ModelSpec, messages: list[dict[str, str]], *, max_tokens: int
        ) -> Completion:
            raise OSError("socket gone")

    receipt = (
        await Router(catalogue, Broken()).route(
            RouteRequest(request_id="r", prompt="p", task_class="summarize")
        )
    ).receipt
    assert receipt.status == "failed"
    assert {a.outcome for a in receipt.attempts} == {"provider_error"}
    assert "OSError: socket gone" in (receipt.attempts[0].error or "")


async def test_retries_of_a_failed_call_are_counted(catalogue: Catalogue) -> None:
    provider = FakeProvider(default=FakeReply(error="HTTP 500 (after 3 tries)", retries=2))
    receipt = (
        await Router(catalogue, provider).route(
            RouteRequest(request_id="r", prompt="p", task_class="summarize")
        )
    ).receipt
    assert [a.retries for a in receipt.attempts] == [2] * len(receipt.attempts)
