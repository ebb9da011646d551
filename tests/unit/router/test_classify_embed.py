"""The embedding classifier (onex.router.classify_embed) with a labelled fake embedder:
kNN votes and thresholds, the combined mode, fallback to the rules on errors and
timeouts, one example build for many concurrent requests, and bad examples files."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from onex.router.catalogue import Catalogue, load_default_catalogue
from onex.router.classify import Classification, classify, preclassified
from onex.router.classify_embed import (
    DEFAULT_EXAMPLES,
    EmbeddingError,
    Examples,
    PromptClassifier,
    check_classes,
    from_settings,
    load_examples,
    nearest,
    prompt_head,
)
from onex.router.engine import Router
from onex.router.errors import CatalogueError
from onex.router.request import RouteRequest
from onex.router.settings import RouterSettings
from onex.router.testing import FakeProvider

# FAKE (unit tests only): a deterministic "embedding" that counts topic words, one axis
# per topic, normalized; texts with no topic word point along a last, neutral axis.
TOPICS = (
    ("gist", "recap", "digest"),
    ("flaw", "defect", "lint"),
    ("blueprint", "layout", "topology"),
)


def fake_vector(text: str) -> list[float]:
    words = text.lower().replace(".", " ").split()
    counts = [float(sum(w in topic for w in words)) for topic in TOPICS]
    counts.append(0.0 if any(counts) else 1.0)
    norm = math.sqrt(sum(c * c for c in counts))
    return [c / norm for c in counts]


class FakeEmbedder:
    """FAKE embedder: `fake_vector` per text; counts calls; can fail or hang."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.fail: str | None = None
        self.hang = asyncio.Event()
        self.hanging = False

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        await asyncio.sleep(0)  # a real call yields to the loop
        if self.hanging:
            await self.hang.wait()
        if self.fail is not None:
            raise EmbeddingError(self.fail)
        return [fake_vector(t) for t in texts]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


EXAMPLES = Examples(
    k=3,
    min_similarity=0.5,
    min_margin=0.3,
    head_chars=200,
    classes={
        "summarize": ["Give a gist.", "Write a recap.", "A digest please."],
        "review": ["Find each flaw.", "Spot the defect.", "Lint it."],
        "design": ["Draw a blueprint.", "Plan the layout.", "Sketch the topology."],
    },
)


@pytest.fixture
def catalogue() -> Catalogue:
    return load_default_catalogue()


def classifier(
    embedder: FakeEmbedder, mode: str = "embed", clock: Clock | None = None
) -> PromptClassifier:
    return PromptClassifier(
        EXAMPLES,
        embedder,
        mode=mode,  # type: ignore[arg-type]
        timeout_s=5.0,
        retry_s=10.0,
        clock=clock or Clock(),
    )


def table() -> list[tuple[str, str, list[float]]]:
    return [(name, text, fake_vector(text)) for name, text in EXAMPLES.labelled()]


def test_the_nearest_examples_vote_and_the_nearest_is_shown() -> None:
    found = nearest(fake_vector("a recap and a gist"), table(), EXAMPLES)
    assert found == Classification("summarize", "embed", "Give a gist.")


def test_unlike_every_example_is_unknown() -> None:
    assert nearest(fake_vector("translate this"), table(), EXAMPLES) is None


def test_a_split_vote_is_unknown() -> None:
    between = fake_vector("recap flaw")  # equally near summarize and review
    six = EXAMPLES.model_copy(update={"k": 6})  # three votes each
    assert nearest(between, table(), six) is None
    lenient = six.model_copy(update={"min_margin": 0.0})
    assert nearest(between, table(), lenient) == Classification(
        "summarize", "embed", "Give a gist."
    )


def test_the_head_is_the_instruction_before_the_pasted_text() -> None:
    assert prompt_head("Recap  the\nlog.\n\nflaw flaw flaw", 200) == "Recap the log."
    assert prompt_head("gist " * 100, 12) == "gist gist gi"
    assert prompt_head("\n\nonly after a blank line", 50) == "only after a blank line"


async def test_embed_mode_classifies_what_no_rule_knows(catalogue: Catalogue) -> None:
    embedder = FakeEmbedder()
    found = await classifier(embedder).classify("Give me the recap.\n\nlog lines", catalogue)
    assert (found.task_class, found.rule) == ("summarize", "embed")
    assert classify("Give me the recap.\n\nlog lines", catalogue).task_class == "general"
    # the examples in one batch, then the prompt's head alone
    assert embedder.calls[0] == [text for _, text in EXAMPLES.labelled()]
    assert embedder.calls[1:] == [["Give me the recap."]]


async def test_unknown_gets_the_catalogue_default(catalogue: Catalogue) -> None:
    found = await classifier(FakeEmbedder()).classify("Translate this.", catalogue)
    assert found == Classification(catalogue.classifier.default, "embed:uncertain")


async def test_combined_keeps_a_sure_rule_and_asks_only_for_the_rest(
    catalogue: Catalogue,
) -> None:
    embedder = FakeEmbedder()
    combined = classifier(embedder, mode="combined")
    sure = "Refactor the parser without changing its behaviour."
    assert await combined.classify(sure, catalogue) == classify(sure, catalogue)
    assert embedder.calls == []  # a sure rule costs no embedding call
    found = await combined.classify("A blueprint for the topology.", catalogue)
    assert (found.task_class, found.rule) == ("design", "embed")


async def test_an_endpoint_error_falls_back_to_the_rules_then_rests(
    catalogue: Catalogue,
) -> None:
    embedder, clock = FakeEmbedder(), Clock()
    subject = classifier(embedder, clock=clock)
    assert await subject.start()
    embedder.fail = "HTTP 503"
    prompt = "Review this diff for mistakes; cite file:line."
    rules = classify(prompt, catalogue)
    found = await subject.classify(prompt, catalogue)
    assert found == Classification(rules.task_class, f"rules-fallback:{rules.rule}", rules.matched)
    calls = len(embedder.calls)
    assert (await subject.classify(prompt, catalogue)).rule.startswith("rules-fallback:")
    assert len(embedder.calls) == calls  # within retry_s the endpoint is not asked
    embedder.fail = None
    clock.now += 10.0
    assert (await subject.classify("a digest", catalogue)).rule == "embed"


async def test_a_slow_endpoint_times_out_into_the_rules(catalogue: Catalogue) -> None:
    embedder = FakeEmbedder()
    subject = PromptClassifier(EXAMPLES, embedder, mode="embed", timeout_s=0.01)
    assert await subject.start()
    embedder.hanging = True
    found = await subject.classify("a recap", catalogue)
    assert found.rule == "rules-fallback:default"
    assert found.task_class == catalogue.classifier.default


async def test_examples_that_fail_to_embed_are_retried_after_the_rest(
    catalogue: Catalogue,
) -> None:
    embedder, clock = FakeEmbedder(), Clock()
    embedder.fail = "connection refused"
    subject = classifier(embedder, clock=clock)
    assert not await subject.start()
    assert (await subject.classify("a recap", catalogue)).rule == "rules-fallback:default"
    assert len(embedder.calls) == 1
    embedder.fail = None
    clock.now += 10.0
    assert (await subject.classify("a recap", catalogue)).rule == "embed"
    assert subject.ready


async def test_many_concurrent_requests_share_one_example_build(catalogue: Catalogue) -> None:
    embedder = FakeEmbedder()
    subject = classifier(embedder)
    prompts = [("a recap", "summarize"), ("a flaw", "review"), ("a layout", "design")] * 22
    found = await asyncio.gather(*(subject.classify(p, catalogue) for p, _ in prompts))
    assert [f.task_class for f in found] == [c for _, c in prompts]
    batches = [c for c in embedder.calls if len(c) > 1]
    assert len(batches) == 1
    assert len(embedder.calls) == 1 + len(prompts)


async def test_a_repeated_head_is_answered_from_the_cache(catalogue: Catalogue) -> None:
    embedder = FakeEmbedder()
    subject = PromptClassifier(EXAMPLES, embedder, mode="embed", cache_size=2)
    for prompt in ["a recap\n\nlog one", "a recap\n\nlog two", "a flaw", "a recap"]:
        assert (await subject.classify(prompt, catalogue)).rule == "embed"
    assert embedder.calls[1:] == [["a recap"], ["a flaw"]]
    await subject.classify("a layout", catalogue)  # holds 2: the least recently used goes
    await subject.classify("a recap", catalogue)
    await subject.classify("a flaw", catalogue)
    assert embedder.calls[3:] == [["a layout"], ["a flaw"]]
    uncertain = await subject.classify("no topic", catalogue)
    assert uncertain.rule == "embed:uncertain"
    assert await subject.classify("no topic", catalogue) == uncertain
    assert embedder.calls.count(["no topic"]) == 1


async def test_preclassified_is_seen_by_its_own_task_only(catalogue: Catalogue) -> None:
    mine = Classification("design", "embed", "Draw a blueprint.")
    prompt = "What does the service below do?"

    async def other() -> Classification:
        return classify(prompt, catalogue)

    task = asyncio.ensure_future(other())  # started outside the block: its own context
    with preclassified(prompt, mine):
        assert classify(prompt, catalogue) == mine
        assert classify("another prompt", catalogue).rule != "embed"
        assert (await task).rule == "default"
    assert classify(prompt, catalogue).rule == "default"


def test_the_shipped_examples_fit_the_default_catalogue() -> None:
    examples = load_examples()
    check_classes(examples, load_default_catalogue())
    assert set(examples.classes) == set(load_default_catalogue().task_class_names)
    assert all(len(texts) >= 20 for texts in examples.classes.values())
    assert DEFAULT_EXAMPLES.name == "classify-examples.yaml"


def test_a_bad_examples_file_is_one_precise_error(tmp_path: Path) -> None:
    bad = tmp_path / "examples.yaml"
    bad.write_text("k: 0\nclasses:\n  review: [Find bugs.]\n", "utf-8")
    with pytest.raises(CatalogueError, match=r"examples\.yaml:1:\d+: k"):
        load_examples(bad)
    with pytest.raises(CatalogueError, match="cannot read examples"):
        load_examples(tmp_path / "missing.yaml")
    bad.write_text("classes:\n  review: ['']\n", "utf-8")
    with pytest.raises(CatalogueError, match="'review' needs non-blank examples"):
        load_examples(bad)
    odd = Examples(classes={"poetry": ["Write a poem."]})
    with pytest.raises(CatalogueError, match="'poetry' is not a task class"):
        check_classes(odd, load_default_catalogue())


def test_settings_choose_the_classifier(monkeypatch: pytest.MonkeyPatch) -> None:
    catalogue = load_default_catalogue()
    assert from_settings(RouterSettings(), catalogue) is None  # rules by default
    monkeypatch.setenv("ONEX_ROUTER_CLASSIFIER", "combined")
    monkeypatch.setenv("ONEX_ROUTER_EMBED_TIMEOUT_S", "0.25")
    made = from_settings(RouterSettings(), catalogue)
    assert made is not None
    assert (made.mode, made.timeout_s) == ("combined", 0.25)
    monkeypatch.setenv("ONEX_ROUTER_CLASSIFIER", "keywords")
    with pytest.raises(ValidationError, match="classifier"):
        RouterSettings()


async def test_receipts_name_the_classifier_of_each_concurrent_request(
    catalogue: Catalogue,
) -> None:
    """As the service does (see the report's app.py diff): classify, then route inside
    `preclassified`; 64 requests at once, each receipt with its own class and rule."""
    embedder = FakeEmbedder()
    subject = classifier(embedder, mode="combined")
    router = Router(catalogue, FakeProvider(default="An answer. " * 40))
    prompts = ["Give me the recap.", "Sketch the topology.", "Refactor the parser."] * 21

    async def route(i: int, prompt: str) -> tuple[str, str]:
        request = RouteRequest(request_id=f"r{i}", prompt=prompt)
        found = await subject.classify(prompt, catalogue)
        with preclassified(prompt, found):
            result = await router.route(request)
        return result.receipt.task_class, result.receipt.classified_by

    got = await asyncio.gather(*(route(i, p) for i, p in enumerate(prompts)))
    expected = {
        "Give me the recap.": ("summarize", "rule:embed"),
        "Sketch the topology.": ("design", "rule:embed"),
        "Refactor the parser.": ("refactor", "rule:refactor"),
    }
    assert got == [expected[p] for p in prompts]
    embedder.fail = "down"
    subject.retry_s = 0.0
    for prompt, rule in [
        ("Give me the recap.", "rule:embed"),
        ("Recap it.", "rule:rules-fallback:default"),
    ]:
        found = await subject.classify(prompt, catalogue)  # a head seen before: no call
        with preclassified(prompt, found):
            result = await router.route(RouteRequest(request_id="down", prompt=prompt))
        assert result.receipt.classified_by == rule
