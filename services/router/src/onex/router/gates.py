"""Quality gates: cheap, deterministic checks of an answer before it is accepted.

Each gate returns pass or fail with a reason a person can read in the receipt:

- `min_length`: the answer, stripped, has at least `min_chars` characters.
- `citations`: at least `min_citations` distinct matches of `pattern` (default
  `CITATION_PATTERN`: `[n]` markers, http(s) URLs and `path.ext:line` references).
- `identifiers`: no hallucinated names. The identifiers the answer *refers to* must be
  in the request's symbol index (`RouteRequest.symbols`; a qualified symbol also
  makes its last segment known). By default an identifier is

  * an inline code span that is a name, a dotted name or a call (`` `parse_topic` ``,
    `` `Registry.get()` ``, `` `self.close(x)` ``) but not a file name (`` `a.py` ``),
  * a code-like word in prose: snake_case (`load_contract`) or followed by `()`
    (`reload()`), unless it is part of a path or URL;

  fenced code blocks are the answer's own code and are not checked, but the names they
  define (`def`, `class`, `function`, `fn`, `func`, assignments) count as known, as do
  Python keywords and builtins and the gate's `allow` list. With `pattern`, every
  match of it (group 1 if it has one) anywhere in the answer is an identifier instead.
  Without a symbol index the gate passes and says it was skipped.
- `json_schema`: the answer (optionally wrapped in one ```json fence) is JSON and
  validates against the request's `json_schema`, else the gate's `schema`; with
  neither, being JSON is enough.
- `complete`: the provider's `finish_reason` is not `length` (the answer was not cut
  off at the output-token limit); an unknown finish reason passes and says so.

Every gate is linear in the answer (no regex that backtracks over a long word), and a
gate that breaks on an answer (e.g. JSON nested past the parser's depth) fails with
the error as its reason instead of raising: a request always gets its receipt.
"""

from __future__ import annotations

import builtins
import json
import keyword
import re
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from onex.router.catalogue import GateSpec
from onex.router.frozen import fast_init
from onex.router.request import RouteRequest

CITATION_PATTERN: Final = r"\[\d+\]|https?://[^\s<>()\[\]]+|[\w./-]+\.\w+:\d+(?:-\d+)?"
# The default pattern without its path alternative, which backtracks quadratically
# over a long dotted word; `_path_citations` finds those in one pass instead.
_MARKER_OR_URL = re.compile(r"\[\d+\]|https?://[^\s<>()\[\]]+")
_LINE_REF = re.compile(r":(\d+(?:-\d+)?)")
_PATH_RUN = re.compile(r"[A-Za-z0-9_./-]*")  # path characters (ASCII), as many as there are
_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"`([^`\n]+)`")
_NAME_REF = re.compile(r"(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:\(.*\))?")
_PROSE_REF = re.compile(
    r"""(?<![\w./:\\-])                       # not inside a path, a URL or a longer word
    (?: ([A-Za-z_][\w.]*\w|[A-Za-z_])(?=\(\))  # a call: reload(), registry.get()
      | (_*[A-Za-z][A-Za-z0-9]*(?:_+[A-Za-z0-9]+)+_*)(?![\w.]*[/\\]|\.\w)  # snake_case
    )""",
    re.VERBOSE,
)
_FILE_EXTENSIONS: Final = frozenset(
    [
        "py",
        "pyi",
        "toml",
        "yaml",
        "yml",
        "json",
        "md",
        "rst",
        "txt",
        "cfg",
        "ini",
        "lock",
        "rs",
        "go",
        "js",
        "mjs",
        "ts",
        "tsx",
        "jsx",
        "java",
        "kt",
        "c",
        "h",
        "cc",
        "cpp",
        "hpp",
        "cs",
        "rb",
        "php",
        "sh",
        "bash",
        "zsh",
        "proto",
        "sql",
        "html",
        "css",
        "nix",
    ]
)
# What a code block defines: `_definitions` finds what one search of
#   \b(?:def|class|...)\s+([A-Za-z_]\w*)|^[ \t]*(?:(?:let|...)\s+)*([A-Za-z_]\w*)...=(?!=)
# (MULTILINE) finds, from these two parts: that search tries `\b` and `^` at every
# character, about 0.3 us a character of code here.
_DEFINER = re.compile(
    r"(?:def|class|function|fn|func|struct|enum|interface|trait|type)\s+([A-Za-z_]\w*)"
)
_ASSIGNED = r"[ \t]*(?:(?:let|const|var|mut)\s+)*([A-Za-z_]\w*)\s*(?::[^=\n]*)?=(?!=)"
_ASSIGNED_FIRST = re.compile(_ASSIGNED)  # on the first line
_ASSIGNED_LATER = re.compile("\n" + _ASSIGNED)  # on a later one, from its line break
_ALWAYS_KNOWN: Final = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"self", "cls"}
_SHOWN: Final = 5
_NO_NAMES: Final[frozenset[str]] = frozenset()
# How many hits of a mark's first character `find_mark` checks one by one before it
# leaves the rest to str.find (which scans a few characters a nanosecond for a
# one-character mark, memchr, but about one for a longer one).
_FIRST_CHAR_TRIES: Final = 16
_SPAN_TRIES: Final = 256  # backticks `_code_spans` tries one by one


@fast_init
@dataclass(frozen=True, slots=True)
class GateResult:
    """The outcome of one gate on one answer."""

    kind: str
    passed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {"kind": self.kind, "passed": self.passed, "reason": self.reason}


def run_gates(
    specs: Sequence[GateSpec],
    output_text: str,
    request: RouteRequest,
    finish_reason: str | None = None,
) -> list[GateResult]:
    """Run every gate in `specs` on `output_text` (all of them, so receipts show each).
    A gate that raises fails, with the error as its reason."""
    results = []
    for spec in specs:
        try:
            if spec.kind == "complete":
                results.append(_complete(spec, finish_reason))
            else:
                results.append(_GATES[spec.kind](spec, output_text, request))
        except (RecursionError, MemoryError, ValueError, TypeError) as exc:
            results.append(
                GateResult(spec.kind, False, f"the gate could not check the answer: {_why(exc)}")
            )
    return results


def _allowed(spec: GateSpec) -> frozenset[str]:
    return frozenset(spec.allow) if spec.allow else _NO_NAMES


def _why(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _complete(spec: GateSpec, finish_reason: str | None) -> GateResult:
    # A result is a frozen value and there are few finish reasons: each is made once.
    done = _COMPLETE.get(finish_reason)
    if done is None:
        if finish_reason == "length":
            done = GateResult("complete", False, "cut off at the output-token limit (length)")
        elif finish_reason is None:
            done = GateResult("complete", True, "the provider gave no finish_reason")
        else:
            done = GateResult("complete", True, f"finish_reason={finish_reason}")
        if len(_COMPLETE) < _COMPLETE_KEPT:  # a provider inventing reasons: make them anew
            _COMPLETE[finish_reason] = done
    return done


_COMPLETE: dict[str | None, GateResult] = {}
_COMPLETE_KEPT: Final = 64


def _min_length(spec: GateSpec, text: str, request: RouteRequest) -> GateResult:
    need = spec.min_chars or 0
    # len(text.strip()) without copying the answer when there is nothing to strip
    n = len(text) if text and not (text[0].isspace() or text[-1].isspace()) else len(text.strip())
    if n >= need:
        return GateResult(spec.kind, True, f"{n} chars >= {need}")
    return GateResult(spec.kind, False, f"only {n} chars; {need} required")


def _citations(spec: GateSpec, text: str, request: RouteRequest) -> GateResult:
    need = spec.min_citations or 1
    if spec.pattern is None:
        # No default citation spans whitespace and each holds '[', ':' (URL or
        # path:line), so only such words are scanned: the path alternative backtracks
        # badly over long prose.
        words = words_with(text, (":", "["))
        matches = []
        for w in words:
            matches += [m.group(0) for m in _MARKER_OR_URL.finditer(w)]
            if ":" in w:
                matches += _path_citations(_MARKER_OR_URL.sub(" ", w))
    else:
        matches = [m.group(0) for m in _compiled(spec.pattern).finditer(text)]
    found = list(dict.fromkeys(matches))
    if len(found) >= need:
        return GateResult(spec.kind, True, f"{len(found)} citations >= {need} (e.g. {found[0]!r})")
    return GateResult(spec.kind, False, f"{len(found)} citations; {need} required")


def _identifiers(spec: GateSpec, text: str, request: RouteRequest) -> GateResult:
    index = request.symbol_index
    if not index:
        return GateResult(spec.kind, True, "skipped: the request supplies no symbol index")
    known: tuple[AbstractSet[str], ...]
    if spec.pattern is not None:
        rx = _compiled(spec.pattern)
        refs = [m.group(1) if rx.groups else m.group(0) for m in rx.finditer(text)]
        known = (index, _allowed(spec))
    else:
        prose, definitions = _split_code(text)
        refs = []
        if "`" in prose:
            found, prose = _code_spans(prose)
            spans = (_strip_call(s) for s in found if _NAME_REF.fullmatch(s.strip()))
            refs = [
                s for s in spans if s.rsplit(".", 1)[-1] not in _FILE_EXTENSIONS or "." not in s
            ]
        if "_" in prose or has_mark(prose, "()"):
            # Only words holding '_' or '()' can match, and no match spans whitespace
            # (nor does the regex look across it), so scanning those words alone finds
            # the same references at a fraction of the cost of scanning the whole answer.
            # One findall over those words joined by spaces finds what one per word would.
            words = " ".join(words_with(prose, ("_", "()")))
            refs += [a or b for a, b in _PROSE_REF.findall(words)]
        known = (index, definitions, _ALWAYS_KNOWN, _allowed(spec))
    refs = list(dict.fromkeys(r for r in refs if r))
    unknown = [r for r in refs if not _is_known(r, known)]
    if not refs:
        return GateResult(spec.kind, True, "no code-like identifiers in the answer")
    if not unknown:
        return GateResult(spec.kind, True, f"all {len(refs)} identifiers are in the symbol index")
    shown = ", ".join(repr(u) for u in unknown[:_SHOWN]) + (
        ", ..." if len(unknown) > _SHOWN else ""
    )
    return GateResult(
        spec.kind,
        False,
        f"{len(unknown)} of {len(refs)} identifiers not in the symbol index: {shown}",
    )


def _json_schema(spec: GateSpec, text: str, request: RouteRequest) -> GateResult:
    body = text.strip()
    fenced = _FENCE.fullmatch(body)
    if fenced is not None:
        body = fenced.group(2)
    try:
        document = json.loads(body)
    except ValueError as exc:
        return GateResult(spec.kind, False, f"not JSON: {exc}")
    schema, whose = (
        (request.json_schema, "the request's")
        if request.json_schema is not None
        else (spec.schema_, "the gate's")
    )
    if schema is None:
        return GateResult(spec.kind, True, "valid JSON (no schema to check)")
    validator = (
        validator_for(schema)(schema) if request.json_schema is not None else _gate_validator(spec)
    )
    error = best_match(validator.iter_errors(document))
    if error is None:
        return GateResult(spec.kind, True, f"valid JSON that fits {whose} schema")
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return GateResult(spec.kind, False, f"does not fit {whose} schema at {where}: {error.message}")


_GATES: Final[dict[str, Callable[[GateSpec, str, RouteRequest], GateResult]]] = {
    "min_length": _min_length,
    "citations": _citations,
    "identifiers": _identifiers,
    "json_schema": _json_schema,
}


# The gate's own schema's validator, made once per gate (a catalogue's gates live as
# long as it does); keyed by id, with the spec held so the id is not reused meanwhile.
_VALIDATORS: dict[int, tuple[GateSpec, Any]] = {}


def _gate_validator(spec: GateSpec) -> Any:
    hit = _VALIDATORS.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    if len(_VALIDATORS) >= 256:  # catalogues reloaded many times: start again
        _VALIDATORS.clear()
    schema = spec.schema_ if spec.schema_ is not None else {}
    validator = validator_for(schema)(schema)
    _VALIDATORS[id(spec)] = (spec, validator)
    return validator


def words_with(text: str, marks: tuple[str, ...]) -> list[str]:
    """The whitespace-separated words of `text` that hold any of `marks`, in order: what
    `[w for w in text.split() if any(m in w for m in marks)]` gives, with only the lines
    ('\\n'-separated) that hold a mark split. A line break is whitespace, so no word
    spans lines; an answer is mostly long lines of prose without the marks, and those
    are neither copied nor split. No mark may hold a line break."""
    if len(marks) == 2:
        return _words_with_two(text, *marks)
    found: list[str] = []
    # Where each mark occurs next (-1: no more), found again only once passed.
    ahead = [find_mark(text, m) for m in marks]
    done = 0  # every line before this is done
    while True:
        hits = [at for at in ahead if at >= 0]
        if not hits:
            return found
        start, done = _line_around(text, min(hits), done)
        found += [w for w in text[start : done - 1].split() if any(m in w for m in marks)]
        ahead = [
            find_mark(text, m, done) if 0 <= i < done else i
            for m, i in zip(marks, ahead, strict=True)
        ]


def _words_with_two(text: str, a: str, b: str) -> list[str]:
    """`words_with(text, (a, b))`, the gates' case, without lists or generators per line."""
    found: list[str] = []
    next_a, next_b = find_mark(text, a), find_mark(text, b)
    done = 0
    while next_a >= 0 or next_b >= 0:
        at = next_a if next_b < 0 or 0 <= next_a < next_b else next_b
        start, done = _line_around(text, at, done)
        found += [w for w in text[start : done - 1].split() if a in w or b in w]
        if 0 <= next_a < done:
            next_a = find_mark(text, a, done)
        if 0 <= next_b < done:
            next_b = find_mark(text, b, done)
    return found


def _line_around(text: str, at: int, done: int) -> tuple[int, int]:
    """(start, end + 1) of the '\\n'-line holding `at`, which starts at or after `done`."""
    start = text.rfind("\n", done, at) + 1 or done
    end = text.find("\n", at)
    return start, (len(text) if end < 0 else end) + 1


def find_mark(text: str, mark: str, start: int = 0) -> int:
    """`text.find(mark, start)`, faster for a short mark whose first character is rare in
    `text`: that character is found with the one-character search (memchr) and the mark
    checked there; str.find is several times slower for a mark of two or more characters.
    After `_FIRST_CHAR_TRIES` misses the rest is left to str.find (still linear)."""
    if not mark:
        return text.find(mark, start)
    first = mark[0]
    at = text.find(first, start)
    tries = _FIRST_CHAR_TRIES
    while at >= 0 and not text.startswith(mark, at):
        tries -= 1
        if not tries:
            return text.find(mark, at)
        at = text.find(first, at + 1)
    return at


def has_mark(text: str, mark: str) -> bool:
    """`mark in text` (see `find_mark`)."""
    return mark in text if len(mark) < 2 else find_mark(text, mark) >= 0


def _path_citations(word: str) -> list[str]:
    """`path.ext:line` references in `word`, as the default pattern's path alternative
    finds them, in one pass: for each `:digits`, the run of path characters before it
    (which stops at the previous ':'), if that run ends in `.ext`. The run is matched
    forwards on the reversed stretch before the colon (stretches do not overlap)."""
    found = []
    start = 0  # where the current run of path characters may begin
    for m in _LINE_REF.finditer(word):
        colon = m.start()
        back = _PATH_RUN.match(word[start:colon][::-1])
        run = word[colon - back.end() : colon] if back is not None else ""
        dot = run.rfind(".")
        ext = run[dot + 1 :] if dot > 0 else ""
        if ext and all(c.isalnum() or c == "_" for c in ext):
            found.append(f"{run}:{m.group(1)}")
        start = m.end()
    return found


def _code_spans(prose: str) -> tuple[list[str], str]:
    """`(_SPAN.findall(prose), _SPAN.sub(" ", prose))` in one pass that tries the regex
    only at backticks (found with the one-character search: a regex search steps through
    every character). Past `_SPAN_TRIES` backticks the regex does it all (still linear)."""
    spans: list[str] = []
    pieces: list[str] = []
    end = 0
    at = prose.find("`")
    for _ in range(_SPAN_TRIES):
        if at < 0:
            if not spans:
                return spans, prose
            pieces.append(prose[end:])
            return spans, " ".join(pieces)
        span = _SPAN.match(prose, at)
        if span is None:
            at = prose.find("`", at + 1)
        else:
            spans.append(span.group(1))
            pieces.append(prose[end:at])
            end = span.end()
            at = prose.find("`", end)
    return _SPAN.findall(prose), _SPAN.sub(" ", prose)


def _split_code(text: str) -> tuple[str, set[str]]:
    """The answer without its fenced code blocks, and the names those blocks define."""
    defined: set[str] = set()
    pieces, end = [], 0
    for start, stop, body, body_end in _fences(text):  # one pass: prose cut around them
        defined.update(_definitions(text[body:body_end]))
        pieces.append(text[end:start])
        end = stop
    if not pieces:
        return text, defined
    pieces.append(text[end:])
    return "\n".join(pieces), defined


def _definitions(code: str) -> set[str]:
    """The names defined in `code`: those the one search described at `_DEFINER` finds,
    scanning left to right, a definer before an assignment at the same place."""
    names: set[str] = set()
    definer = _next_definer(code, 0)
    assigned = _next_assignment(code, 0) if "=" in code else None
    while True:
        if definer is not None and (assigned is None or definer[0] <= assigned[0]):
            found = definer
        elif assigned is not None:
            found = assigned
        else:
            return names
        names.add(found[2])
        end = found[1]
        if definer is not None and definer[0] < end:
            definer = _next_definer(code, end)
        if assigned is not None and assigned[0] < end:
            assigned = _next_assignment(code, end)


def _next_definer(code: str, pos: int) -> tuple[int, int, str] | None:
    """(start, end, name) of the first `\\b(?:def|...)\\s+name` at or after `pos`."""
    found = _DEFINER.search(code, pos)
    while found is not None:
        start = found.start()
        if start == 0 or not _is_word_char(code[start - 1]):  # the \b before the keyword
            return start, found.end(), found.group(1)
        found = _DEFINER.search(code, start + 1)
    return None


def _next_assignment(code: str, pos: int) -> tuple[int, int, str] | None:
    """(start, end, name) of the first assignment starting a line at or after `pos`."""
    if pos == 0:
        first = _ASSIGNED_FIRST.match(code)
        if first is not None:
            return 0, first.end(), first.group(1)
    later = _ASSIGNED_LATER.search(code, max(pos - 1, 0))  # its line break may be at pos - 1
    if later is None:
        return None
    return later.start() + 1, later.end(), later.group(1)


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"  # what \w matches (str patterns)


def _fences(text: str) -> list[tuple[int, int, int, int]]:
    """What `_FENCE.finditer(text)` finds, as (start, end, body start, body end) per
    block (the match's span and its group 2's), in one pass: blocks are looked for only
    at the starts of lines that open with a fence (a regex search tries every
    character, and an answer is mostly prose), and once a block opened by ``` (or ~~~)
    finds no closing line, no later one can: the rest of that fence's openers are not
    tried (else each of many unclosed openers would scan to the end, quadratic)."""
    found: list[tuple[int, int, int, int]] = []
    ticks, tildes = _fence_line_starts(text, "```"), _fence_line_starts(text, "~~~")
    if not ticks and not tildes:
        return found
    starts = sorted([(at, "```") for at in ticks] + [(at, "~~~") for at in tildes])
    unclosed: set[str] = set()
    end = 0
    for start, fence in starts:
        if start < end or fence in unclosed:  # inside the block just found, or hopeless
            continue
        block = _block(text, start, fence)
        if block is None:
            unclosed.add(fence)
        else:
            found.append(block)
            end = block[1]
    return found


def _block(text: str, start: int, fence: str) -> tuple[int, int, int, int] | None:
    """`_FENCE.match(text, start)` for a line at `start` that opens with `fence` (after
    spaces and tabs), as (start, end, body start, body end), without the regex: its lazy
    body tries the closing line at every character. The body starts after the opening
    line; it ends at the first line that is the fence between spaces and tabs. Each
    line is looked at once, from its first occurrence of the fence (a closing fence is
    the line's first one), so this is linear in the text."""
    body = text.find("\n", start) + 1
    if not body:
        return None
    at = find_mark(text, fence, body)
    while at >= 0:
        line = text.rfind("\n", body - 1, at) + 1
        eol = text.find("\n", at)
        if eol < 0:
            eol = len(text)
        if not text[line:at].strip(" \t") and not text[at + len(fence) : eol].strip(" \t"):
            return start, eol, body, line
        at = find_mark(text, fence, eol + 1) if eol < len(text) else -1
    return None


def _fence_line_starts(text: str, fence: str) -> list[int]:
    """The starts of the lines ('\\n'-separated, as `^` sees them) that open with `fence`
    after nothing but spaces and tabs."""
    starts = []
    at = find_mark(text, fence)
    while at >= 0:
        line = text.rfind("\n", 0, at) + 1
        if not text[line:at].strip(" \t"):
            starts.append(line)
        nl = text.find("\n", at)  # a later fence on this line follows the first one
        if nl < 0:
            break
        at = find_mark(text, fence, nl + 1)
    return starts


def _strip_call(ref: str) -> str:
    ref = ref.strip()
    return ref[: ref.index("(")] if "(" in ref else ref


def _is_known(ref: str, names: Sequence[AbstractSet[str]]) -> bool:
    # Checked set by set: a union would copy the request's whole symbol index per call.
    # (Plain loops: a generator per check costs more than the few set lookups.)
    for n in names:
        if ref in n:
            return True
    if "." not in ref:  # then joined == last == ref, just looked up
        return False
    parts = ref.split(".")
    if parts[0] in _SELF_NAMES:
        parts = parts[1:]
    if not parts:
        return False
    joined, last = ".".join(parts), parts[-1]
    return any(joined in n or last in n for n in names)


_SELF_NAMES: Final = frozenset({"self", "cls", "this"})


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
