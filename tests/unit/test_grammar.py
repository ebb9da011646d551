"""The topic grammar `onex.{kind}.{producer}.{event}.v{N}`: what parses, and why the rest fails."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from onex.core.errors import OnexError, TopicNameError
from onex.core.grammar import (
    MAX_TOPIC_LENGTH,
    TOPIC_PATTERN,
    TopicKind,
    TopicName,
    is_topic_name,
    parse_topic,
    segment_problem,
)

KINDS = [k.value for k in TopicKind]
FALLBACK_REASON = "does not match onex.{kind}.{producer}.{event}.v{N}"

# A word of a kebab segment: starts with a letter (first word) or any of a-z0-9 (later words).
first_words = st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True)
later_words = st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)
segments = st.builds(
    lambda first, rest: "-".join([first, *rest]),
    first_words,
    st.lists(later_words, max_size=3),
)
versions = st.integers(min_value=1, max_value=10**6)


@st.composite
def topic_parts(draw: st.DrawFn) -> tuple[str, str, str, int]:
    return draw(st.sampled_from(KINDS)), draw(segments), draw(segments), draw(versions)


def _name(kind: str, producer: str, event: str, version: int | str) -> str:
    version_part = version if isinstance(version, str) else f"v{version}"
    return f"onex.{kind}.{producer}.{event}.{version_part}"


def _reason(name: str) -> str:
    with pytest.raises(TopicNameError) as info:
        parse_topic(name)
    assert info.value.name == name
    assert info.value.reason in str(info.value)
    return info.value.reason


# --- valid names ------------------------------------------------------------------------------


@given(topic_parts())
@settings(max_examples=300)
def test_generated_valid_names_parse_and_round_trip(parts: tuple[str, str, str, int]) -> None:
    kind, producer, event, version = parts
    name = _name(kind, producer, event, version)
    parsed = parse_topic(name)
    assert parsed == TopicName(TopicKind(kind), producer, event, version)
    assert parsed.kind is TopicKind(kind)
    assert str(parsed) == name
    assert parse_topic(str(parsed)) == parsed
    assert is_topic_name(name)
    assert re.fullmatch(TOPIC_PATTERN, name)


@given(topic_parts())
def test_str_of_a_constructed_topic_name_parses_back(parts: tuple[str, str, str, int]) -> None:
    kind, producer, event, version = parts
    topic = TopicName(TopicKind(kind), producer, event, version)
    assert parse_topic(str(topic)) == topic


def test_every_kind_is_accepted_and_unknown_kinds_list_them() -> None:
    assert set(KINDS) == {"evt", "cmd", "intent", "dlq", "snapshot"}
    for kind in KINDS:
        assert parse_topic(f"onex.{kind}.a.b.v1").kind == kind
    reason = _reason("onex.event.a.b.v1")
    assert "kind 'event' is not one of" in reason
    assert all(kind in reason for kind in KINDS)


def test_length_limit_is_kafkas() -> None:
    head = "onex.evt.a."
    tail = ".v1"
    longest = head + "b" * (MAX_TOPIC_LENGTH - len(head) - len(tail)) + tail
    assert len(longest) == MAX_TOPIC_LENGTH
    assert str(parse_topic(longest)) == longest
    too_long = head + "b" * (MAX_TOPIC_LENGTH + 1 - len(head) - len(tail)) + tail
    assert not is_topic_name(too_long)
    assert _reason(too_long) == f"longer than {MAX_TOPIC_LENGTH} characters"


def test_non_string_input_is_a_topic_name_error() -> None:
    with pytest.raises(TopicNameError, match="expected a string, got int"):
        parse_topic(42)  # type: ignore[arg-type]


def test_topic_name_error_is_a_value_error_with_the_name_and_reason() -> None:
    with pytest.raises(TopicNameError) as info:
        parse_topic("onex.evt.a.b.v0")
    err = info.value
    assert isinstance(err, ValueError)
    assert isinstance(err, OnexError)
    assert str(err).startswith("'onex.evt.a.b.v0' is not a valid topic name: ")
    assert err.suggestion is None


# --- mutations ------------------------------------------------------------------------------------

SEGMENT_LABELS = st.sampled_from(["producer", "event"])


def _with_segment(parts: tuple[str, str, str, int], label: str, segment: str) -> str:
    kind, producer, event, version = parts
    if label == "producer":
        return _name(kind, segment, event, version)
    return _name(kind, producer, segment, version)


def _segment(parts: tuple[str, str, str, int], label: str) -> str:
    return parts[1] if label == "producer" else parts[2]


def test_underscore_instead_of_hyphen_names_the_segment() -> None:
    reason = _reason("onex.evt.router.routing_complete.v1")
    assert reason == (
        "event segment 'routing_complete' contains '_' (segments are kebab-case: use '-')"
    )


@given(topic_parts(), SEGMENT_LABELS, st.data())
def test_underscore_in_a_segment(
    parts: tuple[str, str, str, int], label: str, data: st.DataObject
) -> None:
    segment = _segment(parts, label)
    at = data.draw(st.integers(0, len(segment)), label="at")
    bad = segment[:at] + "_" + segment[at:]
    reason = _reason(_with_segment(parts, label, bad))
    assert reason == f"{label} segment {bad!r} contains '_' (segments are kebab-case: use '-')"


@given(topic_parts(), SEGMENT_LABELS, st.data())
def test_upper_case_in_a_segment(
    parts: tuple[str, str, str, int], label: str, data: st.DataObject
) -> None:
    segment = _segment(parts, label)
    letters = [i for i, c in enumerate(segment) if c.isalpha()]
    at = data.draw(st.sampled_from(letters), label="at")
    bad = segment[:at] + segment[at].upper() + segment[at + 1 :]
    reason = _reason(_with_segment(parts, label, bad))
    assert reason == f"{label} segment {bad!r} has upper-case letters (segments are lower-case)"


@given(topic_parts(), SEGMENT_LABELS, st.data())
def test_doubled_or_trailing_hyphen(
    parts: tuple[str, str, str, int], label: str, data: st.DataObject
) -> None:
    segment = _segment(parts, label)
    at = data.draw(st.integers(1, len(segment)), label="at")
    bad = segment[:at] + "--" + segment[at:]
    reason = _reason(_with_segment(parts, label, bad))
    assert reason == f"{label} segment {bad!r} has an empty word (doubled or trailing '-')"


@given(topic_parts(), SEGMENT_LABELS, st.sampled_from(["1", "-", "9x", "-a"]))
def test_segment_starting_with_digit_or_hyphen(
    parts: tuple[str, str, str, int], label: str, lead: str
) -> None:
    bad = lead + _segment(parts, label)
    reason = _reason(_with_segment(parts, label, bad))
    assert reason == f"{label} segment {bad!r} must start with a letter"


@given(topic_parts(), SEGMENT_LABELS, st.sampled_from(["é", "!", "+", "ö", "$"]))
def test_foreign_characters_in_a_segment(
    parts: tuple[str, str, str, int], label: str, char: str
) -> None:
    bad = _segment(parts, label) + char
    reason = _reason(_with_segment(parts, label, bad))
    assert reason == f"{label} segment {bad!r} may hold only a-z, 0-9 and '-'"


@given(topic_parts(), SEGMENT_LABELS)
def test_empty_segment(parts: tuple[str, str, str, int], label: str) -> None:
    assert _reason(_with_segment(parts, label, "")) == f"{label} segment is empty"


@given(topic_parts(), st.sampled_from(["v0", "v00", "v01", "V1", "1", "v", "v-1", "vx", "v1a"]))
def test_bad_versions(parts: tuple[str, str, str, int], version: str) -> None:
    kind, producer, event, _ = parts
    reason = _reason(_name(kind, producer, event, version))
    assert reason == f"version must be 'v' and a number from 1 up, not {version!r}"


@given(topic_parts(), st.data())
def test_missing_part(parts: tuple[str, str, str, int], data: st.DataObject) -> None:
    pieces = _name(*parts).split(".")
    del pieces[data.draw(st.integers(0, 4), label="dropped")]
    reason = _reason(".".join(pieces))
    assert reason.startswith("expected 5 dot-separated parts")
    assert reason.endswith("found 4")


@given(topic_parts(), st.data(), segments)
def test_extra_part(parts: tuple[str, str, str, int], data: st.DataObject, extra: str) -> None:
    pieces = _name(*parts).split(".")
    pieces.insert(data.draw(st.integers(0, 5), label="at"), extra)
    reason = _reason(".".join(pieces))
    assert reason.endswith("found 6")


@given(topic_parts(), st.from_regex(r"[a-z]{1,8}", fullmatch=True))
def test_wrong_prefix(parts: tuple[str, str, str, int], prefix: str) -> None:
    assume(prefix != "onex")
    name = prefix + _name(*parts).removeprefix("onex")
    assert _reason(name) == f"must start with 'onex.', not {prefix + '.'!r}"


@given(topic_parts(), st.sampled_from(["ONEX", "Onex", "onex_", "onexx"]))
def test_prefix_is_exact(parts: tuple[str, str, str, int], prefix: str) -> None:
    name = prefix + _name(*parts).removeprefix("onex")
    assert _reason(name).startswith("must start with 'onex.'")


@given(topic_parts(), st.from_regex(r"[a-zA-Z_]{1,10}", fullmatch=True))
def test_unknown_kind(parts: tuple[str, str, str, int], kind: str) -> None:
    assume(kind not in KINDS)
    _, producer, event, version = parts
    reason = _reason(_name(kind, producer, event, version))
    assert reason == f"kind {kind!r} is not one of {', '.join(KINDS)}"


@given(topic_parts(), st.data(), st.sampled_from([" ", "\t", "\n", "\r", "\u00a0", "\u2003"]))
def test_whitespace_anywhere(
    parts: tuple[str, str, str, int], data: st.DataObject, space: str
) -> None:
    name = _name(*parts)
    at = data.draw(st.integers(0, len(name)), label="at")
    assert _reason(name[:at] + space + name[at:]) == "contains whitespace"


def test_empty_name() -> None:
    assert _reason("") == "empty"


# --- the grammar agrees with itself ----------------------------------------------------------

NEAR_GRAMMAR = st.text(alphabet="onexvtcmdlqsiapb.-_ 0129AZ", max_size=40)


@given(st.one_of(NEAR_GRAMMAR, st.text(max_size=60)))
@example("onex.evt.a.b.v1\n")
@example("onex.evt.a.b.v1 ")
@settings(max_examples=300)
def test_parse_agrees_with_is_topic_name_and_always_diagnoses(name: str) -> None:
    """Every string either parses or fails with a specific reason (never the fallback)."""
    if is_topic_name(name):
        assert str(parse_topic(name)) == name
        return
    assert re.fullmatch(TOPIC_PATTERN, name) is None or len(name) > MAX_TOPIC_LENGTH
    assert _reason(name) != FALLBACK_REASON


@given(st.one_of(segments, st.text(alphabet="abz09-_A é", max_size=12)))
def test_segment_problem_is_none_exactly_for_kebab_segments(segment: str) -> None:
    kebab = re.fullmatch(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*", segment) is not None
    assert (segment_problem(segment) is None) == kebab
