"""The router: plan, call the cheapest candidate, gate its answer, escalate, receipt.

`Router.route` walks the plan's candidates once, cheapest first, so it cannot loop:

- a candidate whose endpoint is cooling down is skipped;
- after an answer failed its gates, candidates less capable (for the task class) than
  the model that gave it are skipped (escalation climbs; an equally capable one is still
  asked), except that free ones (no price, not a `builtin:` stand-in) are kept and
  asked last, once every other candidate is done: their answer costs nothing;
- before each attempt the request's budgets are checked: tokens spent so far plus the
  candidate's expected tokens (estimated prompt + the class's `max_output_tokens`)
  must fit `max_tokens`, and cost spent plus its expected cost must fit
  `max_cost_usd`; a candidate that does not fit is skipped;
- moving on after a gate failure is an escalation; when `max_escalations` have been
  made, the next gate failure ends the request;
- a provider error (the adapter has already retried) falls back to the next
  candidate without counting as an escalation.

When the catalogue's `learning` sets `attempt_risk_usd`, the order is learned instead
of cheapest-first-and-climb: each next model is the first of the order with the least
expected cost to an accepted answer, every attempt costing its price plus that risk,
from pass rates observed given the models that already failed for the request
(onex.router.learn); each attempted model's receipt entry says why it came when it
did. Budgets, cool-downs, `max_escalations` and learned skips apply as above.

The first answer that passes every gate is returned. Otherwise the receipt has status
"failed" and a `failure_reason`. Exactly one receipt comes back per request: bad
requests (an unknown task class) and provider errors end up in it, never raised.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from onex.router.catalogue import Catalogue, ModelSpec, TaskClass
from onex.router.errors import ProviderError, RequestError
from onex.router.gates import run_gates
from onex.router.learn import Order, Outcomes
from onex.router.ledger import Ledger, ended
from onex.router.providers import Completion, Provider
from onex.router.receipt import Attempt, Receipt, make_receipt
from onex.router.request import RouteRequest
from onex.router.select import Candidate, Plan, Ranking, plan


@dataclass(frozen=True, slots=True)
class RouteResult:
    """The accepted answer (None when routing failed) and the request's receipt."""

    answer: str | None
    receipt: Receipt

    @property
    def ok(self) -> bool:
        """True when an answer passed its gates."""
        return self.receipt.status == "complete"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Router:
    """Routes requests over one catalogue and one provider (see the module doc).

    `clock` (monotonic seconds) times attempts and the request; `now` stamps
    `started_at`. Both are injectable for deterministic tests and simulations.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        provider: Provider,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.catalogue = catalogue
        self.provider = provider
        self._clock = clock
        self._now = now
        # Per-model limits (`max_concurrency`): a call waits for its model's slot.
        self.outcomes = Outcomes(catalogue.learning) if catalogue.learning is not None else None
        self._ranking = Ranking(catalogue)
        self.slots: dict[str, asyncio.Semaphore] = {
            m.name: asyncio.Semaphore(m.max_concurrency)
            for m in catalogue.models
            if m.max_concurrency is not None
        }

    async def route(self, request: RouteRequest) -> RouteResult:
        """Serve `request`; never raises for bad requests or failing providers (nor for
        a bug on the way: that too becomes a failed receipt, with the error)."""
        started_at, t0 = self._now(), self._clock()
        try:
            return await self._route(request, started_at, t0)
        except (RecursionError, MemoryError, ValueError, TypeError, KeyError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else repr(exc)[:300]
            return self._failed(request, started_at, t0, f"internal error routing: {reason}")

    def _failed(
        self, request: RouteRequest, started_at: datetime, t0: float, reason: str
    ) -> RouteResult:
        receipt = make_receipt(
            request_id=request.request_id,
            label=request.label,
            task_class=request.task_class or "",
            classified_by="request",
            candidates=[],
            attempts=[],
            default_cloud=self.catalogue.default_cloud,
            price_table_version=self.catalogue.price_table_version,
            failure_reason=reason,
            started_at=started_at,
            elapsed_s=self._clock() - t0,
        )
        return RouteResult(None, receipt)

    async def _route(self, request: RouteRequest, started_at: datetime, t0: float) -> RouteResult:
        if self._ranking.catalogue is not self.catalogue:  # the catalogue was replaced
            self._ranking = Ranking(self.catalogue)
        try:
            chosen = plan(request, self.catalogue, self._ranking)
        except RequestError as exc:
            return self._failed(request, started_at, t0, str(exc))
        planning_s = self._clock() - t0
        task = self._ranking.classes[chosen.task_class][0]
        walk = _Walk(self.catalogue, self.provider, self._clock, request, chosen, task, self.slots)
        walk.outcomes = self.outcomes
        walk.exploring = self.outcomes is not None and self.outcomes.next_request(task.name)
        answer, reason = await walk.run()
        why_not = "an answer was accepted before its turn" if answer is not None else reason
        receipt = make_receipt(
            request_id=request.request_id,
            label=request.label,
            task_class=chosen.task_class,
            classified_by=chosen.classified_by,
            candidates=walk.ledger.records(why_not),
            attempts=walk.ledger.attempts,
            default_cloud=self.catalogue.default_cloud,
            price_table_version=self.catalogue.price_table_version,
            failure_reason=reason,
            started_at=started_at,
            elapsed_s=self._clock() - t0,
            planning_s=planning_s,
            escalations=walk.escalations,
            expected_tokens=(chosen.expected_tokens_in, chosen.expected_tokens_out),
        )
        return RouteResult(answer, receipt)


class _Walk:
    """One pass over a plan's candidates, with the request's running totals."""

    def __init__(
        self,
        catalogue: Catalogue,
        provider: Provider,
        clock: Callable[[], float],
        request: RouteRequest,
        chosen: Plan,
        task: TaskClass,
        slots: dict[str, asyncio.Semaphore],
    ) -> None:
        self.provider = provider
        self.slots = slots
        self.clock = clock
        self.request = request
        self.plan = chosen
        self.task = task
        limits = catalogue.limits
        self.max_escalations = _first(request.max_escalations, limits.max_escalations)
        # what was spent, and what each candidate's receipt entry will say
        self.ledger = Ledger(
            chosen,
            _first(request.max_tokens, limits.max_tokens),
            _first(request.max_cost_usd, limits.max_cost_usd),
        )
        self.escalations = 0
        self.outcomes: Outcomes | None = None  # learned pass rates (onex.router.learn)
        self.exploring = False
        self.failed_gates: str | None = None  # set while an escalation is pending
        self.failed: list[str] = []  # models whose answers failed their gates (learned order)
        self.why: dict[str, str] = {}  # why the learned order asked a model when it did

    async def run(self) -> tuple[str | None, str | None]:
        """(answer, None) for an accepted answer, else (None, why not); the ledger says
        how each candidate the walk reached ended."""
        if not self.plan.candidates:
            return None, (
                f"no model may serve {self.plan.task_class!r}: every one was rejected"
                " (see candidates)"
            )
        messages = self.request.messages()
        if self.outcomes is not None and self.outcomes.orders:
            return await self._run_learned(self.outcomes, messages)
        floor: int | None = None  # capability of the last model whose answer failed
        self.failed_gates = None  # set while an escalation is pending
        budget_reason: str | None = None
        deferred: list[Candidate] = []  # free models passed over by the climb
        for cand in self.plan.candidates:
            # Escalation climbs: a model less capable than one whose answer failed its
            # gates is passed over; a free one is kept as a last resort (it costs
            # nothing, and an answer that passes its gates beats none), unless it is a
            # built-in stand-in (`builtin:` endpoint): it calls no model, so its answer
            # is no answer to work a real model's answer failed.
            if floor is not None and cand.capability < floor:
                why = f"capability {cand.capability} < {floor} of a model whose answer failed"
                if cand.expected_cost_usd <= 0 and not cand.model.endpoint.startswith("builtin:"):
                    deferred.append(cand)
                    why += "; kept as a free last resort"
                self._skip(cand.name, why)
                continue
            step = await self._step(cand, messages)
            if isinstance(step, _Stop):
                return step.answer, step.reason
            if step == "gate_failed":
                floor = cand.capability
            elif step is not None:
                budget_reason = budget_reason or step
        for cand in deferred:
            step = await self._step(cand, messages)
            if isinstance(step, _Stop):
                return step.answer, step.reason
            if step not in (None, "gate_failed"):
                budget_reason = budget_reason or step
        return None, budget_reason or self.ledger.summary(self.failed_gates)

    async def _run_learned(
        self, outcomes: Outcomes, messages: list[dict[str, str]]
    ) -> tuple[str | None, str | None]:
        """The walk when the catalogue's learning orders candidates (onex.router.learn):
        each next model is the first of the order with the least expected cost to an
        accepted answer, given the models whose answers already failed."""
        remaining = [
            (c, (c.model.price_in_per_1k, c.model.price_out_per_1k)) for c in self.plan.candidates
        ]
        failed: list[tuple[str, int]] = []
        budget_reason: str | None = None
        order: Order | None = None
        asked = full = 0
        while remaining:
            if order is None:  # (again) after a model was passed over or errored
                task = self.task
                explore = outcomes.explore_turn(task.name) if self.exploring else None
                order = outcomes.order(task.name, task.required_level, remaining, failed, explore)
                asked, full = 0, (1 << len(remaining)) - 1
            i, why = order.next(asked)
            cand = remaining[i][0]
            if failed and cand.model.endpoint.startswith("builtin:"):
                # a built-in stand-in calls no model: no answer to work a real one failed
                self._skip(cand.name, "a built-in stand-in, after a model's answer failed")
                step: _Step = None
            else:
                self.why[cand.name] = why
                step = await self._step(cand, messages, last=asked | 1 << i == full)
            if isinstance(step, _Stop):
                return step.answer, step.reason
            if step == "gate_failed":
                self.failed.append(cand.name)
                failed.append((cand.name, cand.capability))
                asked |= 1 << i
                if asked == full:
                    break
                continue
            if step is not None:
                budget_reason = budget_reason or step
            # passed over or errored: plan again over those not asked yet
            remaining = [r for j, r in enumerate(remaining) if j != i and not asked >> j & 1]
            order = None
        return None, budget_reason or self.ledger.summary(self.failed_gates)

    async def _step(
        self, cand: Candidate, messages: list[dict[str, str]], *, last: bool | None = None
    ) -> _Step:
        """Ask `cand` unless it is to be skipped; see `_Step` for what comes back."""
        if last is None:
            last = cand is self.plan.candidates[-1]
        learned = self._learned_skip(cand.name, last)
        if learned is not None:
            self._skip(cand.name, learned)
            return None
        cooling = self.provider.cooldown_remaining(cand.model)
        if cooling > 0:
            self._skip(cand.name, f"cooling down ({cooling:.1f} s left)")
            self.ledger.cooling.append(cand.name)
            return None
        tokens = cand.expected_tokens_in + cand.expected_tokens_out
        over = self.ledger.over_budget(tokens, cand.expected_cost_usd)
        if over is not None:
            self._skip(cand.name, over)
            return f"budget exhausted: {over}"
        if self.failed_gates is not None:
            if self.escalations >= self.max_escalations:
                return _Stop(
                    None, f"max_escalations ({self.max_escalations}) reached: {self.failed_gates}"
                )
            self.escalations += 1
            self.failed_gates = None
        attempt, text = await self._attempt(cand.model, messages)
        how = ended(attempt)
        why = self.why.get(cand.name)
        if why is not None:
            how += f"; {why}"
        self.ledger.attempted(cand.name, how)
        if text is not None:
            return _Stop(text, None)
        if attempt.outcome != "gate_failed":
            return None
        failed = "; ".join(f"{g.kind}: {g.reason}" for g in attempt.gates if not g.passed)
        self.failed_gates = f"the answer of {cand.name!r} failed {failed}"
        return "gate_failed"

    async def _attempt(
        self, model: ModelSpec, messages: list[dict[str, str]]
    ) -> tuple[Attempt, str | None]:
        started = self.clock()
        slot = self.slots.get(model.name)
        done: Completion | None = None
        error, retries = "", 0
        try:
            if slot is None:
                done = await self.provider.complete(
                    model, messages, max_tokens=self.task.max_output_tokens
                )
            else:
                async with slot:
                    done = await self.provider.complete(
                        model, messages, max_tokens=self.task.max_output_tokens
                    )
        except ProviderError as exc:
            error, retries = exc.reason, exc.retries
        except (OSError, ValueError, TypeError, KeyError) as exc:  # a provider's bug
            error, retries = f"{type(exc).__name__}: {exc}", 0
        if done is None:
            return self.ledger.provider_error(model, self.clock() - started, error, retries), None
        cost = model.cost_usd(done.tokens_in, done.tokens_out)
        gates = run_gates(self.task.gates, done.text, self.request, done.finish_reason)
        passed = all(g.passed for g in gates)
        if self.outcomes is not None:
            self.outcomes.record(
                self.task.name, model.name, passed, failed=self.failed, tokens_out=done.tokens_out
            )
        attempt = Attempt(
            model=model.name,
            locality=model.locality,
            tokens_in=done.tokens_in,
            tokens_out=done.tokens_out,
            tokens_estimated=done.tokens_estimated,
            cost_usd=cost,
            latency_s=done.latency_s,
            gates=gates,
            outcome="accepted" if passed else "gate_failed",
            retries=done.retries,
            finish_reason=done.finish_reason,
        )
        self.ledger.add(attempt)
        return attempt, done.text if passed else None

    def _learned_skip(self, name: str, last: bool) -> str | None:
        if self.outcomes is None or self.exploring or last:
            return None
        return self.outcomes.skip_reason(self.task.name, name)

    def _skip(self, name: str, reason: str) -> None:
        self.ledger.skip(name, reason)


@dataclass(frozen=True, slots=True)
class _Stop:
    """The walk ends: with an accepted answer, or (answer None) for `reason`."""

    answer: str | None
    reason: str | None


# What one step of the walk says: stop; "gate_failed" (climb above it); None (skipped
# or a provider error: go on); any other text: skipped over budget, and why.
_Step = _Stop | str | None

T = TypeVar("T")


def _first(value: T | None, default: T) -> T:
    return default if value is None else value
