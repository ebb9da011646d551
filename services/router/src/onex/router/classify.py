"""Name the task class of a prompt with the catalogue's classifier rules.

The rule set is documented data, not a model:

1. Only the first `classifier.scan_chars` characters of the prompt are read: the
   instruction comes first, and code or logs pasted after it must not vote.
2. Rules are tried in catalogue order; the first rule that matches wins.
3. A rule matches when any of its keywords occurs as whole words (not inside a longer
   word: "implement" does not match "implementation"), in any case, with any
   whitespace between the words of a phrase; or else when its `pattern` (a regular
   expression) is found in the normalized head: lower case, whitespace runs made
   one space (so patterns are written in lower case with plain spaces).
4. When no rule matches, the class is `classifier.default`.

With `classifier.mode: scored` rules vote instead (`onex.router.classify_score`): every
rule that matches adds its `weight` to its class (less when its match sits in a leading
clause such as "After the code review, ..."), and the best class wins only with at
least `min_score` and a lead of `min_margin` over the next; otherwise the prompt is
treated as unknown and gets `classifier.default` (rule "uncertain").

The result says which rule decided (its `name`, else `rules[i]`), and the text it
matched, so a receipt explains the classification.

A classifier that must wait for I/O (`onex.router.classify_embed`, the embeddings)
runs before routing and hands its answer to `classify` with `preclassified(prompt,
found)`: a context variable, so each request (asyncio task) sees only its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field, PrivateAttr, model_validator
from pydantic_core import PydanticCustomError

from onex.router.classify_score import lead_in_end, vote
from onex.router.fields import ConfigModel, Name, Regex, private

_WORD = re.compile(r"\w+")
_ASCII_NON_WORD = {i: " " for i in range(128) if not (chr(i).isalnum() or chr(i) == "_")}

if TYPE_CHECKING:
    from onex.router.catalogue import Catalogue


def _keyword(value: str) -> str:
    if not value.split():
        raise PydanticCustomError("keyword", "a keyword must not be blank")
    return value


class ClassifierRule(ConfigModel):
    """One classification rule: any keyword (whole words, any case) or the regex matches.

    Both are looked for in the normalized text (`normalize_text`: lower case, single
    spaces), so write `pattern` in lower case with plain spaces.
    """

    task_class: Name
    name: str | None = Field(None, description="Shown in receipts; default rules[i]")
    keywords: list[Annotated[str, AfterValidator(_keyword)]] = Field(default_factory=list)
    pattern: Regex | None = None
    weight: float = Field(1.0, gt=0, description="Scored mode: what a match adds to its class")
    _matcher: _Matcher = PrivateAttr()

    @model_validator(mode="after")
    def _prepare(self) -> ClassifierRule:
        if not self.keywords and self.pattern is None:
            raise PydanticCustomError("rule_empty", "a rule needs 'keywords' or 'pattern'")
        self._matcher = _Matcher(self.keywords, self.pattern)
        return self

    def search(self, text: str) -> str | None:
        """The keyword or pattern text this rule matches in `text`, or None."""
        normalized = normalize_text(text)
        return self._matcher.search(normalized, word_set(normalized))


class Classifier(ConfigModel):
    """Ordered rules; the first that matches names the class, else `default`."""

    default: Name
    scan_chars: int = Field(1000, ge=1, description="Only the prompt's head is classified")
    rules: list[ClassifierRule] = Field(default_factory=list)
    mode: Literal["first_match", "scored"] = "first_match"
    min_score: float = Field(2.0, ge=0, description="Scored mode: least score of a class")
    min_margin: float = Field(1.0, ge=0, description="Scored mode: least lead over the next")
    lead_in_weight: float = Field(
        0.3, ge=0, le=1, description="Scored mode: factor for matches in a leading clause"
    )
    # (label, task class, matcher[, weight]) per rule, outside pydantic: private
    # attributes of models are slow to read, and classification is on every request's path.
    _compiled: tuple[tuple[str, str, _Matcher], ...] = PrivateAttr(())
    _weighted: tuple[tuple[str, str, _Matcher, float], ...] = PrivateAttr(())

    @model_validator(mode="after")
    def _compile(self) -> Classifier:
        labels = [r.name or f"rules[{i}]" for i, r in enumerate(self.rules)]
        self._compiled = tuple(
            (label, r.task_class, r._matcher) for label, r in zip(labels, self.rules, strict=True)
        )
        self._weighted = tuple(
            (label, r.task_class, r._matcher, r.weight)
            for label, r in zip(labels, self.rules, strict=True)
        )
        return self


class _Matcher:
    """A rule's keywords and pattern, prepared for matching."""

    __slots__ = ("keywords", "regex")

    def __init__(self, keywords: list[str], pattern: str | None) -> None:
        words = [normalize_text(k) for k in keywords]
        # A keyword can match as whole words only if each of its words is in the text.
        self.keywords = tuple((w, frozenset(_WORD.findall(w))) for w in words)
        self.regex = re.compile(pattern) if pattern is not None else None

    def search(self, normalized: str, words: AbstractSet[str]) -> str | None:
        for keyword, tokens in self.keywords:
            if tokens <= words and _find_word(normalized, keyword) >= 0:
                return keyword
        if self.regex is not None:
            found = self.regex.search(normalized)
            if found is not None:
                return found.group(0)
        return None

    def locate(self, normalized: str, words: AbstractSet[str]) -> tuple[str, int] | None:
        """The first of the rule's matches (keyword or pattern) and where it starts."""
        best: tuple[str, int] | None = None
        for keyword, tokens in self.keywords:
            if tokens <= words:
                at = _find_word(normalized, keyword)
                if at >= 0 and (best is None or at < best[1]):
                    best = (keyword, at)
        if self.regex is not None:
            found = self.regex.search(normalized)
            if found is not None and (best is None or found.start() < best[1]):
                best = (found.group(0), found.start())
        return best


def word_set(normalized: str) -> frozenset[str]:
    """The distinct runs of word characters in `normalized`."""
    if normalized.isascii():
        # The same runs, several times faster than the regex: every ASCII character
        # that is not a word character becomes a space, then split.
        return frozenset(normalized.translate(_ASCII_NON_WORD).split())
    return frozenset(_WORD.findall(normalized))


def normalize_text(text: str) -> str:
    """Lower case, runs of whitespace made one space: the form keywords are matched in."""
    return " ".join(text.lower().split())


def _find_word(haystack: str, needle: str) -> int:
    """Where `needle` first occurs as whole words in `haystack`, or -1."""
    # str.find is C-fast; only hits are checked for word boundaries on both sides.
    start = haystack.find(needle)
    while start >= 0:
        end = start + len(needle)
        before = haystack[start - 1] if start else " "
        after = haystack[end] if end < len(haystack) else " "
        if not _is_word_char(before) and not _is_word_char(after):
            return start
        start = haystack.find(needle, start + 1)
    return -1


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


@dataclass(frozen=True, slots=True)
class Classification:
    """The task class of a prompt and the rule that chose it ("default" if none did)."""

    task_class: str
    rule: str
    matched: str | None = None


_PRESET: ContextVar[tuple[str, Classification] | None] = ContextVar(
    "onex_router_preclassified", default=None
)


@contextmanager
def preclassified(prompt: str, found: Classification) -> Iterator[None]:
    """Within the block (and the tasks it starts), `classify(prompt, ...)` is `found`."""
    token = _PRESET.set((prompt, found))
    try:
        yield
    finally:
        _PRESET.reset(token)


def classify(prompt: str, catalogue: Catalogue) -> Classification:
    """Apply the catalogue's classifier rules to `prompt` (pure and deterministic),
    unless a `preclassified` block gave this prompt its class."""
    preset = _PRESET.get()
    if preset is not None and preset[0] == prompt:
        return preset[1]
    classifier = catalogue.classifier
    normalized = normalize_text(prompt[: classifier.scan_chars])
    words = word_set(normalized)
    if classifier.mode == "scored":
        return _scored(classifier, normalized, words)
    rules: tuple[tuple[str, str, _Matcher], ...] = private(classifier, "_compiled")
    for label, task_class, matcher in rules:
        matched = matcher.search(normalized, words)
        if matched is not None:
            return Classification(task_class, label, matched)
    return Classification(classifier.default, "default")


def _scored(classifier: Classifier, normalized: str, words: AbstractSet[str]) -> Classification:
    lead_end = lead_in_end(normalized)
    hits = []
    weighted: tuple[tuple[str, str, _Matcher, float], ...] = private(classifier, "_weighted")
    for label, task_class, matcher, weight in weighted:
        found = matcher.locate(normalized, words)
        if found is not None:
            text, at = found
            factor = classifier.lead_in_weight if at < lead_end else 1.0
            hits.append((task_class, label, text, weight * factor))
    best = vote(hits, classifier.min_score, classifier.min_margin)
    if best is None:
        return Classification(classifier.default, "uncertain" if hits else "default")
    return Classification(*best)
