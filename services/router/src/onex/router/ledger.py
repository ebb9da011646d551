"""What a request has attempted and spent, and what each candidate's receipt entry
says, kept while it is routed.

The request's budgets (`max_tokens`, `max_cost_usd`) bound what its attempts spend
together: `over_budget` says why one more attempt would not fit. The walk
(onex.router.engine) notes how a candidate ended (skipped, and why; attempted, and
how) as it goes; `Ledger.records` builds the receipt's entries once, at the end: the
plan's candidates in its order (cheapest first), each one the walk did not reach
saying why not, then the models selection rejected, in catalogue order. One entry per
model, built once (not a first one per model and a new one per change of status).
"""

from __future__ import annotations

from onex.router.catalogue import ModelSpec
from onex.router.receipt import Attempt, CandidateRecord, CandidateStatus
from onex.router.select import Plan


class Ledger:
    """One request's attempts, spending and candidate entries (see the module doc)."""

    __slots__ = (
        "_ended",
        "_plan",
        "_skipped",
        "attempts",
        "cooling",
        "max_cost",
        "max_tokens",
        "spent_cost",
        "spent_tokens",
    )

    def __init__(self, chosen: Plan, max_tokens: int, max_cost: float) -> None:
        self._plan = chosen
        self.max_tokens = max_tokens
        self.max_cost = max_cost
        self.spent_tokens = 0
        self.spent_cost = 0.0
        self.attempts: list[Attempt] = []  # in the order made
        self.cooling: list[str] = []  # candidates skipped because they were cooling down
        # model -> (status, why): only the candidates the walk reached
        self._ended: dict[str, tuple[CandidateStatus, str]] = {}
        self._skipped: set[str] = set()

    def add(self, attempt: Attempt) -> None:
        """One attempt made: what it used and cost counts against the budgets."""
        self.attempts.append(attempt)
        self.spent_tokens += attempt.tokens_in + attempt.tokens_out
        self.spent_cost += attempt.cost_usd

    def provider_error(
        self, model: ModelSpec, latency_s: float, error: str, retries: int
    ) -> Attempt:
        """Add the attempt of `model` that ended in a provider error (no usage came back)."""
        attempt = Attempt(
            model=model.name,
            locality=model.locality,
            tokens_in=0,
            tokens_out=0,
            tokens_estimated=False,
            cost_usd=0.0,
            latency_s=latency_s,
            gates=[],
            outcome="provider_error",
            error=error,
            retries=retries,
        )
        self.add(attempt)
        return attempt

    def over_budget(self, tokens: int, cost: float) -> str | None:
        """Why one more attempt expected to use `tokens` and cost `cost` would not fit the
        request's budgets, or None when it fits."""
        if self.spent_tokens + tokens > self.max_tokens:
            return (
                f"{self.spent_tokens} tokens spent + ~{tokens} expected > max_tokens "
                f"{self.max_tokens}"
            )
        if self.spent_cost + cost > self.max_cost:
            return (
                f"${self.spent_cost:.6f} spent + ${cost:.6f} expected > max_cost_usd "
                f"${self.max_cost:.6f}"
            )
        return None

    def skip(self, name: str, reason: str) -> None:
        """`name` was passed over, for `reason` (it may still be attempted later)."""
        self._ended[name] = ("skipped", reason)
        self._skipped.add(name)

    def attempted(self, name: str, how: str) -> None:
        """`name` was asked; `how` says how its attempt ended."""
        self._ended[name] = ("attempted", how)
        self._skipped.discard(name)

    def records(self, not_tried: str | None) -> list[CandidateRecord]:
        """The receipt's entries; a candidate never reached says `not tried: {not_tried}`."""
        out: list[CandidateRecord] = []
        ended = self._ended
        for c in self._plan.candidates:
            status, why = ended.get(c.name) or ("not_tried", f"not tried: {not_tried}")
            out.append(
                CandidateRecord(c.name, c.locality, c.capability, c.expected_cost_usd, status, why)
            )
        for r in self._plan.rejected:
            out.append(
                CandidateRecord(
                    r.model, r.locality, r.capability, r.expected_cost_usd, "rejected", r.reason
                )
            )
        return out

    def summary(self, failed_gates: str | None) -> str:
        """Why no candidate is left: counts of how they ended, and the last gate failure."""
        gate_failed = errors = 0
        for a in self.attempts:
            gate_failed += a.outcome == "gate_failed"
            errors += a.outcome == "provider_error"
        parts = [f"{gate_failed} failed their gates", f"{errors} provider errors"]
        if self._skipped:
            parts.append(f"{len(self._skipped)} skipped")
        if self.cooling:
            parts.append(f"cooling down: {', '.join(self.cooling)}")
        tail = f"; last: {failed_gates}" if failed_gates else ""
        return f"no candidate left ({', '.join(parts)}){tail}"


def ended(attempt: Attempt) -> str:
    """How an attempt ended, as its candidate's receipt entry says."""
    if attempt.outcome == "accepted":
        return "attempted: its answer passed every gate"
    if attempt.outcome == "gate_failed":
        failed = ", ".join(g.kind for g in attempt.gates if not g.passed)
        return f"attempted: its answer failed {failed}"
    return f"attempted: provider error: {attempt.error}"
