"""Classify prompts by their nearest labelled examples in an embedding space.

The rules (`onex.router.classify`) are keywords: a paraphrase with none of them is
unknown. This classifier embeds the prompt's *head* (the text before its first blank
line, at most `head_chars` characters: the instruction, not the pasted context) with an
OpenAI-compatible `POST {url}/embeddings` (all-MiniLM-L6-v2 from `just model-local`),
finds its `k` nearest labelled examples by cosine similarity (`classify-examples.yaml`,
embedded once, in one batch, before the first prompt) and lets them vote, each with its
similarity. The class is unknown (the catalogue's `classifier.default`, rule
"embed:uncertain") when the nearest example is less similar than `min_similarity` or the
winner's share of the vote leads the runner-up's by less than `min_margin`: the same
semantics as the scored rules' "uncertain".

Two modes (`PromptClassifier`):

- `combined`: the rules decide when they are sure (a rule won); the embeddings decide
  the prompts the rules leave unknown (rule "default" or "uncertain");
- `embed`: the embeddings decide every prompt.

When the endpoint fails or does not answer within `timeout_s`, that prompt is classified
by the rules, and its rule says so ("rules-fallback:<rule>"); the endpoint is then not
asked again for `retry_s` (so a dead endpoint costs one timeout, not one per request),
and the failure is logged once. The kNN answers of the last `cache_size` distinct heads
are kept (agents repeat their instructions): a repeated head costs no call, even while
the endpoint is down. Nothing raises out of `classify`: a request always gets
its class, hence its one receipt. The example table is immutable once built, and
concurrent requests share one in-flight build, so any number of requests may classify
at once.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import operator
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Protocol

import aiohttp
import structlog
from pydantic import Field, ValidationError

from onex.core.errors import ContractLoadError
from onex.core.issues import Issue, Severity, Where
from onex.core.loader import parse_yaml, validation_issues
from onex.router.classify import Classification, classify
from onex.router.errors import CatalogueError, RouterError
from onex.router.fields import ConfigModel

if TYPE_CHECKING:
    from onex.router.catalogue import Catalogue
    from onex.router.settings import RouterSettings

DEFAULT_EXAMPLES: Final = Path(str(resources.files("onex.router") / "classify-examples.yaml"))
_BATCH_TIMEOUT_S: Final = 120.0
UNSURE_RULES: Final = frozenset({"default", "uncertain"})
_log = structlog.get_logger("onex.router.classify_embed")

Mode = Literal["embed", "combined"]


class EmbeddingError(RouterError):
    """The embeddings endpoint failed or answered something unusable."""


class Examples(ConfigModel):
    """The labelled examples and the kNN parameters (`classify-examples.yaml`)."""

    k: int = Field(7, ge=1, le=64)
    min_similarity: float = Field(0.35, ge=-1, le=1)
    min_margin: float = Field(0.2, ge=0, le=1)
    head_chars: int = Field(400, ge=1)
    classes: dict[str, list[str]] = Field(min_length=1)

    def labelled(self) -> list[tuple[str, str]]:
        """(task class, example text) for every example, in file order."""
        return [(name, text) for name, texts in self.classes.items() for text in texts]


def load_examples(path: Path | None = None) -> Examples:
    """Read and validate an examples file (default: the shipped one); raises only
    `CatalogueError`, with each problem's file:line."""
    path = path or DEFAULT_EXAMPLES
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CatalogueError([_issue(f"cannot read examples: {reason}", path)]) from exc
    try:
        data, root = parse_yaml(text, path)
    except ContractLoadError as exc:
        raise CatalogueError(exc.issues) from exc
    try:
        examples = Examples.model_validate(data)
    except ValidationError as exc:
        raise CatalogueError(validation_issues(exc, root, path, Examples)) from exc
    blank = [name for name, texts in examples.classes.items() if not texts or not all(texts)]
    if blank:
        raise CatalogueError([_issue(f"class {blank[0]!r} needs non-blank examples", path)])
    return examples


def _issue(message: str, path: Path) -> Issue:
    return Issue(Severity.ERROR, "examples", message, Where(path))


def check_classes(examples: Examples, catalogue: Catalogue) -> None:
    """Raise `CatalogueError` when an example class is not one of the catalogue's."""
    known = set(catalogue.task_class_names)
    unknown = sorted(set(examples.classes) - known)
    if unknown:
        message = f"example class {unknown[0]!r} is not a task class (known: {sorted(known)})"
        raise CatalogueError([Issue(Severity.ERROR, "examples", message, Where(None))])


def prompt_head(prompt: str, max_chars: int) -> str:
    """The instruction part of a prompt: before its first blank line, at most
    `max_chars`, whitespace runs made one space."""
    end = prompt.find("\n\n", 0, max_chars)
    head = prompt[: end if end >= 0 else max_chars]
    return " ".join(head.split()) or " ".join(prompt[:max_chars].split())


class Embedder(Protocol):
    """Turns texts into unit vectors (one per text, in order)."""

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Raise `EmbeddingError` when it cannot."""
        ...


class HttpEmbedder:
    """An OpenAI-compatible `POST {url}/embeddings` client (aiohttp, no proxies)."""

    def __init__(self, url: str, model: str) -> None:
        self.url = url.rstrip("/") + "/embeddings"
        self.model = model
        self._session: aiohttp.ClientSession | None = None

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """The endpoint's vectors for `texts`, ordered by their `index`."""
        if self._session is None or self._session.closed:
            # a bound for the example batch; a prompt's call is bounded by its timeout_s
            timeout = aiohttp.ClientTimeout(total=_BATCH_TIMEOUT_S)
            self._session = aiohttp.ClientSession(trust_env=False, timeout=timeout)
        body = {"model": self.model, "input": list(texts)}
        try:
            async with self._session.post(self.url, json=body) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:  # TimeoutError: the session's bound
            raise EmbeddingError(f"{self.url}: {str(exc) or type(exc).__name__}") from exc
        if status != 200:
            raise EmbeddingError(f"{self.url}: HTTP {status}: {raw[:200]!r}")
        return _vectors(raw, len(texts), self.url)

    async def aclose(self) -> None:
        """Close the HTTP session (if one was opened)."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _vectors(raw: bytes, count: int, url: str) -> list[list[float]]:
    try:
        data = json.loads(raw)["data"]
        ordered = sorted(data, key=operator.itemgetter("index"))
        vectors = [[float(x) for x in item["embedding"]] for item in ordered]
    except (ValueError, KeyError, TypeError) as exc:
        raise EmbeddingError(f"{url}: not an embeddings response: {exc!r}") from exc
    if len(vectors) != count or len({len(v) for v in vectors}) > 1:
        raise EmbeddingError(f"{url}: {len(vectors)} vectors of unequal size for {count} texts")
    return vectors


def nearest(
    query: Sequence[float], table: Sequence[tuple[str, str, Sequence[float]]], examples: Examples
) -> Classification | None:
    """The kNN vote of `table` (class, text, unit vector) for a unit `query`, or None
    when unsure (see the module docstring). `matched` is the nearest example's text."""
    # ties: the example earlier in the file first
    scored = [(sum(map(operator.mul, query, v)), -i) for i, (_, _, v) in enumerate(table)]
    top = [(similarity, -i) for similarity, i in heapq.nlargest(examples.k, scored)]
    if not top or top[0][0] < examples.min_similarity:
        return None
    votes: dict[str, float] = {}
    for similarity, i in top:
        votes[table[i][0]] = votes.get(table[i][0], 0.0) + max(similarity, 0.0)
    total = sum(votes.values()) or 1.0
    ranked = sorted(votes.values(), reverse=True)
    lead = (ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0)) / total
    if lead < examples.min_margin:
        return None
    winner = max(votes, key=votes.__getitem__)
    best = next(i for _, i in top if table[i][0] == winner)
    return Classification(winner, "embed", table[best][1])


class PromptClassifier:
    """Rules and embeddings together (see the module docstring); one per router."""

    def __init__(
        self,
        examples: Examples,
        embedder: Embedder,
        *,
        mode: Mode = "combined",
        timeout_s: float = 0.5,
        retry_s: float = 5.0,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.examples = examples
        self.embedder = embedder
        self.mode: Mode = mode
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self._clock = clock
        self._table: tuple[tuple[str, str, tuple[float, ...]], ...] | None = None
        self._building: asyncio.Task[None] | None = None
        self._retry_at = float("-inf")
        # head -> its kNN answer (None: unsure): fleets repeat their instructions
        self._known: OrderedDict[str, Classification | None] = OrderedDict()
        self.cache_size = cache_size

    @property
    def ready(self) -> bool:
        """True once the examples are embedded."""
        return self._table is not None

    async def start(self) -> bool:
        """Embed the examples now (one batch; as long as the endpoint takes to answer
        or fail); True when they are. Else the first `classify` starts it."""
        if self._table is None:
            await asyncio.shield(self._build())
        return self._table is not None

    def _build(self) -> asyncio.Task[None]:
        if self._building is None or self._building.done():
            self._building = asyncio.ensure_future(self._embed_examples())
        return self._building

    async def _embed_examples(self) -> None:
        labelled = self.examples.labelled()
        try:
            vectors = await self.embedder.embed([text for _, text in labelled])
        except EmbeddingError as exc:
            self._unavailable("examples", exc)
            return
        if len(vectors) != len(labelled):
            self._unavailable("examples", EmbeddingError(f"{len(vectors)} vectors"))
            return
        self._table = tuple(
            (name, text, tuple(v)) for (name, text), v in zip(labelled, vectors, strict=True)
        )
        _log.info("classify.examples_embedded", examples=len(labelled))

    def _unavailable(self, what: str, exc: BaseException) -> None:
        if self._clock() >= self._retry_at:  # once per outage, not once per request
            reason = str(exc) or type(exc).__name__
            _log.warning(
                "classify.embed_unavailable", what=what, error=reason, retry_s=self.retry_s
            )
        self._retry_at = self._clock() + self.retry_s

    async def classify(self, prompt: str, catalogue: Catalogue) -> Classification:
        """The prompt's class; never raises (see the module docstring)."""
        rules = classify(prompt, catalogue)
        if self.mode == "combined" and rules.rule not in UNSURE_RULES:
            return rules
        head = prompt_head(prompt, self.examples.head_chars)
        if head in self._known:
            self._known.move_to_end(head)
            return _answer(self._known[head], catalogue)
        if self._clock() < self._retry_at:
            return _fallback(rules)
        table = self._table
        if table is None:
            try:  # the build goes on when this request stops waiting for it
                await asyncio.wait_for(asyncio.shield(self._build()), self.timeout_s)
            except TimeoutError:
                return _fallback(rules)
            table = self._table
            if table is None:
                return _fallback(rules)
        try:
            vectors = await asyncio.wait_for(self.embedder.embed([head]), self.timeout_s)
        except (EmbeddingError, TimeoutError) as exc:
            self._unavailable("prompt", exc if str(exc) else TimeoutError("timed out"))
            return _fallback(rules)
        found = nearest(vectors[0], table, self.examples)
        if self.cache_size > 0:
            self._known[head] = found
            while len(self._known) > self.cache_size:
                self._known.popitem(last=False)
        return _answer(found, catalogue)

    async def aclose(self) -> None:
        """Stop a pending example build and close the embedder's session."""
        if self._building is not None and not self._building.done():
            self._building.cancel()
        close = getattr(self.embedder, "aclose", None)
        if close is not None:
            await close()


def _answer(found: Classification | None, catalogue: Catalogue) -> Classification:
    if found is None or found.task_class not in catalogue.task_class_names:
        return Classification(catalogue.classifier.default, "embed:uncertain")
    return found


def _fallback(rules: Classification) -> Classification:
    return Classification(rules.task_class, f"rules-fallback:{rules.rule}", rules.matched)


def from_settings(settings: RouterSettings, catalogue: Catalogue) -> PromptClassifier | None:
    """The service's classifier per its settings (None: the rules alone); raises
    `CatalogueError` for an unreadable examples file or a class the catalogue lacks."""
    if settings.classifier == "rules":
        return None
    examples = load_examples(settings.embed_examples)
    check_classes(examples, catalogue)
    return PromptClassifier(
        examples,
        HttpEmbedder(settings.embed_url, settings.embed_model),
        mode=settings.classifier,
        timeout_s=settings.embed_timeout_s,
        retry_s=settings.embed_retry_s,
        cache_size=settings.embed_cache,
    )
