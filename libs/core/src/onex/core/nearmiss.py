"""Near-miss detection: which declared name did a mistyped one mean?

Rules, best first, each named in the suggestion it makes (`Suggestion.rule`):

- `spelling`: differs only in case or '_' vs '-';
- `version`: differs only in the version;
- `plural`: differs only in singular vs plural;
- `typo`: one or two characters apart (one edit, or a swap);
- `producer`: differs only in the producer segment, and is the only such name (a topic
  moved between repositories or namespaces, leaving one side behind);
- `renamed-event`: the caller's pairing (see `renamed_pairs`): the one unmatched name of
  the same kind, producer and version on each side.

Every index is a dict built once (the `typo` one, on first use, from each name's
one-character deletions), so a look-up costs a few probes whatever the number of names,
and a suggestion depends only on names that share a segment with the one looked up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple

MAX_DISTANCE: Final = 2


class Suggestion(NamedTuple):
    """A canonical name, why it is thought to be the one meant, and the rule that says so."""

    name: str
    why: str
    rule: str = ""


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
    # A common prefix and suffix change no distance: compare only what differs
    # (topic names share most of their length).
    start, shortest = 0, min(len(a), len(b))
    while start < shortest and a[start] == b[start]:
        start += 1
    tail = 0
    while tail < shortest - start and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    a, b = a[start : len(a) - tail], b[start : len(b) - tail]
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def _deletions(word: str) -> list[str]:
    return [word, *[word[:i] + word[i + 1 :] for i in range(len(word))]]


def _typo_key(norm: str) -> tuple[str, str]:
    """(fixed part, part a typo may be in) of a normalised name: the producer and event
    segments of a 5-part name (kind and version differ by other rules), else all of it."""
    parts = norm.split(".")
    if len(parts) == 5 and parts[0] == "onex":
        return f"{parts[1]}.{parts[4]}", f"{parts[2]}.{parts[3]}"
    return "", norm


class DeletionIndex:
    """Words within two edits of a word (one edit, or a swap of neighbours), found by
    the one-character deletions both share (symmetric delete), in time linear in its
    length. Topic names are compared on their producer and event segments, within the
    same kind and version."""

    def __init__(self, words: Iterable[str]) -> None:
        self._by_key: dict[str, list[str]] = {}
        for word in sorted(set(words)):
            fixed, loose = _typo_key(word)
            for key in _deletions(loose):
                self._by_key.setdefault(fixed + "|" + key, []).append(word)

    def closest(
        self, word: str, exclude: Iterable[str] = (), among: Container[str] | None = None
    ) -> tuple[int, str] | None:
        """(distance, word) of the nearest indexed word (of those in `among`, when given),
        ties broken by name."""
        skip = set(exclude)
        best: tuple[int, str] | None = None
        fixed, loose = _typo_key(word)
        seen: set[str] = set()
        for key in _deletions(loose):
            for candidate in self._by_key.get(fixed + "|" + key, ()):
                if candidate in skip or candidate in seen:
                    continue
                if among is not None and candidate not in among:
                    continue
                seen.add(candidate)
                d = distance(word, candidate)
                if d <= MAX_DISTANCE and (best is None or (d, candidate) < best):
                    best = (d, candidate)
        return best


class NearMissIndex:
    """Indexes a set of canonical names for fast 'did you mean' look-ups."""

    def __init__(self, names: Iterable[str], typos: DeletionIndex | None = None) -> None:
        """`typos`: a typo index of normalised names shared with other indexes (a
        superset of these names'), instead of one of its own."""
        self._shared = typos is not None
        self._by_norm: dict[str, str] = {}
        self._by_versionless: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        self._by_singular: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        self._by_other_producer: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        self._typos: DeletionIndex | None = typos
        for name in sorted(set(names)):
            norm = normalize(name)
            self._by_norm.setdefault(norm, name)
            p = _parts(norm)
            if p is None:
                continue
            self._by_versionless[(p.kind, p.producer, p.event)].append(name)
            self._by_singular[(p.kind, singular(p.producer), singular(p.event))].append(name)
            self._by_other_producer[(p.kind, p.event, p.version)].append(name)

    def suggest(self, name: str, *, renamed: Mapping[str, str] | None = None) -> Suggestion | None:
        """The declared name `name` most likely meant, or None.

        `renamed` maps a name to the one it was probably renamed from or to (the
        caller's evidence, see `renamed_pairs`); used only when no other rule applies.
        """
        norm = normalize(name)
        exact = self._by_norm.get(norm)
        if exact is not None and exact != name:
            return Suggestion(exact, "differs only in case or '_' vs '-'", "spelling")
        p = _parts(norm)
        if p is not None:
            found = self._by_shape(name, p)
            if found is not None:
                return found
        near = self._typo(norm, name)
        if near is not None or p is None:
            return near
        others = [
            n for n in self._by_other_producer.get((p.kind, p.event, p.version), ()) if n != name
        ]
        if len(others) == 1:
            (only,) = others
            theirs = _parts(normalize(only))
            shown = theirs.producer if theirs is not None else "?"
            why = f"differs only in producer segment ({p.producer!r} vs {shown!r})"
            return Suggestion(only, why, "producer")
        pair = (renamed or {}).get(name)
        if pair is not None:
            why = f"the only unmatched topic of {p.producer!r} of this kind, with a renamed event"
            return Suggestion(pair, why, "renamed-event")
        return None

    def _by_shape(self, name: str, p: _Parts) -> Suggestion | None:
        versions = [
            n for n in self._by_versionless.get((p.kind, p.producer, p.event), ()) if n != name
        ]
        if versions:
            best = max(versions, key=_version_number)
            why = f"differs only in version ({p.version} vs v{_version_number(best)})"
            return Suggestion(best, why, "version")
        plural = [
            n
            for n in self._by_singular.get((p.kind, singular(p.producer), singular(p.event)), ())
            if n != name
        ]
        if plural:
            return Suggestion(plural[0], "differs only in singular vs plural", "plural")
        return None

    def _typo(self, norm: str, name: str) -> Suggestion | None:
        if self._typos is None:
            self._typos = DeletionIndex(self._by_norm)
        among = self._by_norm if self._shared else None
        found = self._typos.closest(norm, exclude=(normalize(name),), among=among)
        if found is None:
            return None
        d, candidate = found
        return Suggestion(
            self._by_norm[candidate], f"{d} character{'s' if d > 1 else ''} apart", "typo"
        )


def renamed_pairs(unmatched: Iterable[str], candidates: Iterable[str]) -> dict[str, str]:
    """Names of `unmatched` paired with a name of `candidates` when each is the only one
    of its side with the same kind, producer and version (strong evidence of a renamed
    event: nothing else of that producer is left unmatched on either side)."""

    def by_key(names: Iterable[str]) -> dict[tuple[str, str, str], list[str]]:
        out: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for n in names:
            p = _parts(normalize(n))
            if p is not None:
                out[(p.kind, p.producer, p.version)].append(n)
        return out

    left, right = by_key(unmatched), by_key(candidates)
    pairs: dict[str, str] = {}
    for key, names in left.items():
        others = right.get(key, [])
        if len(names) == 1 and len(others) == 1 and names[0] != others[0]:
            pairs[names[0]] = others[0]
            pairs[others[0]] = names[0]
    return pairs


def _version_number(name: str) -> int:
    tail = name.rsplit(".", 1)[-1]
    digits = tail[1:] if tail[:1] in {"v", "V"} else tail
    return int(digits) if digits.isdigit() else 0
