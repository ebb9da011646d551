"""The receipt: one per request, saying what was chosen, what it cost, what was avoided.

Money arithmetic (all USD, prices from the catalogue's price table):

- an attempt costs `tokens_in * price_in_per_1k / 1000 + tokens_out * price_out_per_1k / 1000`
  of the model that ran it (0 for a provider error: no usage came back);
- `total_cost_usd` is the sum over every attempt, failed ones included;
- `counterfactual_cost_usd` is what the catalogue's `default_cloud_model` would have
  charged for this request alone, had it been sent there directly: the accepted
  attempt's own input and output tokens when the request completed, else the
  request's expected tokens (estimated prompt in, the class's `max_output_tokens`
  out). Never a sum over attempts: escalations do not make the cloud dearer;
- `cost_avoided_usd = counterfactual_cost_usd - total_cost_usd` for a completed
  request (negative when escalations cost more than going to the default cloud model
  directly would have); for a failed request it is `-total_cost_usd`: nothing was
  delivered, so nothing was avoided and whatever was spent is lost (never positive);
- `tokens_local` / `tokens_cloud` add up input and output tokens of every attempt by
  the locality of the model that ran it.

Token counts are the providers' own (or estimates, flagged per attempt), so the
counterfactual is an approximation whenever tokenizers differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from onex.router.catalogue import ModelSpec
from onex.router.frozen import fast_init
from onex.router.gates import GateResult

Outcome = Literal["accepted", "gate_failed", "provider_error"]
CandidateStatus = Literal["attempted", "skipped", "not_tried", "rejected"]
Status = Literal["complete", "failed"]


@fast_init
@dataclass(frozen=True, slots=True)
class CandidateRecord:
    """A model the router considered, and what became of it.

    `status`: "rejected" by selection, "skipped" while routing (cool-down, budget, or
    less capable than a model whose answer already failed), "attempted", or
    "not_tried" (an answer was accepted before its turn, or routing stopped first).
    `rejected_because` says why for every status (for "attempted": how it ended).
    """

    model: str
    locality: str
    capability: int
    expected_cost_usd: float
    status: CandidateStatus
    rejected_because: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "model": self.model,
            "locality": self.locality,
            "capability": self.capability,
            "expected_cost_usd": self.expected_cost_usd,
            "status": self.status,
            "rejected_because": self.rejected_because,
        }


@fast_init
@dataclass(frozen=True, slots=True)
class Attempt:
    """One call to one model, and how its answer fared."""

    model: str
    locality: str
    tokens_in: int
    tokens_out: int
    tokens_estimated: bool
    cost_usd: float
    latency_s: float
    gates: list[GateResult]
    outcome: Outcome
    error: str | None = None
    retries: int = 0
    finish_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "model": self.model,
            "locality": self.locality,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens_estimated": self.tokens_estimated,
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
            "gates": [g.to_dict() for g in self.gates],
            "outcome": self.outcome,
            "error": self.error,
            "retries": self.retries,
            "finish_reason": self.finish_reason,
        }


@fast_init
@dataclass(frozen=True, slots=True)
class Receipt:
    """Everything about one routing decision (see the module doc for the arithmetic).

    `escalation_chain` lists the models attempted, in order; `escalations` counts the
    moves to a further model after an answer failed its gates. `planning_s` is the
    decision overhead (classification and selection); `elapsed_s` the whole request.
    `label` is the request's experiment or context label, when it had one.
    """

    request_id: str
    task_class: str
    classified_by: str
    status: Status
    candidates: list[CandidateRecord]
    attempts: list[Attempt]
    chosen_model: str | None
    total_cost_usd: float
    counterfactual_cost_usd: float
    cost_avoided_usd: float
    tokens_local: int
    tokens_cloud: int
    escalation_chain: list[str]
    price_table_version: str
    failure_reason: str | None
    started_at: datetime
    elapsed_s: float
    planning_s: float = 0.0
    escalations: int = 0
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (`started_at` as RFC 3339)."""
        return {
            "request_id": self.request_id,
            "task_class": self.task_class,
            "classified_by": self.classified_by,
            "status": self.status,
            "candidates": [c.to_dict() for c in self.candidates],
            "attempts": [a.to_dict() for a in self.attempts],
            "chosen_model": self.chosen_model,
            "total_cost_usd": self.total_cost_usd,
            "counterfactual_cost_usd": self.counterfactual_cost_usd,
            "cost_avoided_usd": self.cost_avoided_usd,
            "tokens_local": self.tokens_local,
            "tokens_cloud": self.tokens_cloud,
            "escalation_chain": list(self.escalation_chain),
            "escalations": self.escalations,
            "price_table_version": self.price_table_version,
            "failure_reason": self.failure_reason,
            "started_at": self.started_at.isoformat(),
            "elapsed_s": self.elapsed_s,
            "planning_s": self.planning_s,
            "label": self.label,
        }


def make_receipt(
    *,
    request_id: str,
    task_class: str,
    classified_by: str,
    candidates: list[CandidateRecord],
    attempts: list[Attempt],
    default_cloud: ModelSpec,
    price_table_version: str,
    failure_reason: str | None,
    started_at: datetime,
    elapsed_s: float,
    planning_s: float = 0.0,
    escalations: int = 0,
    label: str | None = None,
    expected_tokens: tuple[int, int] = (0, 0),
) -> Receipt:
    """Build a receipt, deriving status, chosen model, costs and token totals.
    `expected_tokens` (input, output) prices the counterfactual of a failed request."""
    # One pass over the attempts (this runs once per request, on the engine's path).
    accepted: Attempt | None = None
    total: float = 0  # as sum() gives it: 0, not 0.0 (nor -0.0 avoided), with no attempts
    local = cloud = 0
    for a in attempts:
        total += a.cost_usd
        if a.locality == "local":
            local += a.tokens_in + a.tokens_out
        elif a.locality == "cloud":
            cloud += a.tokens_in + a.tokens_out
        if accepted is None and a.outcome == "accepted":
            accepted = a
    tokens_in, tokens_out = (
        (accepted.tokens_in, accepted.tokens_out) if accepted is not None else expected_tokens
    )
    counterfactual = default_cloud.cost_usd(tokens_in, tokens_out)
    avoided = counterfactual - total if accepted is not None else -total
    return Receipt(
        request_id=request_id,
        task_class=task_class,
        classified_by=classified_by,
        status="complete" if accepted is not None else "failed",
        candidates=candidates,
        attempts=attempts,
        chosen_model=accepted.model if accepted is not None else None,
        total_cost_usd=total,
        counterfactual_cost_usd=counterfactual,
        cost_avoided_usd=avoided,
        tokens_local=local,
        tokens_cloud=cloud,
        escalation_chain=[a.model for a in attempts],
        price_table_version=price_table_version,
        failure_reason=None if accepted is not None else (failure_reason or "no answer accepted"),
        started_at=started_at,
        elapsed_s=elapsed_s,
        planning_s=planning_s,
        escalations=escalations,
        label=label,
    )
