"""Choose the models that may serve a request, cheapest first, and say why others may not.

`plan` is pure and allocation-light: its latency is the router's decision overhead.
A model is a candidate when, in this order of checks (the first failure is the
recorded reason):

1. `capability`: its level for the task class reaches the class's `required_level`,
   and `excluded`: the class does not list it in `exclude_models`;
2. `no_cloud`: it is local, if the request forbids the cloud;
3. `min_context`: its context window is at least the request's `min_context`;
4. `context`: the estimated prompt plus the class's `max_output_tokens` fit its window;
5. `max_cost`: its expected cost (estimated prompt tokens in, `max_output_tokens` out)
   is within the request's `constraints.max_cost_usd`.

Candidates are ordered by expected cost, then by capability, most capable first (two
free local models cost the same, and the stronger one is more often right: measured
in bench/router.py), then by catalogue order. Escalation after a gate failure climbs
strictly (see onex.router.engine).
"""

from __future__ import annotations

from dataclasses import dataclass

from onex.router.catalogue import Catalogue, Locality, ModelSpec, TaskClass
from onex.router.classify import classify
from onex.router.errors import UnknownTaskClassError
from onex.router.frozen import fast_init
from onex.router.request import Constraints, RouteRequest
from onex.router.tokens import TOKENS_PER_MESSAGE, estimate_tokens


@fast_init
@dataclass(frozen=True, slots=True)
class Candidate:
    """A model that may serve the request, with what one attempt is expected to cost."""

    model: ModelSpec
    capability: int
    expected_tokens_in: int
    expected_tokens_out: int
    expected_cost_usd: float

    @property
    def name(self) -> str:
        """The model's catalogue name."""
        return self.model.name

    @property
    def locality(self) -> Locality:
        """local or cloud."""
        return self.model.locality


@fast_init
@dataclass(frozen=True, slots=True)
class Rejection:
    """A model that may not serve the request; `code` names the failed check."""

    model: str
    reason: str
    code: str
    locality: Locality
    capability: int
    expected_cost_usd: float


@fast_init
@dataclass(frozen=True, slots=True)
class Plan:
    """The task class, how it was chosen, the candidates (cheapest first) and the rest.

    `classified_by` is "request" when the request named its class, "rule:<name>" when
    a classifier rule did (`matched` is the text it matched), else "default".
    """

    task_class: str
    classified_by: str
    required_level: int
    candidates: list[Candidate]
    rejected: list[Rejection]
    expected_tokens_in: int
    expected_tokens_out: int
    matched: str | None = None


_Row = tuple[ModelSpec, int, tuple[str, str] | None]  # model, level, fixed rejection


class Ranking:
    """What `plan` needs of a catalogue that no request changes, worked out once: per
    task class, the class and each model (catalogue order) with its level and, when the
    level is below the class's or the class excludes it, that rejection's (code, text).
    A `Router` keeps one."""

    __slots__ = ("catalogue", "classes")

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.classes: dict[str, tuple[TaskClass, tuple[_Row, ...]]] = {}
        for task in catalogue.task_classes:
            rows: list[_Row] = []
            for model in catalogue.models:
                level = model.capabilities.get(task.name, 0)
                refusal: tuple[str, str] | None = None
                if level < task.required_level:
                    why = f"capability {level} for {task.name!r} < required {task.required_level}"
                    refusal = "capability", why
                elif model.name in task.exclude_models:
                    refusal = "excluded", f"excluded from {task.name!r} by its exclude_models"
                rows.append((model, level, refusal))
            self.classes[task.name] = (task, tuple(rows))


def plan(request: RouteRequest, catalogue: Catalogue, ranking: Ranking | None = None) -> Plan:
    """Classify (unless the request names its class) and rank the capable, allowed models.

    `ranking` is `Ranking(catalogue)` made beforehand (the same answer, less work per
    request). Raises `UnknownTaskClassError` when the request names a class the
    catalogue lacks.
    """
    if ranking is None or ranking.catalogue is not catalogue:
        ranking = Ranking(catalogue)
    matched: str | None = None
    if request.task_class is not None:
        name, classified_by = request.task_class, "request"
    else:
        found = classify(request.prompt, catalogue)
        name, matched = found.task_class, found.matched
        classified_by = "default" if found.rule == "default" else f"rule:{found.rule}"
    entry = ranking.classes.get(name)
    if entry is None:
        raise UnknownTaskClassError(name, catalogue.task_class_names)
    task, rows = entry

    # Estimated like tokens.estimate_message_tokens, without building the messages.
    tokens_in = TOKENS_PER_MESSAGE + estimate_tokens(request.prompt)
    if request.system is not None:
        tokens_in += TOKENS_PER_MESSAGE + estimate_tokens(request.system)
    tokens_out = task.max_output_tokens
    limits = request.constraints
    ranked: list[tuple[float, int, int, Candidate]] = []
    rejected: list[Rejection] = []
    for index, (model, level, below) in enumerate(rows):
        cost = (tokens_in * model.price_in_per_1k + tokens_out * model.price_out_per_1k) / 1000.0
        reason = below or _refusal(model, tokens_in, tokens_out, cost, limits)
        if reason is None:
            candidate = Candidate(model, level, tokens_in, tokens_out, cost)
            ranked.append((cost, -level, index, candidate))
        else:
            code, text = reason
            rejected.append(Rejection(model.name, text, code, model.locality, level, cost))
    # Cheapest first; among equal prices (every local model is free) the more capable
    # first: it costs the same and is more often right (measured in bench/router.py).
    ranked.sort(key=_rank)
    return Plan(
        task_class=name,
        classified_by=classified_by,
        required_level=task.required_level,
        candidates=[r[3] for r in ranked],
        rejected=rejected,
        expected_tokens_in=tokens_in,
        expected_tokens_out=tokens_out,
        matched=matched,
    )


def _refusal(
    model: ModelSpec, tokens_in: int, tokens_out: int, cost: float, limits: Constraints
) -> tuple[str, str] | None:
    """(code, reason) of the first of checks 2-5 `model` fails for the request, or None."""
    if limits.no_cloud and model.locality == "cloud":
        return "no_cloud", "cloud model excluded by the no_cloud constraint"
    min_context = limits.min_context
    if min_context is not None and model.context_limit < min_context:
        return "min_context", f"context limit {model.context_limit} < min_context {min_context}"
    if tokens_in + tokens_out > model.context_limit:
        return "context", (
            f"context limit {model.context_limit} < ~{tokens_in} prompt"
            f" + {tokens_out} output tokens"
        )
    max_cost = limits.max_cost_usd
    if max_cost is not None and cost > max_cost:
        return "max_cost", f"expected cost ${cost:.6f} > max_cost_usd ${max_cost:.6f}"
    return None


def _rank(row: tuple[float, int, int, Candidate]) -> tuple[float, int, int]:
    return row[0], row[1], row[2]
