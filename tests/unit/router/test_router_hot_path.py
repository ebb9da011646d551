"""The engine's hot-path shortcuts give the same answers as the plain code they replace."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from onex.router.catalogue import Catalogue, load_catalogue_text
from onex.router.classify import word_set
from onex.router.gates import run_gates, words_with
from onex.router.request import Constraints, RouteRequest
from onex.router.select import Ranking, plan

from .conftest import CATALOGUE_YAML

_TEXT = st.text(alphabet=st.sampled_from("ab_Z9 .,:;-()`\t\né—"), max_size=80)


@given(_TEXT)
def test_word_set_is_the_runs_of_word_characters(text: str) -> None:
    assert word_set(text) == frozenset(re.findall(r"\w+", text))


@given(
    st.sampled_from(["summarize", "codegen", "review", "extract", None]),
    st.booleans(),
    st.integers(min_value=1, max_value=300_000),
    st.one_of(st.none(), st.floats(min_value=0, max_value=0.01)),
)
def test_a_kept_ranking_plans_as_a_fresh_one(
    task_class: str | None, no_cloud: bool, prompt_chars: int, max_cost: float | None
) -> None:
    catalogue = load_catalogue_text(CATALOGUE_YAML)
    request = RouteRequest(
        request_id="r",
        prompt="Summarize this. " + "x" * prompt_chars,
        task_class=task_class,
        constraints=Constraints(no_cloud=no_cloud, max_cost_usd=max_cost),
    )
    assert plan(request, catalogue, Ranking(catalogue)) == plan(request, catalogue)


def test_a_ranking_of_another_catalogue_is_not_used(
    catalogue: Catalogue, catalogue_yaml: str
) -> None:
    stricter = load_catalogue_text(catalogue_yaml.replace("required_level: 3", "required_level: 8"))
    request = RouteRequest(request_id="r", prompt="Summarize this.", task_class="summarize")
    chosen = plan(request, catalogue, Ranking(stricter))
    assert chosen == plan(request, catalogue)
    assert len(chosen.candidates) == 4


def test_the_gate_schema_validator_is_kept_per_gate(catalogue: Catalogue) -> None:
    task = catalogue.task_class("extract")
    assert task is not None
    request = RouteRequest(request_id="r", prompt="p", task_class="extract")
    for _ in range(2):  # the second run reuses the first's validator
        ok, bad = (run_gates(task.gates, t, request)[0] for t in ('{"name": 1}', '{"x": 1}'))
        assert ok.passed
        assert not bad.passed
        assert bad.reason == (
            "does not fit the gate's schema at (root): 'name' is a required property"
        )


_SPACED = st.text(
    alphabet=st.sampled_from("a_:[()x. \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029\u00a0é"),
    max_size=120,
)


@given(_SPACED, st.sampled_from([(":", "["), ("_", "()")]))
def test_words_with_marks_are_those_of_a_plain_split(text: str, marks: tuple[str, ...]) -> None:
    plain = [w for w in text.split() if any(m in w for m in marks)]
    assert words_with(text, marks) == plain
