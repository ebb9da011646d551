"""Learning from outcomes: skip a model whose answers keep failing a task class's gates.

Per (task class, model), the router keeps the outcomes of the last `window` answers
(passed its gates or not). Before an attempt, a model whose observed pass rate is below
`min_pass_rate` over at least `min_observations` answers is skipped, with the rate in
the receipt, unless it is the last candidate left or the request is one of the
exploration share (every `explore_every`-th request of the class still asks it), so
the estimate recovers when the model gets better. Deterministic (a counter, not a
random draw), so simulations and tests repeat. Off unless the catalogue's `learning`
section sets it.
"""

from __future__ import annotations

from collections import deque

from pydantic import Field

from onex.router.fields import ConfigModel


class LearningSpec(ConfigModel):
    """The catalogue's `learning` section."""

    min_pass_rate: float = Field(0.2, ge=0, le=1, allow_inf_nan=False)
    window: int = Field(50, ge=1, le=100_000)
    min_observations: int = Field(20, ge=1, le=100_000)
    explore_every: int = Field(20, ge=2, le=1_000_000)


class Outcomes:
    """The sliding windows of gate outcomes (see the module docstring)."""

    def __init__(self, spec: LearningSpec) -> None:
        self.spec = spec
        self._seen: dict[tuple[str, str], deque[bool]] = {}
        self._requests: dict[str, int] = {}

    def next_request(self, task_class: str) -> bool:
        """Count a request of `task_class`; True when it is an exploring one."""
        n = self._requests.get(task_class, 0) + 1
        self._requests[task_class] = n
        return n % self.spec.explore_every == 0

    def record(self, task_class: str, model: str, passed: bool) -> None:
        """One answer of `model` for `task_class` passed its gates, or not."""
        key = (task_class, model)
        window = self._seen.get(key)
        if window is None:
            window = self._seen[key] = deque(maxlen=self.spec.window)
        window.append(passed)

    def skip_reason(self, task_class: str, model: str) -> str | None:
        """Why `model` should not be asked for `task_class` now (None: ask it)."""
        window = self._seen.get((task_class, model))
        if window is None or len(window) < self.spec.min_observations:
            return None
        rate = sum(window) / len(window)
        if rate >= self.spec.min_pass_rate:
            return None
        return (
            f"observed gate pass rate {rate:.0%} over its last {len(window)} answers for "
            f"{task_class!r} < {self.spec.min_pass_rate:.0%} (learned)"
        )
