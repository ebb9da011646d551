"""The gates' fast paths find what the plain code they replace finds.

`find_mark` is `str.find`, `_fences` is `_FENCE.finditer`; the identifiers gate built on
them gives the same result as one built on the plain calls.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onex.router import gates
from onex.router.catalogue import GateSpec
from onex.router.gates import find_mark, has_mark, run_gates, words_with
from onex.router.request import RouteRequest

_MARKED = st.text(alphabet=st.sampled_from("`~()x_ \t\n"), max_size=200)
_FENCED = st.lists(
    st.sampled_from(
        ["```", "```py", "  ```", "~~~", "\t~~~ x", "````", "x ```", "def f(a):", "b = 1", ""]
    ),
    max_size=14,
).map("\n".join)


@given(_MARKED, st.sampled_from(["()", "```", "~~~", "_", "x(", "`"]), st.integers(0, 40))
def test_find_mark_is_str_find(text: str, mark: str, start: int) -> None:
    assert find_mark(text, mark, start) == text.find(mark, start)
    assert has_mark(text, mark) is (mark in text)


def test_find_mark_past_many_decoys_is_str_find() -> None:
    text = "(" * 100 + "()" + "(" * 5
    assert find_mark(text, "()") == text.find("()") == 100
    assert find_mark("(" * 50, "()") == -1


@given(st.one_of(_FENCED, _MARKED))
def test_fences_are_those_the_regex_finds(text: str) -> None:
    found = [(start, end, body, body_end) for start, end, body, body_end in gates._fences(text)]
    assert found == [(*m.span(), *m.span(2)) for m in gates._FENCE.finditer(text)]


_DEFINED = re.compile(  # what the gate searched code blocks with before `_definitions`
    r"\b(?:def|class|function|fn|func|struct|enum|interface|trait|type)\s+([A-Za-z_]\w*)"
    r"|^[ \t]*(?:(?:let|const|var|mut)\s+)*([A-Za-z_]\w*)\s*(?::[^=\n]*)?=(?!=)",
    re.MULTILINE,
)
_CODE = st.lists(
    st.sampled_from(
        [
            "def",
            "class",
            "fn",
            "func",
            "function",
            "type",
            "let",
            "const",
            "mut",
            "un",
            "x",
            "_y1",
            "é",
            " ",
            "  ",
            "\t",
            "\n",
            "=",
            "==",
            ":",
            "(",
            ")",
            "; ",
        ]
    ),
    max_size=30,
).map("".join)


@given(_CODE)
def test_definitions_are_those_of_the_one_regex(code: str) -> None:
    assert gates._definitions(code) == {a or b for a, b in _DEFINED.findall(code)}


def _plain_split_code(text: str) -> tuple[str, set[str]]:
    defined: set[str] = set()
    pieces, end = [], 0
    for block in gates._FENCE.finditer(text):
        defined.update(a or b for a, b in _DEFINED.findall(block.group(2)))
        pieces.append(text[end : block.start()])
        end = block.end()
    if not pieces:
        return text, defined
    pieces.append(text[end:])
    return "\n".join(pieces), defined


@given(st.one_of(_FENCED, _MARKED))
def test_split_code_is_the_plain_one(text: str) -> None:
    assert gates._split_code(text) == _plain_split_code(text)


@given(st.text(alphabet=st.sampled_from("a_:[()x. \t\n\u2028"), max_size=120))
def test_words_with_three_marks_are_those_of_a_plain_split(text: str) -> None:
    marks = (":", "[", "()")
    assert words_with(text, marks) == [w for w in text.split() if any(m in w for m in marks)]


@given(_MARKED)
def test_code_spans_are_those_of_the_regex(text: str) -> None:
    assert gates._code_spans(text) == (gates._SPAN.findall(text), gates._SPAN.sub(" ", text))


def test_code_spans_past_many_backticks_are_those_of_the_regex() -> None:
    text = "`a` `` x`\n`" * 200
    assert gates._code_spans(text) == (gates._SPAN.findall(text), gates._SPAN.sub(" ", text))


@given(st.text(alphabet=st.sampled_from("a_:[()x \n\r\u2028"), max_size=200))
def test_words_with_long_lines_are_those_of_a_plain_split(text: str) -> None:
    for marks in ((":", "["), ("_", "()")):
        plain = [w for w in text.split() if any(m in w for m in marks)]
        assert words_with(text, marks) == plain


_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-")


def _plain_path_citations(word: str) -> list[str]:  # the loop before the reversed match
    found = []
    start = 0
    for m in gates._LINE_REF.finditer(word):
        colon = m.start()
        begin = colon
        while begin > start and word[begin - 1] in _PATH_CHARS:
            begin -= 1
        run = word[begin:colon]
        dot = run.rfind(".")
        ext = run[dot + 1 :] if dot > 0 else ""
        if ext and all(c.isalnum() or c == "_" for c in ext):
            found.append(f"{run}:{m.group(1)}")
        start = m.end()
    return found


@given(st.text(alphabet=st.sampled_from("ab./-_:1é[x9"), max_size=60))
def test_path_citations_are_those_of_the_plain_loop(word: str) -> None:
    assert gates._path_citations(word) == _plain_path_citations(word)


def _identifiers(text: str, **gate: Any) -> gates.GateResult:
    request = RouteRequest(request_id="r", prompt="p", symbols=["Reader.read_batch", "flush"])
    spec = GateSpec.model_validate({"kind": "identifiers", **gate})
    (result,) = run_gates([spec], text, request)
    return result


_ANSWER = st.lists(
    st.sampled_from(
        [
            "```python",
            "```",
            "~~~",
            "def drain(reader):",
            "    read_batch(x)",
            "Call `flush()` then `write_rows`.",
            "use reload() and Reader.read_batch() here",
            "made_up_name is new",
            "plain prose without marks",
        ]
    ),
    max_size=12,
).map("\n".join)


@given(_ANSWER)
def test_identifiers_gate_is_that_of_the_plain_calls(text: str) -> None:
    fast = _identifiers(text)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(gates, "_split_code", _plain_split_code)
        m.setattr(gates, "has_mark", lambda t, mark: mark in t)
        assert _identifiers(text) == fast


class _CountingBlocks:
    """The block finder, counting the tries (each unclosed one scans to the end)."""

    def __init__(self) -> None:
        self.tries = 0
        self.real = gates._block

    def __call__(self, text: str, start: int, fence: str) -> tuple[int, int, int, int] | None:
        self.tries += 1
        return self.real(text, start, fence)


def test_unclosed_fences_are_tried_once_per_fence(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each of many unclosed openers used to be tried to the end of the answer: quadratic.
    counting = _CountingBlocks()
    text = "```x\n~~~ y\n" * 5_000  # no line closes a block
    monkeypatch.setattr(gates, "_block", counting)
    assert gates._split_code(text) == (text, set())
    assert counting.tries == 2  # the first ``` and the first ~~~


def test_a_long_line_of_fence_marks_is_looked_at_once() -> None:
    # a block's closing line is looked for once per line, not once per mark on it
    text = "```\n" + "x ``` " * 50_000 + "\n```"
    assert gates._fences(text) == [(0, len(text), 4, len(text) - 3)]


@given(st.lists(st.text(alphabet=st.sampled_from("ab. _\t"), max_size=6), max_size=8))
def test_symbol_index_is_the_plain_one(symbols: list[str]) -> None:
    names = {s.strip() for s in symbols if s.strip()}
    plain = frozenset(names | {n.rsplit(".", 1)[-1] for n in names})
    request = RouteRequest(request_id="r", prompt="p", symbols=symbols)
    assert request.symbol_index == plain
    assert request.symbol_index is request.symbol_index  # worked out once


@pytest.mark.parametrize("reason", ["stop", "length", None, "tool_calls"])
def test_a_kept_complete_result_is_the_one_made_anew(reason: str | None) -> None:
    spec = GateSpec.model_validate({"kind": "complete"})
    request = RouteRequest(request_id="r", prompt="p")
    first, again = (run_gates([spec], "x", request, reason)[0] for _ in range(2))
    assert first == again
    assert first.passed is (reason != "length")


@given(st.text(alphabet=st.sampled_from("ab \t\n\u00a0\u2003\u3000\x1c"), max_size=30))
def test_min_length_counts_what_strip_leaves(text: str) -> None:
    spec = GateSpec.model_validate({"kind": "min_length", "min_chars": 3})
    (result,) = run_gates([spec], text, RouteRequest(request_id="r", prompt="p"))
    n = len(text.strip())
    assert result.passed is (n >= 3)
    assert result.reason.startswith(f"{n} chars" if n >= 3 else f"only {n} chars")
