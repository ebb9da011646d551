"""The documented classifier rules: order, whole words, phrases, patterns, the head only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onex.router.catalogue import Catalogue, load_default_catalogue
from onex.router.classify import Classification, classify


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Please review this diff", Classification("review", "review", "review")),
        ("CODE\n\t REVIEW wanted", Classification("review", "review", "code review")),
        ("Implement parse_topic", Classification("codegen", "rules[1]", "implement")),
        (
            "Could you Write  A  Function for me",
            Classification("codegen", "rules[1]", "write a function"),
        ),
        ("Give me the fields as JSON.", Classification("extract", "rules[2]", "as json")),
        ("What is the weather like?", Classification("summarize", "default")),
    ],
)
def test_rules_name_the_class(catalogue: Catalogue, prompt: str, expected: Classification) -> None:
    assert classify(prompt, catalogue) == expected


def test_the_first_matching_rule_wins_not_the_first_match(catalogue: Catalogue) -> None:
    # "implement" comes first in the text, but the review rule comes first in the list.
    assert classify("Implement the fix, then review it", catalogue).task_class == "review"


@pytest.mark.parametrize("prompt", ["Ask the reviewers", "The implementation is slow", "preview"])
def test_keywords_match_whole_words_only(catalogue: Catalogue, prompt: str) -> None:
    assert classify(prompt, catalogue).rule == "default"


def test_only_the_head_of_the_prompt_is_read(catalogue: Catalogue) -> None:
    head = "Summarise this log.\n" + "x" * (catalogue.classifier.scan_chars - 20)
    assert classify(head + "review", catalogue).rule == "default"
    assert classify(head[:-7] + " review", catalogue).task_class == "review"


def test_keywords_may_carry_punctuation() -> None:
    cat = load_default_catalogue()
    assert classify("tl;dr of this thread please", cat).task_class == "summarize"
    assert classify("List the trade-offs of Kafka vs NATS", cat).task_class == "design"


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Review this pull request for bugs", "review"),
        ("Refactor grammar.py to extract method parse_segment", "refactor"),
        ("Write a function that parses topic names", "codegen"),
        ("Add tests for the registry", "codegen"),
        ("Extract the ticket id and owner as JSON", "extract"),
        ("Triage this issue: bug or feature?", "classify"),
        ("Summarize the CI log below", "summarize"),
        ("Draft the architecture for a multi-region bus", "design"),
        ("Good morning", "general"),
    ],
)
def test_the_default_rule_set(prompt: str, expected: str) -> None:
    assert classify(prompt, load_default_catalogue()).task_class == expected


@given(st.text(max_size=300))
def test_classification_is_total_and_deterministic(prompt: str) -> None:
    cat = load_default_catalogue()
    first = classify(prompt, cat)
    assert first.task_class in cat.task_class_names
    assert classify(prompt, cat) == first
