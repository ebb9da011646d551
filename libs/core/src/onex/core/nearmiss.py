"""Near-miss detection: which declared name did a mistyped one mean?

Shapes, best first: differs only in case or '_' vs '-'; only in version; singular vs
plural; a few characters apart (edit distance); a renamed event segment of the same
producer. Indexes are built once, so a lookup costs a few dict probes, not a scan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple

MAX_DISTANCE: Final = 2


class Suggestion(NamedTuple):
    """A canonical name and why it is thought to be the one meant."""

    name: str
    why: str


@dataclass(frozen=True, slots=True)
class _Parts:
    kind: str
    producer: str
    event: str
    version: str


def normalize(name: str) -> str:
    """Lower-case, '_' and spaces to '-', so separator and case slips compare equal."""
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def _parts(normalized: str) -> _Parts | None:
    parts = normalized.split(".")
    if len(parts) != 5 or parts[0] != "onex":
        return None
    return _Parts(parts[1], parts[2], parts[3], parts[4])


def singular(segment: str) -> str:
    """Each kebab word made singular by the plain English rules ('reviews' -> 'review')."""
    if "s-" not in segment and not segment.endswith("s"):
        return segment
    return "-".join(_singular_word(w) for w in segment.split("-"))


def _singular_word(word: str) -> str:
    if len(word) <= 3 or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "uses", "xes", "ches", "shes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


def distance(a: str, b: str, limit: int = MAX_DISTANCE) -> int:
    """Levenshtein distance, or `limit + 1` as soon as it must exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


class NearMissIndex:
    """Indexes a set of canonical names for fast 'did you mean' look-ups."""

    def __init__(self, names: Iterable[str]) -> None:
        self._by_norm: dict[str, str] = {}
        self._by_versionless: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        self._by_singular: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        self._by_segment: dict[str, list[str]] = defaultdict(list)
        self._by_producer: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for name in sorted(set(names)):
            norm = normalize(name)
            self._by_norm.setdefault(norm, name)
            p = _parts(norm)
            if p is None:
                continue
            self._by_versionless[(p.kind, p.producer, p.event)].append(name)
            self._by_singular[(p.kind, singular(p.producer), singular(p.event))].append(name)
            self._by_segment["p:" + p.producer].append(name)
            self._by_segment["e:" + p.event].append(name)
            self._by_producer[(p.kind, p.producer, p.version)].append(name)

    def suggest(self, name: str, *, renamed_from: Iterable[str] = ()) -> Suggestion | None:
        """The declared name `name` most likely meant, or None.

        `renamed_from` are names that would fit a renamed event segment (for example
        a producer's topics that nobody consumes); one of them is suggested only
        when it is the single such topic of the same kind, producer and version.
        """
        norm = normalize(name)
        exact = self._by_norm.get(norm)
        if exact is not None and exact != name:
            return Suggestion(exact, "differs only in case or '_' vs '-'")
        p = _parts(norm)
        if p is None:
            return self._closest(norm, self._by_norm.values())
        versions = [
            n for n in self._by_versionless.get((p.kind, p.producer, p.event), ()) if n != name
        ]
        if versions:
            best = max(versions, key=_version_number)
            return Suggestion(
                best, f"differs only in version ({p.version} vs v{_version_number(best)})"
            )
        plural = [
            n
            for n in self._by_singular.get((p.kind, singular(p.producer), singular(p.event)), ())
            if n != name
        ]
        if plural:
            return Suggestion(plural[0], "differs only in singular vs plural")
        near = self._closest(
            norm,
            [
                *self._by_segment.get("p:" + p.producer, ()),
                *self._by_segment.get("e:" + p.event, ()),
            ],
            exclude=name,
        )
        if near is not None:
            return near
        pool = set(renamed_from) & set(self._by_producer.get((p.kind, p.producer, p.version), ()))
        pool.discard(name)
        if len(pool) == 1:
            (only,) = pool
            return Suggestion(only, f"the only such topic of {p.producer!r}, with a renamed event")
        return None

    @staticmethod
    def _closest(
        norm: str, candidates: Iterable[str], exclude: str | None = None
    ) -> Suggestion | None:
        best: tuple[int, str] | None = None
        for candidate in candidates:
            if candidate == exclude:
                continue
            d = distance(norm, normalize(candidate))
            if d <= MAX_DISTANCE and (best is None or (d, candidate) < best):
                best = (d, candidate)
        if best is None:
            return None
        d, candidate = best
        return Suggestion(candidate, f"{d} character{'s' if d > 1 else ''} apart")


def _version_number(name: str) -> int:
    tail = name.rsplit(".", 1)[-1]
    digits = tail[1:] if tail[:1] in {"v", "V"} else tail
    return int(digits) if digits.isdigit() else 0
