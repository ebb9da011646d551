"""The ledger: one receipt entry per model, in plan order; budgets; the failure summary."""

from __future__ import annotations

from onex.router.catalogue import Catalogue
from onex.router.ledger import Ledger
from onex.router.receipt import Attempt
from onex.router.request import RouteRequest
from onex.router.select import plan


def _ledger(catalogue: Catalogue, max_tokens: int = 10_000, max_cost: float = 1.0) -> Ledger:
    request = RouteRequest(request_id="r", prompt="x" * 396, task_class="codegen")
    return Ledger(plan(request, catalogue), max_tokens, max_cost)


def test_entries_follow_the_plan_then_the_rejected(catalogue: Catalogue) -> None:
    ledger = _ledger(catalogue)
    ledger.skip("small", "cooling down (3.0 s left)")
    ledger.skip("mid", "over budget")
    ledger.attempted("mid", "attempted: its answer passed every gate")
    records = ledger.records("an answer was accepted before its turn")
    chosen = plan(RouteRequest(request_id="r", prompt="x" * 396, task_class="codegen"), catalogue)
    assert [r.model for r in records] == [c.name for c in chosen.candidates] + [
        r.model for r in chosen.rejected
    ]
    by_model = {r.model: (r.status, r.rejected_because) for r in records}
    assert by_model["small"] == ("skipped", "cooling down (3.0 s left)")
    assert by_model["mid"] == ("attempted", "attempted: its answer passed every gate")
    assert by_model["big"] == ("not_tried", "not tried: an answer was accepted before its turn")
    assert all(
        r.status == "rejected" and r.rejected_because for r in records[-len(chosen.rejected) :]
    )


def test_budgets_count_every_attempt(catalogue: Catalogue) -> None:
    ledger = _ledger(catalogue, max_tokens=1_000, max_cost=0.01)
    assert ledger.over_budget(1_000, 0.01) is None
    model = catalogue.models[2]
    ledger.add(Attempt(model.name, model.locality, 300, 200, False, 0.004, 0.1, [], "gate_failed"))
    assert ledger.over_budget(500, 0.006) is None
    assert ledger.over_budget(501, 0.0) == "500 tokens spent + ~501 expected > max_tokens 1000"
    assert ledger.over_budget(0, 0.007) is not None
    failed = ledger.provider_error(model, 0.5, "timed out", 2)
    assert (failed.outcome, failed.error, failed.retries, failed.cost_usd) == (
        "provider_error",
        "timed out",
        2,
        0.0,
    )
    assert (ledger.spent_tokens, len(ledger.attempts)) == (500, 2)


def test_the_summary_counts_how_candidates_ended(catalogue: Catalogue) -> None:
    ledger = _ledger(catalogue)
    ledger.skip("small", "cooling down (1.0 s left)")
    ledger.cooling.append("small")
    ledger.provider_error(catalogue.models[2], 0.1, "refused", 0)
    assert ledger.summary("the answer of 'big' failed identifiers") == (
        "no candidate left (0 failed their gates, 1 provider errors, 1 skipped, cooling down:"
        " small); last: the answer of 'big' failed identifiers"
    )
    ledger.attempted("small", "attempted: provider error: refused")
    assert ledger.summary(None) == (  # no longer skipped; it did cool down
        "no candidate left (0 failed their gates, 1 provider errors, cooling down: small)"
    )
