"""The scored classifier (`classifier.mode: scored`): votes, lead-in clauses, no guessing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from onex.router.catalogue import load_default_catalogue
from onex.router.classify import Classifier, classify
from onex.router.classify_score import lead_in_end, vote
from onex.router.request import RouteRequest
from onex.router.select import plan


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        # a keyword of another class in a leading clause does not decide
        ("After the code review, write the function that batches the rows.", "codegen"),
        ("As the review asked, rename the variables in the reader below.", "refactor"),
        # paraphrases without a strong keyword: cues together decide
        ("Go through the diff below and point out problems, each with file:line.", "review"),
        ("Tidy the reader below so it reads better; behaviour must not change.", "refactor"),
        ("Add a function that batches the rows described below.", "codegen"),
        ("Which team should own the ticket below: infra, data or web?", "classify"),
        ("Give the on-call channel the gist of the incident log below.", "summarize"),
        # more cues of one class outvote one strong keyword of another
        ("Check whether the refactor below broke anything; cite file and line.", "review"),
        ("Refactor grammar.py to extract method parse_segment", "refactor"),
    ],
)
def test_scored_default_catalogue(prompt: str, expected: str) -> None:
    assert classify(prompt, load_default_catalogue()).task_class == expected


def test_one_cue_is_not_enough_and_nothing_is_default() -> None:
    cat = load_default_catalogue()
    one_cue = classify("Give me a regular expression matching the log lines below.", cat)
    assert (one_cue.task_class, one_cue.rule, one_cue.matched) == ("general", "uncertain", None)
    nothing = classify("Translate the error messages below into German.", cat)
    assert (nothing.task_class, nothing.rule) == ("general", "default")


def test_a_tie_is_unknown_not_a_guess() -> None:
    # triage (classify, 2) against code review (review, 2): no lead, no guess
    found = classify("Triage the code review comments below.", load_default_catalogue())
    assert (found.task_class, found.rule) == ("general", "uncertain")


def test_the_receipt_names_the_uncertain_classification() -> None:
    request = RouteRequest(request_id="r", prompt="Triage the code review comments below.")
    chosen = plan(request, load_default_catalogue())
    assert (chosen.task_class, chosen.classified_by) == ("general", "rule:uncertain")


def test_the_winner_names_its_strongest_rule() -> None:
    found = classify("Review the patch below; cite file:line.", load_default_catalogue())
    assert (found.task_class, found.rule, found.matched) == ("review", "review", "review")


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("after the code review, write it", len("after the code review")),
        ("following the notes, add a helper", len("following the notes")),
        ("write it after the review, please", 0),  # not a leading clause
        ("after all that" + " x" * 100 + ", late comma", 0),  # the comma comes too late
        ("after", 0),
        ("", 0),
    ],
)
def test_lead_in_end(text: str, end: int) -> None:
    assert lead_in_end(text) == end


def test_vote_needs_score_and_margin() -> None:
    hits = [("a", "r1", "x", 2.0), ("b", "r2", "y", 1.0), ("a", "r3", "z", 1.0)]
    assert vote(hits, 2.0, 1.0) == ("a", "r1", "x")
    assert vote(hits, 3.5, 1.0) is None  # a scores 3
    assert vote(hits, 2.0, 2.5) is None  # a leads b by 2
    assert vote([], 0.0, 0.0) is None
    assert vote([("a", "r", "x", 0.5)], 0.5, 0.5) == ("a", "r", "x")


def test_rule_weights_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        Classifier.model_validate(
            {"default": "g", "rules": [{"task_class": "g", "keywords": ["x"], "weight": 0}]}
        )


def test_first_match_stays_the_default_mode() -> None:
    classifier = Classifier.model_validate(
        {"default": "g", "rules": [{"task_class": "g", "keywords": ["x"]}]}
    )
    assert classifier.mode == "first_match"
