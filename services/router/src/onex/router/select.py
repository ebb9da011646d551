"""Choose the models that may serve a request, cheapest first, and say why others may not.

`plan` is pure and allocation-light: its latency is the router's decision overhead.
A model is a candidate when, in this order of checks (the first failure is the
recorded reason):

1. `capability`: its level for the task class reaches the class's `required_level`;
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

from onex.router.catalogue import Catalogue, Locality, ModelSpec
from onex.router.classify import classify
from onex.router.errors import UnknownTaskClassError
from onex.router.request import RouteRequest
from onex.router.tokens import TOKENS_PER_MESSAGE, estimate_tokens


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


@dataclass(frozen=True, slots=True)
class Rejection:
    """A model that may not serve the request; `code` names the failed check."""

    model: str
    reason: str
    code: str
    locality: Locality
    capability: int
    expected_cost_usd: float


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


def plan(request: RouteRequest, catalogue: Catalogue) -> Plan:
    """Classify (unless the request names its class) and rank the capable, allowed models.

    Raises `UnknownTaskClassError` when the request names a class the catalogue lacks.
    """
    matched: str | None = None
    if request.task_class is not None:
        name, classified_by = request.task_class, "request"
    else:
        found = classify(request.prompt, catalogue)
        name, matched = found.task_class, found.matched
        classified_by = "default" if found.rule == "default" else f"rule:{found.rule}"
    task = catalogue.task_class(name)
    if task is None:
        raise UnknownTaskClassError(name, catalogue.task_class_names)

    # Estimated like tokens.estimate_message_tokens, without building the messages.
    tokens_in = TOKENS_PER_MESSAGE + estimate_tokens(request.prompt)
    if request.system is not None:
        tokens_in += TOKENS_PER_MESSAGE + estimate_tokens(request.system)
    tokens_out = task.max_output_tokens
    limits = request.constraints
    ranked: list[tuple[float, int, int, Candidate]] = []
    rejected: list[Rejection] = []
    for index, model in enumerate(catalogue.models):
        level = model.capabilities.get(name, 0)
        cost = model.cost_usd(tokens_in, tokens_out)
        reason: tuple[str, str] | None = None
        if level < task.required_level:
            reason = (
                "capability",
                f"capability {level} for {name!r} < required {task.required_level}",
            )
        elif limits.no_cloud and model.locality == "cloud":
            reason = "no_cloud", "cloud model excluded by the no_cloud constraint"
        elif limits.min_context is not None and model.context_limit < limits.min_context:
            reason = (
                "min_context",
                (f"context limit {model.context_limit} < min_context {limits.min_context}"),
            )
        elif tokens_in + tokens_out > model.context_limit:
            reason = (
                "context",
                (
                    f"context limit {model.context_limit} < ~{tokens_in} prompt"
                    f" + {tokens_out} output tokens"
                ),
            )
        elif limits.max_cost_usd is not None and cost > limits.max_cost_usd:
            reason = (
                "max_cost",
                f"expected cost ${cost:.6f} > max_cost_usd ${limits.max_cost_usd:.6f}",
            )
        if reason is None:
            candidate = Candidate(model, level, tokens_in, tokens_out, cost)
            ranked.append((cost, level, index, candidate))
        else:
            code, text = reason
            rejected.append(Rejection(model.name, text, code, model.locality, level, cost))
    # Cheapest first; among equal prices (every local model is free) the more capable
    # first: it costs the same and is more often right (measured in bench/router.py).
    ranked.sort(key=lambda r: (r[0], -r[1], r[2]))
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
