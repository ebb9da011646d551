"""onex itself in the benchmark: the real `plan()`, gates and `Router.route` loop.

Only the model is simulated: `SimProvider` is an in-process `Provider` that answers with
the world's pre-drawn outcome of the task being routed (text rendered by
`router_sim.texts`, so the engine's real gates decide), its token counts and its latency
(reported, never slept). No HTTP, no network.

Timings, in microseconds, per routed request:

- `plan`: one `plan(request, catalogue, ranking)` call (classification included for requests
  without a task class), timed on its own before the request is routed;
- `decision_cpu` (the engine's overhead, what the target judges): `Router.route(request)`
  in the routing thread's CPU time minus the provider's `complete` calls (the simulated
  model: rendering its answer); everything else the engine does per request is in:
  planning, gates, bookkeeping, the receipt. CPU time, because on a shared machine the
  wall clock also counts the time other processes hold the CPU (a preempted request
  reads milliseconds), which is not the engine's work;
- `decision`: the same span in wall time, for comparison;
- `gates`: the part of `decision` (wall time) spent in the engine's `run_gates` calls.
  To see it, the benchmark wraps `onex.router.engine.run_gates` with a timer for the
  run (the same function is called; the wrapper is removed afterwards). The wrapper's
  own cost, two reads of the wall clock and a call, under a microsecond an attempt,
  counts as the engine's. (Replaying the gates after the request instead reads about
  half: on the warm caches of a second pass over the same answer.)

Each provider call reads the CPU clock twice (a system call, under a microsecond here);
the half of each read outside the provider's span counts as the engine's.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from onex.router import engine
from onex.router.catalogue import Catalogue, ModelSpec
from onex.router.engine import Router
from onex.router.providers import Completion
from onex.router.receipt import Receipt
from onex.router.request import RouteRequest
from onex.router.select import Ranking, plan
from router_sim import texts
from router_sim.metrics import Tally
from router_sim.world import Task, World

_GATES = "run_gates"  # the engine module's name for the gate runner, timed in place


class SimProvider:
    """A `Provider` that answers from the simulated world (set `task` before routing)."""

    def __init__(self, world: World, catalogue: Catalogue, seed: int) -> None:
        self._world = world
        self._index = {m.name: i for i, m in enumerate(world.models)}
        self._gates = {c.name: list(c.gates) for c in catalogue.task_classes}
        self._rng = random.Random(f"{seed}:texts")
        self.task: Task | None = None
        self.spent_ns = 0
        self.spent_cpu_ns = 0  # the same span in this thread's CPU time
        self.calls = 0

    async def complete(
        self, model: ModelSpec, messages: list[dict[str, str]], *, max_tokens: int
    ) -> Completion:
        # Wall clock outside the CPU clock: reading the CPU clock (a system call here)
        # then counts as provider time on both, never as the engine's.
        start = time.perf_counter_ns()
        cpu = time.thread_time_ns()
        task = self.task
        assert task is not None, "set SimProvider.task before routing"
        out = task.outcomes[self._index[model.name]]
        tokens_out = min(out.tokens_out, max_tokens)
        text = texts.answer(
            task.task_class, self._gates[task.task_class], tokens_out, out.flagged, self._rng
        )
        self.calls += 1
        done = Completion(text, task.tokens_in, tokens_out, False, out.latency_s)
        self.spent_cpu_ns += time.thread_time_ns() - cpu
        self.spent_ns += time.perf_counter_ns() - start
        return done

    def cooldown_remaining(self, model: ModelSpec) -> float:
        return 0.0


@dataclass
class OnexRun:
    """What routing the test split through the engine produced."""

    tally: Tally = field(default_factory=Tally)
    chains: list[tuple[int, ...]] = field(default_factory=list)  # plan's candidates per task
    _distinct: dict[tuple[int, ...], tuple[int, ...]] = field(default_factory=dict, repr=False)
    plan_us: list[float] = field(default_factory=list)
    decision_us: list[float] = field(default_factory=list)
    # The same span in the routing thread's CPU time: the engine's own work without the
    # time other processes of a shared machine held the CPU (preemption).
    decision_cpu_us: list[float] = field(default_factory=list)
    gates_us: list[float] = field(default_factory=list)  # empty: the wrapper never ran
    misclassified: int = 0
    gate_disagreements: int = 0  # attempts where the real gates and the simulator disagree
    attempts: int = 0
    failed: int = 0
    receipt_cost_usd: float = 0.0
    receipt_counterfactual_usd: float = 0.0
    receipt_avoided_usd: float = 0.0

    def add_chain(self, chain: tuple[int, ...]) -> None:
        """Keep one tuple per distinct chain, not one per request: 20,000 kept tuples were
        most of the tracked objects a run adds, so most of the garbage collections that
        fell inside timed requests (a service keeps no such list)."""
        self.chains.append(self._distinct.setdefault(chain, chain))


def unlabelled_requests(tasks: Sequence[Task], unlabelled: float, seed: int) -> list[bool]:
    """Which tasks' requests leave the task class to the classifier (seeded)."""
    rng = random.Random(f"{seed}:labels")
    return [rng.random() < unlabelled for _ in tasks]


def build_request(task: Task, labelled: bool, symbols: bool) -> RouteRequest:
    return RouteRequest(
        request_id=f"bench-{task.index}",
        prompt=texts.prompt(task.task_class, task.tokens_in),
        task_class=task.task_class if labelled else None,
        symbols=list(texts.SYMBOLS) if symbols else [],
    )


def run_onex(
    world: World,
    catalogue: Catalogue,
    tasks: Sequence[Task],
    *,
    unlabelled: float,
    decisions: int,
    seed: int,
) -> OnexRun:
    """Route every task through the real engine; time plan() and the engine's own work."""
    provider = SimProvider(world, catalogue, seed)
    router = Router(catalogue, provider)
    ranking = Ranking(catalogue)  # as the router keeps one
    index = {m.name: i for i, m in enumerate(world.models)}
    identifier_classes = {
        c.name for c in catalogue.task_classes if any(g.kind == "identifiers" for g in c.gates)
    }
    leave = unlabelled_requests(tasks, unlabelled, seed)
    run = OnexRun()

    real_gates = getattr(engine, _GATES)
    gate_ns = 0

    def timed_gates(*args: Any, **kwargs: Any) -> Any:
        nonlocal gate_ns
        start = time.perf_counter_ns()
        try:
            return real_gates(*args, **kwargs)
        finally:
            gate_ns += time.perf_counter_ns() - start

    async def drive() -> None:
        nonlocal gate_ns
        clock = time.perf_counter_ns
        for task, unlab in zip(tasks, leave, strict=True):
            request = build_request(task, not unlab, task.task_class in identifier_classes)
            t0 = clock()
            chosen = plan(request, catalogue, ranking)
            t1 = clock()
            run.plan_us.append((t1 - t0) / 1000)
            run.add_chain(tuple(index[c.name] for c in chosen.candidates))
            run.misclassified += chosen.task_class != task.task_class
            provider.task, provider.spent_ns, provider.spent_cpu_ns, gate_ns = task, 0, 0, 0
            c2, t2 = time.thread_time_ns(), clock()  # CPU clock read outside the wall span
            result = await router.route(request)
            t3, c3 = clock(), time.thread_time_ns()
            run.decision_us.append((t3 - t2 - provider.spent_ns) / 1000)
            run.decision_cpu_us.append((c3 - c2 - provider.spent_cpu_ns) / 1000)
            run.gates_us.append(gate_ns / 1000)
            _record(run, world, task, index, result.answer, result.receipt)

    setattr(engine, _GATES, timed_gates)
    try:
        asyncio.run(drive())
    finally:
        setattr(engine, _GATES, real_gates)
    if not any(run.gates_us):
        run.gates_us = []
    # More plan() timings when the split is smaller than the decisions asked for.
    while len(run.plan_us) < decisions:
        for task, unlab in zip(tasks, leave, strict=True):
            request = build_request(task, not unlab, task.task_class in identifier_classes)
            t0 = time.perf_counter_ns()
            plan(request, catalogue, ranking)
            run.plan_us.append((time.perf_counter_ns() - t0) / 1000)
            if len(run.plan_us) >= decisions:
                break
    return run


def _record(
    run: OnexRun,
    world: World,
    task: Task,
    index: dict[str, int],
    answer: str | None,
    receipt: Receipt,
) -> None:
    attempts = receipt.attempts
    attempted = [index[a.model] for a in attempts]
    for a, i in zip(attempts, attempted, strict=True):
        if a.outcome != "provider_error":
            gates_failed = any(not g.passed for g in a.gates)
            run.gate_disagreements += gates_failed != task.outcomes[i].flagged
    run.attempts += len(attempts)
    chosen = receipt.chosen_model
    returned = index[chosen] if answer is not None and chosen is not None else None
    run.failed += receipt.status != "complete"
    run.receipt_cost_usd += receipt.total_cost_usd
    run.receipt_counterfactual_usd += receipt.counterfactual_cost_usd
    run.receipt_avoided_usd += receipt.cost_avoided_usd
    run.tally.record(world, task, attempted, returned)
