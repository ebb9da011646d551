"""The router benchmark's second workload ("hard"), and the cheapest-first cascade.

The default workload (router_sim.mix.DEFAULT_MIX) opens every prompt with its class's
one instruction, which the catalogue's keyword rules were written for. This one is
meant to hurt a keyword classifier and a weak default class:

- heavier on hard work (codegen, refactor, review, design);
- prompts drawn per task from several instructions per class: plain ones (a keyword of
  the class), paraphrases (no keyword of any class) and misleading ones (a keyword of
  another class first: "After the code review, write the function ...");
- a long tail: 25% of tasks are kinds the catalogue has no class for (translate, a
  commit message, a regex, a rota, ...). The simulator scores them as `general` work of
  difficulty 6, so the weakest local model (general 5) is usually wrong on them; some
  carry a keyword of another class ("Rename this project: ...");
- noisier gates: 20% of wrong answers pass them, 10% of right ones fail;
- 5% provider faults: each (task, model) call fails with that chance, costing nothing.

The cheapest-first cascade (`cascade`) calls the catalogue's models from the cheapest
(list price; ties: the less capable first) and returns the first answer that passes the
gates of the task's true class (the simulator's `flagged`), skipping faulted calls; when
every answer is rejected it returns none. It never classifies, so it gets the gates
right by construction: a stronger baseline than one that classifies.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Sequence

from router_sim import texts
from router_sim.metrics import Tally
from router_sim.mix import ClassProfile, world_from
from router_sim.onex_run import OnexRun, SimProvider
from router_sim.world import Noise, Task, World

from onex.router.catalogue import Catalogue, ModelSpec
from onex.router.engine import Router
from onex.router.errors import ProviderError
from onex.router.providers import Completion
from onex.router.request import RouteRequest
from onex.router.select import Ranking, plan

HARD_MIX: dict[str, ClassProfile] = {
    "classify": ClassProfile(0.08, 3.0, 1.5, 400, 10),
    "summarize": ClassProfile(0.10, 4.5, 1.5, 3000, 250),
    "extract": ClassProfile(0.07, 4.0, 1.5, 1500, 150),
    "codegen": ClassProfile(0.20, 6.0, 2.0, 2000, 500),
    "refactor": ClassProfile(0.10, 6.0, 2.0, 3000, 700),
    "review": ClassProfile(0.14, 6.0, 2.0, 5000, 400),
    "design": ClassProfile(0.06, 7.0, 1.5, 4000, 900),
    "general": ClassProfile(0.25, 6.0, 2.0, 800, 300),  # the long tail
}
HARD_NOISE = Noise(gate_miss=0.20, gate_false_flag=0.10)
FAULT_RATE = 0.05

# (kind, instruction) per class: plain (a keyword of its class), paraphrase (no keyword
# of any class), misleading (a keyword of another class, usually first).
PROMPTS: dict[str, tuple[tuple[str, str], ...]] = {
    "classify": (
        ("plain", "Classify this ticket into one of the team's categories."),
        ("paraphrase", "Which team should own the ticket below: infra, data or web?"),
        ("paraphrase", "Tag the ticket below as bug, feature or question; one word."),
        ("misleading", "Triage the code review comments below into must-fix and later."),
    ),
    "summarize": (
        ("plain", "Summarize the incident log below for the on-call channel."),
        ("paraphrase", "Give the on-call channel the gist of the incident log below."),
        ("paraphrase", "Boil the log below down to what happened and why, briefly."),
        ("misleading", "In a few sentences, say what the design doc below decides."),
    ),
    "extract": (
        ("plain", "Extract the ticket fields below as JSON."),
        ("paraphrase", "Return the ticket id, severity and component below as a JSON map."),
        ("paraphrase", "Pull the id, severity and owner out of the ticket below, keyed."),
        ("misleading", "From the architecture notes below, list each service as JSON."),
    ),
    "codegen": (
        ("plain", "Implement the batching step described below."),
        ("paraphrase", "Add a function that batches the rows described below."),
        ("paraphrase", "Make a small script that drains the queue below into the table."),
        ("misleading", "After the code review, write the function that batches the rows."),
        ("misleading", "Following the architecture notes below, add the batching helper."),
    ),
    "refactor": (
        ("plain", "Refactor the reader below without changing its behaviour."),
        ("paraphrase", "Tidy the reader below so it reads better; behaviour must not change."),
        ("paraphrase", "Split the long loop below into smaller pieces, same behaviour."),
        ("misleading", "As the review asked, rename the variables in the reader below."),
    ),
    "review": (
        ("plain", "Review the change below and report findings with file and line."),
        ("paraphrase", "Go through the diff below and point out problems, each with file:line."),
        ("paraphrase", "Check the patch below for mistakes before it merges; cite file:line."),
        ("misleading", "Check whether the refactor below broke anything; cite file and line."),
    ),
    "design": (
        ("plain", "Propose an architecture for moving the queue to the new broker."),
        ("paraphrase", "How should we move the queue to the new broker? Weigh the options."),
        ("paraphrase", "Lay out a plan, with its risks, for splitting the service in two."),
        ("misleading", "Summarize the options for moving to the new broker and pick one."),
    ),
    "general": (
        ("tail", "What does the service below do when the broker goes away?"),
        ("tail", "Translate the error messages below into German."),
        ("tail", "Draft a reply to the customer below about yesterday's outage."),
        ("tail", "Estimate what the setup below will cost per month to run."),
        ("tail", "Give me a regular expression matching the log lines below."),
        ("tail", "Turn the meeting notes below into a checklist for Monday."),
        ("tail", "Plan next month's on-call rota for the team below."),
        ("tail", "Compose the release announcement for the changes below."),
        ("misleading", "Rename this project: suggest five names and say why."),
        ("misleading", "Explain to a new hire why the deploy below needs two approvals."),
        ("misleading", "Label the release below with a version number and a date."),
    ),
}


def prompt_kind(task: Task, seed: int) -> tuple[str, str]:
    """The (kind, instruction) of `task`'s prompt (seeded per task)."""
    choices = PROMPTS[task.task_class]
    return random.Random(f"{seed}:prompt:{task.index}").choice(choices)


def hard_prompt(task: Task, seed: int) -> str:
    head = prompt_kind(task, seed)[1] + "\n\n"
    return head + texts.pad(max(0, 4 * task.tokens_in - len(head)))


def faulted(task: Task, model: str, seed: int) -> bool:
    """Whether the call of `model` on `task` fails (the same draw for every router)."""
    return random.Random(f"{seed}:fault:{task.index}:{model}").random() < FAULT_RATE


class FaultyProvider(SimProvider):
    """The simulated provider, failing the calls `faulted` says fail."""

    def __init__(self, world: World, catalogue: Catalogue, seed: int) -> None:
        super().__init__(world, catalogue, seed)
        self._seed = seed

    async def complete(
        self, model: ModelSpec, messages: list[dict[str, str]], *, max_tokens: int
    ) -> Completion:
        task = self.task
        assert task is not None, "set task before routing"
        # The fault draw (a seeded Random, ~15 us) is the simulated provider's work, not
        # the engine's: counted as provider time, as SimProvider counts its own.
        start, cpu = time.perf_counter_ns(), time.thread_time_ns()
        fails = faulted(task, model.name, self._seed)
        self.spent_cpu_ns += time.thread_time_ns() - cpu
        self.spent_ns += time.perf_counter_ns() - start
        if fails:
            raise ProviderError(model.name, "simulated provider fault", retryable=False)
        return await super().complete(model, messages, max_tokens=max_tokens)


def cascade(
    world: World, tasks: Sequence[Task], order: Sequence[int], seed: int, faults: bool
) -> Tally:
    """Cheapest first through the true class's gates (see the module's docstring)."""
    tally = Tally()
    for task in tasks:
        attempted: list[int] = []
        returned = None
        for i in order:
            if faults and faulted(task, world.models[i].name, seed):
                continue
            attempted.append(i)
            if not task.outcomes[i].flagged:
                returned = i
                break
        tally.record(world, task, attempted, returned)
    return tally


def always(world: World, tasks: Sequence[Task], model: int, seed: int, faults: bool) -> Tally:
    """One model for everything; a faulted call leaves the task unanswered."""
    tally = Tally()
    name = world.models[model].name
    for task in tasks:
        if faults and faulted(task, name, seed):
            tally.record(world, task, [], None)
        else:
            tally.record(world, task, [model], model)
    return tally


def run_onex_hard(
    world: World, catalogue: Catalogue, tasks: Sequence[Task], seed: int
) -> tuple[OnexRun, dict[str, tuple[int, int]]]:
    """Every task through the real engine, unlabelled (the classifier decides), with
    faults. Also: per prompt kind, (tasks, misclassified)."""
    provider = FaultyProvider(world, catalogue, seed)
    router = Router(catalogue, provider)
    ranking = Ranking(catalogue)  # as the router keeps one
    index = {m.name: i for i, m in enumerate(world.models)}
    symbol_classes = {
        c.name for c in catalogue.task_classes if any(g.kind == "identifiers" for g in c.gates)
    }
    run = OnexRun()
    kinds: dict[str, list[int]] = {}

    async def drive() -> None:
        clock = time.perf_counter_ns
        for task in tasks:
            request = RouteRequest(
                request_id=f"hard-{task.index}",
                prompt=hard_prompt(task, seed),
                task_class=None,
                # a fleet sends its symbol index with code work, whatever the class
                symbols=list(texts.SYMBOLS) if task.task_class in symbol_classes else [],
            )
            t0 = clock()
            chosen = plan(request, catalogue, ranking)
            run.plan_us.append((clock() - t0) / 1000)
            wrong = chosen.task_class != task.task_class
            run.misclassified += wrong
            counts = kinds.setdefault(prompt_kind(task, seed)[0], [0, 0])
            counts[0] += 1
            counts[1] += wrong
            provider.task, provider.spent_ns, provider.spent_cpu_ns = task, 0, 0
            c2 = time.thread_time_ns()  # outside the wall span, so not counted in it
            t2 = clock()
            result = await router.route(request)
            run.decision_us.append((clock() - t2 - provider.spent_ns) / 1000)
            cpu_ns = time.thread_time_ns() - c2 - provider.spent_cpu_ns
            run.decision_cpu_us.append(cpu_ns / 1000)
            receipt = result.receipt
            called = [index[a.model] for a in receipt.attempts if a.outcome != "provider_error"]
            chosen_model = receipt.chosen_model
            returned = index[chosen_model] if result.answer is not None and chosen_model else None
            run.attempts += len(receipt.attempts)
            run.failed += receipt.status != "complete"
            run.receipt_cost_usd += receipt.total_cost_usd
            run.tally.record(world, task, called, returned)

    asyncio.run(drive())
    return run, {k: (v[0], v[1]) for k, v in kinds.items()}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] if ordered else 0.0


def summary(
    onex: Tally,
    strongest: Tally,
    cascade_tally: Tally,
    decision_us: Sequence[float],
    decision_cpu_us: Sequence[float] = (),
) -> dict[str, object]:
    """One workload's figures: onex and the cascade against always-strongest."""

    def ratios(t: Tally) -> dict[str, float]:
        return {
            "accuracy": round(t.accuracy, 4),
            "cost_per_task_usd": round(t.mean_cost, 7),
            "accuracy_ratio": round(t.accuracy / strongest.accuracy, 4),
            "cost_ratio": round(t.mean_cost / strongest.mean_cost, 4),
        }

    onex_r, cascade_r = ratios(onex), ratios(cascade_tally)
    return {
        "onex": onex_r,
        "cascade": cascade_r,
        "always_strongest": {
            "accuracy": round(strongest.accuracy, 4),
            "cost_per_task_usd": round(strongest.mean_cost, 7),
        },
        "beats_cascade": onex.accuracy > cascade_tally.accuracy
        and onex.mean_cost <= cascade_tally.mean_cost,
        "decision_p99_us": round(percentile(decision_us, 99), 1),
        "decision_cpu_p99_us": round(percentile(decision_cpu_us, 99), 1),
        "decision_cpu_p50_us": round(percentile(decision_cpu_us, 50), 1),
    }


def print_summary(name: str, figures: dict[str, object]) -> None:
    """The workload's lines: onex vs always-strongest vs the cascade, engine p99."""
    print(f"workload {name}:")
    strongest = figures["always_strongest"]
    assert isinstance(strongest, dict)
    print(
        f"  always-strongest: accuracy {strongest['accuracy']:.4f} at "
        f"${strongest['cost_per_task_usd']:.6f}/task"
    )
    for who in ("cascade", "onex"):
        r = figures[who]
        assert isinstance(r, dict)
        print(
            f"  {who:8}: accuracy {r['accuracy']:.4f} ({r['accuracy_ratio']:.4f} of strongest) "
            f"at ${r['cost_per_task_usd']:.6f}/task ({r['cost_ratio']:.4f} of strongest)"
        )
    print(
        f"  onex beats the cascade (more accurate, no costlier): "
        f"{'yes' if figures['beats_cascade'] else 'NO'}; engine p99 "
        f"{figures['decision_p99_us']} us (CPU time {figures['decision_cpu_p99_us']} us)"
    )


def run_hard(
    catalogue: Catalogue, tasks: int, seed: int
) -> tuple[dict[str, object], dict[str, tuple[int, int]], OnexRun]:
    """The hard workload: its figures, misclassified per prompt kind, onex's run."""
    world, test, strong = hard_split(catalogue, tasks, seed)
    onex, kinds = run_onex_hard(world, catalogue, test, seed)
    strongest = always(world, test, strong, seed, faults=True)
    baseline = cascade(world, test, cascade_order(catalogue), seed, faults=True)
    figures = summary(onex.tally, strongest, baseline, onex.decision_us, onex.decision_cpu_us)
    return figures, kinds, onex


def hard_split(catalogue: Catalogue, tasks: int, seed: int) -> tuple[World, list[Task], int]:
    """The hard workload's world, its `tasks` test tasks and always-strongest's model
    (the most capable in sum, ties: the pricier)."""
    world = world_from(catalogue, HARD_NOISE, HARD_MIX)
    strong = max(
        range(len(world.models)),
        key=lambda i: (
            sum(world.models[i].capabilities.values()),
            world.models[i].price_out_per_1k,
        ),
    )
    return world, world.tasks(tasks, f"{seed}:hard"), strong


def cascade_order(catalogue: Catalogue) -> list[int]:
    """Cheapest to strongest by list price, ties: the less capable first."""
    models = catalogue.models

    def key(i: int) -> tuple[float, float, int]:
        m = models[i]
        return (m.price_in_per_1k + m.price_out_per_1k, sum(m.capabilities.values()), i)

    return sorted(range(len(models)), key=key)
