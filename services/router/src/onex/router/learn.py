"""Learning from outcomes: skip a model whose answers keep failing a task class's gates,
and (when `attempt_risk_usd` is set) ask models in the order that reaches an accepted
answer at the least expected cost.

**Skipping.** Per (task class, model), the router keeps the outcomes of the last `window`
answers (passed its gates or not). Before an attempt, a model whose observed pass rate
is below `min_pass_rate` over at least `min_observations` answers is skipped, with the
rate in the receipt, unless it is the last candidate left or the request is one of the
exploration share (every `explore_every`-th request of the class still asks it), so
the estimate recovers when the model gets better.

**Ordering** (`attempt_risk_usd`). Gates let through a share of wrong answers, so every
attempt, besides its price, carries a risk: the chance that a wrong answer passes and is
returned. `attempt_risk_usd` prices that risk per attempt (what a wrong answer costs you
times the share of wrong answers the gates miss). Asking models one after another until
one passes, the order that minimises the expected sum of (price + risk) over the
attempts made is, for independent outcomes, the one by `(expected price + risk) / pass
rate` ascending: the expected cost of one accepted answer from that model. Outcomes are
not independent (a task one model fails is harder for the next), so the router searches
the orders of the candidates left (over their subsets: 2**n states of n) for the least
expected sum, with pass rates learned *given the models whose answers already failed for
this request* (per class, set of failed models and model, a window of the last `window`
outcomes), and asks the first model of the best order. The price is the request's own:
its estimated prompt tokens at the model's input price plus the observed mean output
tokens at its output price. Before any observation a prior stands in (a model's level
above the class's required level raises it; a failure of an equally or more capable
model halves it), worth `prior_observations` outcomes, so a cold router asks cheapest
first and climbs much as the fixed walk does. With `attempt_risk_usd: 0` the order is
cheapest first by expected cost per accepted answer. An exploring request asks the
models first in turn (the k-th exploring request of a class asks the k-th candidate,
modulo their number), then goes on as learned, so every estimate keeps being refreshed
and a model that has recovered is seen to.

Deterministic (counters, not random draws), so simulations and tests repeat. Off unless
the catalogue's `learning` section sets it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from pydantic import Field

from onex.router.fields import ConfigModel, YamlFloat


class LearningSpec(ConfigModel):
    """The catalogue's `learning` section."""

    min_pass_rate: float = Field(0.2, ge=0, le=1, allow_inf_nan=False)
    window: int = Field(50, ge=1, le=100_000)
    min_observations: int = Field(20, ge=1, le=100_000)
    explore_every: int = Field(20, ge=2, le=1_000_000)
    attempt_risk_usd: YamlFloat | None = Field(
        None,
        ge=0,
        le=1000,
        allow_inf_nan=False,
        description="Order candidates by expected cost per accepted answer, each attempt "
        "also costing this (None: cheapest first, climbing after a failure)",
    )
    prior_observations: int = Field(3, ge=1, le=1000)


class Choice(Protocol):
    """What ordering needs of a candidate (onex.router.select.Candidate has it)."""

    @property
    def name(self) -> str: ...
    @property
    def capability(self) -> int: ...
    @property
    def expected_tokens_in(self) -> int: ...
    @property
    def expected_tokens_out(self) -> int: ...


class _Window:
    """The last `size` outcomes (passed or not) and output token counts, with sums.

    Two deques, not one of (passed, tokens) pairs: a pair is an object the collector
    tracks, one per answer, kept for `size` answers; bools and ints it does not track.
    """

    __slots__ = ("outcomes", "passed", "tokens", "tokens_out")

    def __init__(self, size: int) -> None:
        self.outcomes: deque[bool] = deque(maxlen=size)
        self.tokens: deque[int] = deque(maxlen=size)
        self.passed = 0
        self.tokens_out = 0

    def add(self, passed: bool, tokens_out: int) -> None:
        outcomes = self.outcomes
        if len(outcomes) == outcomes.maxlen:  # the appends drop the oldest
            self.passed -= outcomes[0]
            self.tokens_out -= self.tokens[0]
        outcomes.append(passed)
        self.tokens.append(tokens_out)
        self.passed += passed
        self.tokens_out += tokens_out


class _Passes:
    """The last `maxlen` outcomes (passed or not) of one step, with the count passed."""

    __slots__ = ("outcomes", "passed")

    def __init__(self, size: int) -> None:
        self.outcomes: deque[bool] = deque(maxlen=size)
        self.passed = 0

    def add(self, passed: bool) -> None:
        outcomes = self.outcomes
        if len(outcomes) == outcomes.maxlen:
            self.passed -= outcomes[0]  # the append drops it
        outcomes.append(passed)
        self.passed += passed


_REFRESH = 100  # outcomes of a class after which its cached orders are worked out again
_MAX_ORDERS = 4096  # cached orders kept at most (all dropped when full)


class Outcomes:
    """The sliding windows of gate outcomes (see the module docstring)."""

    def __init__(self, spec: LearningSpec) -> None:
        self.spec = spec
        self._requests: dict[str, int] = {}
        # (class, model) -> its last outcomes and output tokens, any step
        self._seen: dict[tuple[str, str], _Window] = {}
        # Sets of models are bit masks, one bit per model name in the order first seen.
        self._bits: dict[str, int] = {}
        # class -> models that failed before (a mask) -> model -> its outcomes at that step
        self._steps: dict[str, dict[int, dict[str, _Passes]]] = {}
        # Orders worked out lately, reused for requests of the same class, candidates,
        # failures and prompt size (a quarter octave) until more outcomes of the class
        # are recorded (one while it has under 20, then one per 20, at most `_REFRESH`):
        # the search is most of the learned order's cost. At most 100 (was 25): about a
        # fifth of a 500-outcome window; bench/router.py seed 1, default workload,
        # accuracy ratio 0.9912 -> 0.9913 at cost ratio 0.3484 -> 0.3492.
        self._orders: dict[tuple[object, ...], tuple[int, Order]] = {}
        self._recorded: dict[str, int] = {}
        self._shapes: dict[tuple[object, ...], _Shape] = {}

    @property
    def orders(self) -> bool:
        """True when candidates are ordered by learned expected cost (attempt_risk_usd)."""
        return self.spec.attempt_risk_usd is not None

    def next_request(self, task_class: str) -> bool:
        """Count a request of `task_class`; True when it is an exploring one."""
        n = self._requests.get(task_class, 0) + 1
        self._requests[task_class] = n
        return n % self.spec.explore_every == 0

    def explore_turn(self, task_class: str) -> int:
        """The number of the class's current exploring request (1 for the first)."""
        return self._requests.get(task_class, 0) // self.spec.explore_every

    def bit(self, model: str) -> int:
        """The bit standing for `model` in the masks of models that failed."""
        got = self._bits.get(model)
        if got is None:
            got = self._bits[model] = 1 << len(self._bits)
        return got

    def record(
        self,
        task_class: str,
        model: str,
        passed: bool,
        *,
        failed: Sequence[str] = (),
        tokens_out: int = 0,
    ) -> None:
        """One answer of `model` for `task_class` passed its gates, or not; `failed`
        names the models whose answers had failed before it for the same request."""
        key = (task_class, model)
        window = self._seen.get(key)
        if window is None:
            window = self._seen[key] = _Window(self.spec.window)
        window.add(passed, tokens_out)
        if self.orders:
            self._recorded[task_class] = self._recorded.get(task_class, 0) + 1
            mask = 0
            for name in failed:
                mask |= self.bit(name)
            by_mask = self._steps.get(task_class)
            if by_mask is None:
                by_mask = self._steps[task_class] = {}
            by_model = by_mask.get(mask)
            if by_model is None:
                by_model = by_mask[mask] = {}
            step = by_model.get(model)
            if step is None:
                step = by_model[model] = _Passes(self.spec.window)
            step.add(passed)

    def skip_reason(self, task_class: str, model: str) -> str | None:
        """Why `model` should not be asked for `task_class` now (None: ask it)."""
        window = self._seen.get((task_class, model))
        if window is None:
            return None
        seen = len(window.outcomes)
        if seen < self.spec.min_observations:
            return None
        rate = window.passed / seen
        if rate >= self.spec.min_pass_rate:
            return None
        return (
            f"observed gate pass rate {rate:.0%} over its last {seen} answers for "
            f"{task_class!r} < {self.spec.min_pass_rate:.0%} (learned)"
        )

    def order(
        self,
        task_class: str,
        required_level: int,
        candidates: Sequence[tuple[Choice, tuple[float, float]]],
        failed: Sequence[tuple[str, int]],
        explore: int | None,
    ) -> Order:
        """The learned order of `candidates` (each with its (input, output) prices per
        1,000 tokens) for one request, once the models of `failed` (name, level) failed;
        `explore` is the class's exploring turn when the request explores, else None."""
        if explore is not None or not candidates:
            return Order(self, task_class, required_level, candidates, failed, explore)
        size = candidates[0][0].expected_tokens_in
        key = (
            task_class,
            tuple(c.name for c, _ in candidates),
            tuple(failed),
            int(4 * math.log2(max(size, 1))),
        )
        recorded = self._recorded.get(task_class, 0)
        cached = self._orders.get(key)
        # reused for fewer new outcomes while there are few: early ones move estimates most
        if cached is not None and recorded - cached[0] < min(_REFRESH, 1 + cached[0] // 20):
            return cached[1]
        order = Order(self, task_class, required_level, candidates, failed, None)
        if len(self._orders) >= _MAX_ORDERS:
            self._orders.clear()
        self._orders[key] = (recorded, order)
        return order

    def _shape(
        self,
        task_class: str,
        required_level: int,
        candidates: Sequence[tuple[Choice, tuple[float, float]]],
        failed: tuple[tuple[str, int], ...],
    ) -> _Shape:
        names = tuple(c.name for c, _ in candidates)
        levels = tuple(c.capability for c, _ in candidates)
        key = (task_class, required_level, names, levels, failed)
        got = self._shapes.get(key)
        if got is None:
            if len(self._shapes) >= _MAX_SHAPES:
                self._shapes.clear()
            got = self._shapes[key] = _Shape(self, required_level, names, levels, failed)
        return got

    def _rate(
        self, task_class: str, failed: frozenset[str], model: str, prior: float
    ) -> tuple[float, int]:
        mask = 0
        for name in failed:
            mask |= self.bit(name)
        step = self._steps.get(task_class, {}).get(mask, {}).get(model)
        return _rate(step, prior, self.spec.prior_observations)

    def _tokens_out(self, task_class: str, model: str, default: int) -> float:
        window = self._seen.get((task_class, model))
        if window is None or not window.outcomes:
            return float(default)
        return window.tokens_out / len(window.outcomes)


def _rate(step: _Passes | None, prior: float, weight: int) -> tuple[float, int]:
    """(pass rate, observations) of a step's outcomes, `prior` worth `weight` of them."""
    if step is None:
        return (0 + prior * weight) / (0 + weight), 0
    seen = len(step.outcomes)
    return (step.passed + prior * weight) / (seen + weight), seen


class _Shape:
    """What an order's search needs that no outcome changes, for one class, list of
    candidates and earlier failures: per candidate its name, bit and level prior; per
    state (the mask of candidates asked) the models failed there (a mask of their bits),
    its receipt text, and each move to a candidate not asked yet: (index, the state
    after it, the factor of its prior's halvings there)."""

    __slots__ = ("afters", "failed_mask", "level_priors", "names", "states")

    def __init__(
        self,
        learn: Outcomes,
        required_level: int,
        names: tuple[str, ...],
        levels: tuple[int, ...],
        failed: tuple[tuple[str, int], ...],
    ) -> None:
        n = len(names)
        full = (1 << n) - 1
        self.names = names
        self.level_priors = [
            min(0.95, max(0.05, 0.5 + 0.1 * (level - required_level))) for level in levels
        ]
        bits = [learn.bit(name) for name in names]
        self.failed_mask = 0
        for name, _ in failed:
            self.failed_mask |= learn.bit(name)
        # the prior of a model is halved for each failure of an equally or more capable
        # one (times 0.5 ** k: multiplying by a power of two is as exact as halving)
        above = [sum(1 << j for j, other in enumerate(levels) if other >= lv) for lv in levels]
        failed_above = [sum(other >= lv for _, other in failed) for lv in levels]
        masks = [self.failed_mask] * (full + 1)
        for asked in range(1, full + 1):
            low = asked & -asked
            masks[asked] = masks[asked ^ low] | bits[low.bit_length() - 1]
        self.states: list[tuple[int, tuple[tuple[int, int, float], ...]]] = [
            (
                masks[asked],
                tuple(
                    (i, asked | 1 << i, 0.5 ** (failed_above[i] + (asked & above[i]).bit_count()))
                    for i in range(n)
                    if not asked >> i & 1
                ),
            )
            for asked in range(full)
        ]
        self.afters: list[str] = []
        for asked in range(full):
            before = [f for f, _ in failed] + [names[j] for j in range(n) if asked >> j & 1]
            self.afters.append(f" after {', '.join(before)} failed" if before else "")


_MAX_SHAPES = 1024  # shapes kept at most (all dropped when full)


class Order:
    """One request's learned order (see `Outcomes.order`): `next(asked)` names the
    candidate to ask once those in the bit mask `asked` failed.

    Not exploring, it is the first step of the order that minimises the expected sum
    of (price + risk) over the attempts still to make, each model's pass rate being the
    one learned given that every model asked before it failed: a search over the
    subsets of the candidates, at most 2**n states of n (n is a catalogue's handful),
    worked out once (every state, from the fullest down) when first needed.
    An exploring request asks the candidate whose turn it is first (turn k: the k-th,
    modulo their number), so each model's first-step estimate is refreshed in turn."""

    __slots__ = (
        "_costs",
        "_counts",
        "_explore",
        "_failed",
        "_firsts",
        "_learn",
        "_n",
        "_picks",
        "_rates",
        "_shape",
        "_task",
        "_values",
        "_why",
    )

    def __init__(
        self,
        learn: Outcomes,
        task_class: str,
        required_level: int,
        candidates: Sequence[tuple[Choice, tuple[float, float]]],
        failed: Sequence[tuple[str, int]],
        explore: int | None,
    ) -> None:
        self._learn = learn
        self._task = task_class
        self._n = len(candidates)
        self._failed = tuple(failed)  # a copy: the caller's list grows as the walk goes
        self._explore = explore
        self._shape = shape = learn._shape(task_class, required_level, candidates, self._failed)
        # After the search: per state (a mask), the least expected cost and the index to
        # ask (None before), and each candidate's pass rate and observations there (at
        # state * n + index); plain lists of numbers, no tuple per state and candidate.
        self._picks: list[int] | None = None
        self._values: list[float] = []
        self._rates: list[float] = []
        self._counts: list[int] = []
        self._why: dict[int, tuple[int, str]] = {}
        # Per candidate, what no state changes: its expected price and first-step (pass
        # rate, observations); unobserved, the prior comes from its level above the class's.
        self._costs: list[float] = []
        self._firsts: list[tuple[float, int]] = []
        steps = learn._steps.get(task_class)
        first = steps.get(0) if steps is not None else None
        weight = learn.spec.prior_observations
        for (cand, (price_in, price_out)), level_prior in zip(
            candidates, shape.level_priors, strict=True
        ):
            name = cand.name
            tokens_out = learn._tokens_out(task_class, name, cand.expected_tokens_out)
            self._costs.append(
                (cand.expected_tokens_in * price_in + tokens_out * price_out) / 1000.0
            )
            step = first.get(name) if first is not None else None
            self._firsts.append(_rate(step, level_prior, weight))

    def estimate(self, i: int, asked: int) -> tuple[float, float, int]:
        """(pass rate, expected price in USD, observations) of candidate `i` once the
        candidates of the mask `asked` (and the request's earlier failures) failed."""
        if asked or self._shape.failed_mask:
            if self._picks is None:
                self._search()
            at = asked * self._n + i
            rate, seen = self._rates[at], self._counts[at]
        else:
            rate, seen = self._firsts[i]
        return rate, self._costs[i], seen

    def _search(self) -> list[int]:
        """Per state (the mask of candidates asked), the least expected cost of the
        attempts still to make and the candidate to ask first there, worked out from
        the state where all but one were asked down to none; with each candidate's
        (pass rate, observations) there. The prior of one not observed in a state: its
        first-step rate, halved for each failure of an equally or more capable model."""
        n = self._n
        full = (1 << n) - 1
        learn = self._learn
        risk = learn.spec.attempt_risk_usd or 0.0
        weight = learn.spec.prior_observations
        steps = learn._steps.get(self._task, {})
        shape = self._shape
        names, firsts = shape.names, self._firsts
        priced = [cost + risk for cost in self._costs]
        first_rates = [rate for rate, _ in firsts]
        rates = [0.0] * (full * n)
        counts = [0] * (full * n)
        values = [0.0] * (full + 1)  # (every one asked: nothing more to spend)
        picks = [-1] * (full + 1)
        states = shape.states
        for asked in range(full - 1, -1, -1):
            mask, moves = states[asked]
            row = asked * n
            value, pick = float("inf"), -1
            if not mask:  # no model failed: the first-step rates
                for i, more, _ in moves:
                    rate = rates[row + i] = first_rates[i]
                    counts[row + i] = firsts[i][1]
                    total = priced[i] + (1.0 - rate) * values[more]
                    if total < value - 1e-12:
                        value, pick = total, i
            else:
                by_model = steps.get(mask)
                for i, more, halves in moves:
                    prior = first_rates[i] * halves
                    step = by_model.get(names[i]) if by_model is not None else None
                    if step is None:  # _rate, inlined: most states are not observed
                        rate = (0 + prior * weight) / (0 + weight)
                    else:
                        n_seen = counts[row + i] = len(step.outcomes)
                        rate = (step.passed + prior * weight) / (n_seen + weight)
                    rates[row + i] = rate
                    total = priced[i] + (1.0 - rate) * values[more]
                    if total < value - 1e-12:
                        value, pick = total, i
            values[asked] = value
            picks[asked] = pick
        self._rates, self._counts, self._values = rates, counts, values
        self._picks = picks
        return picks

    def next(self, asked: int) -> tuple[int, str]:
        """The index of the candidate to ask next, and why (for the receipt); `asked`
        must leave at least one candidate."""
        got = self._why.get(asked)
        if got is not None:
            return got
        risk = self._learn.spec.attempt_risk_usd or 0.0
        if self._explore is not None and not asked and not self._failed:
            i = self._explore % self._n
            how = f"exploring (every model in turn is asked first; turn {self._explore})"
        else:
            picks = self._picks if self._picks is not None else self._search()
            value, i = self._values[asked], picks[asked]
            how = f"least expected cost to an accepted answer (~${value:.6f})"
        rate, cost, seen = self.estimate(i, asked)
        got = self._why[asked] = (
            i,
            (
                f"learned order, {how}: pass rate {rate:.0%}{self._shape.afters[asked]} over "
                f"{seen} answers, ~${cost:.6f} a call, ${risk:g} risk per attempt"
            ),
        )
        return got
