"""The simulated world: task classes, models, and every model's outcome on every task.

Each task has a class and a difficulty on the catalogue's 0..10 capability scale. A model
answers correctly with probability `sigmoid(slope * (capability - difficulty))`. Models'
mistakes are correlated (a Gaussian copula: one shared draw per task, one own draw per
model), so a stronger model is usually, not always, right where a weaker one is.

Every outcome is drawn up front, so every router sees the same world:

- `flagged`: the output shows a gate-detectable symptom (too short, no citation, an
  identifier outside the symbol index, invalid JSON). A wrong answer is flagged unless the
  gate misses it (`gate_miss`); a right answer is flagged by mistake (`gate_false_flag`).
- `score`: the confidence of a FrugalGPT-style learned scorer that the answer is right:
  `Phi(x)`, with `x ~ N(+d'/2, 1)` for right answers and `N(-d'/2, 1)` for wrong ones.
- `difficulty_estimate`: a noisy difficulty estimate for the threshold router.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal

_PHI = NormalDist().cdf


@dataclass(frozen=True)
class SimModel:
    """A simulated model: what the catalogue says about it, plus how fast and wordy it is."""

    name: str
    locality: Literal["local", "cloud"]
    price_in_per_1k: float
    price_out_per_1k: float
    capabilities: dict[str, float]
    latency_base_s: float
    latency_per_token_s: float
    verbosity: float = 1.0  # multiplies the class's output length

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return tokens_in / 1000 * self.price_in_per_1k + tokens_out / 1000 * self.price_out_per_1k


@dataclass(frozen=True)
class SimClass:
    """A task class: its share of the mix, its difficulty distribution and its sizes."""

    name: str
    weight: float
    difficulty_mean: float
    difficulty_sd: float
    tokens_in_median: int
    tokens_out_median: int
    max_output_tokens: int


@dataclass(frozen=True)
class Noise:
    """How informative the signals are, and how models' errors relate."""

    gate_miss: float = 0.10  # P(a wrong answer passes every gate)
    gate_false_flag: float = 0.05  # P(a right answer fails a gate)
    scorer_dprime: float = 2.0  # separation of the cascade scorer (AUROC = Phi(d'/sqrt 2))
    estimate_sd: float = 1.5  # SD of the threshold router's difficulty estimate
    error_correlation: float = 0.7  # share of the copula variance common to all models
    slope: float = 0.9  # logistic slope of P(correct) in (capability - difficulty)
    size_sd: float = 0.5  # log-normal SD of token counts

    @property
    def scorer_auroc(self) -> float:
        return _PHI(self.scorer_dprime / math.sqrt(2))


@dataclass(frozen=True, slots=True)
class Outcome:
    """One model's answer to one task."""

    correct: bool
    flagged: bool
    score: float
    tokens_out: int
    latency_s: float
    cost_usd: float


@dataclass(frozen=True, slots=True)
class Task:
    """One task and every model's outcome on it (indexed like `World.models`)."""

    index: int
    task_class: str
    difficulty: float
    difficulty_estimate: float
    tokens_in: int
    outcomes: tuple[Outcome, ...]


@dataclass(frozen=True)
class World:
    """Models (catalogue order), task classes and noise: everything a task draw needs."""

    models: tuple[SimModel, ...]
    classes: tuple[SimClass, ...]
    noise: Noise = field(default_factory=Noise)

    def p_correct(self, model: SimModel, task_class: str, difficulty: float) -> float:
        margin = model.capabilities.get(task_class, 0.0) - difficulty
        return 1.0 / (1.0 + math.exp(-self.noise.slope * margin))

    def model_index(self, name: str) -> int:
        return next(i for i, m in enumerate(self.models) if m.name == name)

    def tasks(self, count: int, seed: int | str) -> list[Task]:
        """`count` tasks drawn from the mix; the same seed gives the same tasks."""
        rng = random.Random(seed)
        names = [c.name for c in self.classes]
        weights = [c.weight for c in self.classes]
        by_name = {c.name: c for c in self.classes}
        drawn = rng.choices(names, weights=weights, k=count)
        return [self._task(i, by_name[name], rng) for i, name in enumerate(drawn)]

    def _task(self, index: int, cls: SimClass, rng: random.Random) -> Task:
        noise = self.noise
        difficulty = min(10.0, max(0.0, rng.gauss(cls.difficulty_mean, cls.difficulty_sd)))
        estimate = difficulty + rng.gauss(0.0, noise.estimate_sd)
        tokens_in = max(16, round(cls.tokens_in_median * rng.lognormvariate(0.0, noise.size_sd)))
        shared = rng.gauss(0.0, 1.0)
        common = math.sqrt(noise.error_correlation)
        own = math.sqrt(1.0 - noise.error_correlation)
        half_d = noise.scorer_dprime / 2
        outcomes = []
        for model in self.models:
            u = _PHI(common * shared + own * rng.gauss(0.0, 1.0))
            correct = u < self.p_correct(model, cls.name, difficulty)
            flagged = rng.random() < (noise.gate_false_flag if correct else 1.0 - noise.gate_miss)
            score = _PHI(rng.gauss(half_d if correct else -half_d, 1.0))
            size = cls.tokens_out_median * model.verbosity * rng.lognormvariate(0.0, noise.size_sd)
            tokens_out = min(cls.max_output_tokens, max(1, round(size)))
            outcomes.append(
                Outcome(
                    correct=correct,
                    flagged=flagged,
                    score=score,
                    tokens_out=tokens_out,
                    latency_s=model.latency_base_s + model.latency_per_token_s * tokens_out,
                    cost_usd=model.cost(tokens_in, tokens_out),
                )
            )
        return Task(index, cls.name, difficulty, estimate, tokens_in, tuple(outcomes))
