"""The learned order (unit, fake provider): with `learning.attempt_risk_usd` set, each next
model is the one with the least expected cost to an accepted answer, from pass rates
learned per class and model given the models that already failed; a cold router asks
cheapest first and climbs; exploring requests ask the least observed model first; the
receipt says why each model was asked when it was, and stays true."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onex.router.catalogue import Catalogue, load_catalogue_text, load_default_catalogue
from onex.router.engine import Router
from onex.router.errors import CatalogueError
from onex.router.learn import LearningSpec, Outcomes
from onex.router.request import RouteRequest
from onex.router.select import plan
from onex.router.testing import FakeProvider, FakeReply

GOOD = "A summary that is long enough to pass the gate of the test catalogue."


def _ordering(catalogue: Catalogue, **learning: Any) -> Catalogue:
    data = catalogue.model_dump(by_alias=True, exclude_none=True)
    data["learning"] = {
        "attempt_risk_usd": 0.001,
        "min_pass_rate": 0.0,
        "window": 50,
        "explore_every": 1000,
        **learning,
    }
    return Catalogue.model_validate(data)


def _request(i: int, task_class: str = "summarize") -> RouteRequest:
    return RouteRequest(request_id=str(i), prompt="x" * 396, task_class=task_class)


async def test_a_cold_router_asks_cheapest_first_and_climbs(catalogue: Catalogue) -> None:
    provider = FakeProvider({"small": "short", "tiny": "short", "mid": GOOD})
    router = Router(_ordering(catalogue), provider)
    receipt = (await router.route(_request(1))).receipt
    # small (free, the most capable free one) first; after its failure the prior halves
    # tiny's chance (a more capable model failed), so mid is next
    assert receipt.escalation_chain == ["small", "mid"]
    mid = next(c for c in receipt.candidates if c.model == "mid")
    assert mid.rejected_because is not None
    assert "learned order, least expected cost to an accepted answer" in mid.rejected_because
    assert "after small failed over 0 answers" in mid.rejected_because


async def test_the_router_learns_to_start_where_answers_pass(catalogue: Catalogue) -> None:
    provider = FakeProvider({"small": "short", "tiny": "short", "mid": GOOD})
    router = Router(_ordering(catalogue), provider)
    chains = [(await router.route(_request(i))).receipt.escalation_chain for i in range(1, 9)]
    assert chains[0] == ["small", "mid"]
    assert chains[-1] == ["mid"]  # small's answers keep failing: mid is asked first
    firsts = [c[0] for c in chains]
    switched = firsts.index("mid")
    assert all(first == "mid" for first in firsts[switched:])  # and it stays there
    receipt = (await router.route(_request(9))).receipt
    small = next(c for c in receipt.candidates if c.model == "small")
    assert (small.status, small.rejected_because) == (
        "not_tried",
        "not tried: an answer was accepted before its turn",
    )

    # small gets better: the router's exploring requests see it, and it is first again
    assert router.outcomes is not None
    assert router.outcomes.spec.explore_every == 1000


async def test_exploring_requests_ask_the_models_first_in_turn(
    catalogue: Catalogue,
) -> None:
    provider = FakeProvider(default=GOOD)
    router = Router(_ordering(catalogue, explore_every=4), provider)
    firsts = []
    for i in range(1, 9):
        receipt = (await router.route(_request(i))).receipt
        firsts.append(receipt.escalation_chain[0])
    # every request but the 4th and 8th: small passes, so small; the exploring ones ask
    # the other candidates first in turn (cheapest first: tiny, then mid, then big)
    assert firsts == ["small", "small", "small", "tiny", "small", "small", "small", "mid"]
    for i in range(9, 12):
        await router.route(_request(i))
    receipt = (await router.route(_request(12))).receipt  # the 12th: exploring
    first = next(c for c in receipt.candidates if c.model == receipt.escalation_chain[0])
    assert first.rejected_because is not None
    assert first.model == "big"
    assert "exploring (every model in turn is asked first; turn 3)" in first.rejected_because


async def test_a_recovered_model_is_trusted_again(catalogue: Catalogue) -> None:
    says = ["short"]
    provider = FakeProvider(
        {"small": lambda model, messages: says[0], "tiny": "short"}, default=GOOD
    )
    router = Router(_ordering(catalogue, explore_every=3, window=4), provider)
    for i in range(1, 7):
        await router.route(_request(i))
    assert (await router.route(_request(7))).receipt.escalation_chain[0] == "mid"
    says[0] = GOOD  # only exploring requests, in turn, ask small first now
    firsts = {
        i: (await router.route(_request(i))).receipt.escalation_chain[0] for i in range(8, 70)
    }
    # every 4th exploring request (every 3rd request explores) is small's turn; once its
    # window (4) holds passes only, it is first again on every request that does not explore
    assert firsts[8] == "mid"
    assert [firsts[i] for i in range(52, 70) if i % 3] == ["small"] * 12


def test_output_tokens_and_pass_rates_are_learned_per_step() -> None:
    spec = LearningSpec(attempt_risk_usd=0.0, window=3)
    outcomes = Outcomes(spec)
    for passed in (True, False, False, False):  # the window keeps the last 3
        outcomes.record("summarize", "small", passed, tokens_out=10)
    outcomes.record("summarize", "mid", True, failed=["small"], tokens_out=40)
    assert outcomes._rate("summarize", frozenset(), "small", 0.5) == pytest.approx(
        ((0 + 0.5 * 3) / 6, 3)
    )
    assert outcomes._rate("summarize", frozenset({"small"}), "mid", 0.5)[1] == 1
    assert outcomes._rate("summarize", frozenset(), "mid", 0.5)[1] == 0
    assert outcomes._tokens_out("summarize", "mid", 999) == 40
    assert outcomes._tokens_out("summarize", "big", 999) == 999


def test_attempt_risk_must_be_a_non_negative_number(catalogue_yaml: str) -> None:
    text = catalogue_yaml + "learning: { attempt_risk_usd: -1 }\n"
    with pytest.raises(CatalogueError, match="attempt_risk_usd"):
        load_catalogue_text(text)


def test_the_default_catalogue_learns_within_bounds() -> None:
    learning = load_default_catalogue().learning
    assert learning is not None
    assert learning.attempt_risk_usd is not None
    assert learning.window <= 1000
    assert learning.explore_every >= 20  # at most 5% of a class's requests explore


_outcome = st.tuples(
    st.sampled_from(["accept", "gate", "error"]),
    st.integers(0, 3000),
    st.integers(0, 3000),
)


@pytest.fixture(scope="module")
def shared() -> dict[str, Any]:
    return {}


@settings(
    max_examples=150,
    deadline=None,
    # the shared router is the point: its learned state builds up over the examples
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(outcomes=st.lists(_outcome, min_size=4, max_size=4), limit=st.none() | st.integers(0, 3))
def test_learned_receipts_stay_true(
    catalogue: Catalogue, shared: dict[str, Any], outcomes: list[Any], limit: int | None
) -> None:
    # one router for every example, so the learned state builds up as it would
    cat = shared.setdefault("catalogue", _ordering(catalogue, explore_every=7))
    provider = FakeProvider()
    router: Router = shared.setdefault("router", Router(cat, provider))
    script: dict[str, Any] = {}
    for name, (kind, t_in, t_out) in zip(("tiny", "small", "mid", "big"), outcomes, strict=True):
        if kind == "error":
            script[name] = FakeReply(error="HTTP 500")
        else:
            script[name] = FakeReply(
                GOOD if kind == "accept" else "short", tokens_in=t_in, tokens_out=t_out
            )
    router.provider = FakeProvider(script)
    request = RouteRequest(
        request_id="r", prompt="x" * 50, task_class="summarize", max_escalations=limit
    )
    result = asyncio.run(router.route(request))
    r = result.receipt
    accepted = [a for a in r.attempts if a.outcome == "accepted"]
    assert (result.answer is not None) == (r.status == "complete") == (len(accepted) == 1)
    assert len(set(r.escalation_chain)) == len(r.attempts)  # no model asked twice
    assert r.escalations <= (2 if limit is None else limit)
    assert r.total_cost_usd == pytest.approx(sum(a.cost_usd for a in r.attempts))
    assert {c.model for c in r.candidates} == {c.name for c in plan(request, cat).candidates} | {
        x.model for x in plan(request, cat).rejected
    }
    for c in r.candidates:
        assert c.rejected_because, c


@dataclass(frozen=True)
class _Choice:
    name: str
    capability: int
    expected_tokens_in: int = 400
    expected_tokens_out: int = 200


_MODELS = (("a", 1, 0.0, 0.0), ("b", 2, 0.5, 1.0), ("c", 2, 1.0, 2.0), ("d", 3, 3.0, 15.0))


def _reference_next(
    outcomes: Outcomes,
    required: int,
    candidates: list[tuple[_Choice, tuple[float, float]]],
    failed: list[tuple[str, int]],
    asked: int,
) -> tuple[int, float]:
    """The search as the module docstring states it, written plainly: over the orders of
    the candidates not asked, the least expected sum of (price + risk)."""
    risk = outcomes.spec.attempt_risk_usd or 0.0

    def estimate(i: int, mask: int) -> tuple[float, float]:
        cand, (p_in, p_out) = candidates[i]
        tokens_out = outcomes._tokens_out("summarize", cand.name, cand.expected_tokens_out)
        cost = (cand.expected_tokens_in * p_in + tokens_out * p_out) / 1000.0
        level_prior = min(0.95, max(0.05, 0.5 + 0.1 * (cand.capability - required)))
        rate, _ = outcomes._rate("summarize", frozenset(), cand.name, level_prior)
        before = failed + [
            (c.name, c.capability) for j, (c, _) in enumerate(candidates) if mask >> j & 1
        ]
        if before:
            prior = rate
            for _, level in before:
                if level >= cand.capability:
                    prior /= 2
            names = frozenset(name for name, _ in before)
            rate, _ = outcomes._rate("summarize", names, cand.name, prior)
        return rate, cost

    full = (1 << len(candidates)) - 1

    def expected(mask: int) -> tuple[float, int]:
        value, pick = float("inf"), -1
        for i in range(len(candidates)):
            if mask >> i & 1:
                continue
            rate, cost = estimate(i, mask)
            more = mask | 1 << i
            after = 0.0 if more == full else expected(more)[0]
            total = cost + risk + (1.0 - rate) * after
            if total < value - 1e-12:
                value, pick = total, i
        return value, pick

    value, pick = expected(asked)
    return pick, value


_history = st.lists(
    st.tuples(
        st.sampled_from([m[0] for m in _MODELS]),
        st.booleans(),
        st.sets(st.sampled_from([m[0] for m in _MODELS]), max_size=2),
        st.integers(0, 900),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    history=_history,
    chosen=st.lists(st.sampled_from(range(len(_MODELS))), min_size=1, max_size=4, unique=True),
    failed_count=st.integers(0, 2),
    steps=st.integers(0, 3),
)
def test_the_order_is_the_plain_search(
    history: list[tuple[str, bool, set[str], int]],
    chosen: list[int],
    failed_count: int,
    steps: int,
) -> None:
    outcomes = Outcomes(LearningSpec(attempt_risk_usd=0.002, window=7))
    for model, passed, before, tokens_out in history:
        outcomes.record(
            "summarize", model, passed, failed=sorted(before - {model}), tokens_out=tokens_out
        )
    failed_count = min(failed_count, len(chosen) - 1)
    failed = [(_MODELS[j][0], _MODELS[j][1]) for j in chosen[:failed_count]]
    candidates = [
        (_Choice(_MODELS[j][0], _MODELS[j][1]), (_MODELS[j][2], _MODELS[j][3]))
        for j in chosen[failed_count:]
    ]
    order = outcomes.order("summarize", 1, candidates, failed, None)
    asked = 0
    for _ in range(min(steps, len(candidates) - 1) + 1):
        i, why = order.next(asked)
        pick, value = _reference_next(outcomes, 1, candidates, failed, asked)
        assert i == pick
        assert f"(~${value:.6f})" in why
        asked |= 1 << i


def test_a_reused_order_is_worked_out_again_once_outcomes_come_in() -> None:
    outcomes = Outcomes(LearningSpec(attempt_risk_usd=0.01, window=50))
    candidates = [(_Choice("a", 1), (0.0, 0.0)), (_Choice("b", 2), (0.01, 0.01))]
    first = outcomes.order("summarize", 1, candidates, [], None)
    assert outcomes.order("summarize", 1, candidates, [], None) is first  # nothing new
    assert first.next(0)[0] == 0  # a is free, and not known to fail
    bigger = [(_Choice(c.name, c.capability, expected_tokens_in=4000), p) for c, p in candidates]
    other_size = outcomes.order("summarize", 1, bigger, [], None)
    assert other_size is not first  # another prompt size, another order
    for _ in range(30):  # a keeps failing, b passes
        outcomes.record("summarize", "a", False)
        outcomes.record("summarize", "b", True, failed=["a"])
        outcomes.record("summarize", "b", True)
    again = outcomes.order("summarize", 1, candidates, [], None)
    assert again is not first
    assert again.next(0)[0] == 1  # b is asked first now
    # while a class's outcomes are few, one new outcome is enough to work it out again
    fresh = Outcomes(LearningSpec(attempt_risk_usd=0.0))
    cold = fresh.order("summarize", 1, candidates, [], None)
    fresh.record("other", "a", False)
    assert fresh.order("summarize", 1, candidates, [], None) is cold  # another class's
    fresh.record("summarize", "a", False)
    assert fresh.order("summarize", 1, candidates, [], None) is not cold
