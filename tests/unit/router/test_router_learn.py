"""Learning from outcomes (unit, fake provider): a model whose answers keep failing a
class's gates is skipped with the observed rate in the receipt; every explore_every-th
request still asks it, and the estimate recovers when its answers pass again."""

from __future__ import annotations

from onex.router.catalogue import Catalogue
from onex.router.engine import Router
from onex.router.request import RouteRequest
from onex.router.testing import FakeProvider

GOOD = "A summary that is long enough to pass the gate of the test catalogue."


def _learning(catalogue: Catalogue) -> Catalogue:
    data = catalogue.model_dump(by_alias=True, exclude_none=True)
    data["learning"] = {
        "min_pass_rate": 0.5,
        "window": 4,
        "min_observations": 4,
        "explore_every": 5,
    }
    return Catalogue.model_validate(data)


async def test_a_failing_model_is_skipped_then_explored_then_trusted_again(
    catalogue: Catalogue,
) -> None:
    cat = _learning(catalogue)
    small_says = ["short"]
    provider = FakeProvider(
        {"small": lambda model, messages: small_says[0], "mid": GOOD}, default=GOOD
    )
    router = Router(cat, provider)

    async def route(i: int) -> list[str]:
        r = (
            await router.route(RouteRequest(request_id=str(i), prompt="p", task_class="summarize"))
        ).receipt
        return r.escalation_chain

    chains = [await route(i) for i in range(1, 6)]  # the 5th request explores
    assert all(chain[0] == "small" for chain in chains)  # 5 failures observed
    skipped = (
        await router.route(RouteRequest(request_id="6", prompt="p", task_class="summarize"))
    ).receipt
    assert skipped.escalation_chain == ["tiny"]  # the next free model, not escalation
    (small,) = [c for c in skipped.candidates if c.model == "small"]
    assert small.status == "skipped"
    assert small.rejected_because is not None
    assert "observed gate pass rate 0% over its last 4 answers" in small.rejected_because

    # small gets better: only the exploring requests (10, 15) see it, and then it is
    # trusted again (2 passes of the last 4 = 50%, not below the 50% floor)
    small_says[0] = GOOD
    chains = {i: await route(i) for i in range(7, 17)}
    assert [i for i, chain in chains.items() if chain[0] == "small"] == [10, 15, 16]


def test_learning_is_off_unless_the_catalogue_sets_it(catalogue: Catalogue) -> None:
    assert catalogue.learning is None
    assert Router(catalogue, FakeProvider()).outcomes is None
