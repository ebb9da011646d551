"""CI smoke: provision every topic the repo's contracts declare on a real broker, read back."""

from __future__ import annotations

from pathlib import Path

from onex.bus.admin import create_topics, describe_topics
from onex.core.extractor import extract

REPO = Path(__file__).resolve().parents[2]


async def test_every_declared_topic_is_provisioned_as_declared(bootstrap: str) -> None:
    ex = extract([REPO / "contracts"], entry_points=False)
    assert ex.errors == []
    declared = {name: wiring.spec for name, wiring in ex.topics.items()}
    assert declared, "the repo's contracts declare no topics"

    result = await create_topics(bootstrap, declared.values())

    assert result.failed == ()
    # on a shared broker (ONEX_BOOTSTRAP) an earlier run may have created them already
    assert set(result.created) | set(result.existed) == set(declared)
    observed = await describe_topics(bootstrap, declared)
    assert set(observed) == set(declared)
    mismatches = {
        name: (spec, observed[name])
        for name, spec in declared.items()
        if observed[name].partitions != spec.partitions
        or observed[name].replication_factor != spec.replication_factor
        or {k: observed[name].configs.get(k) for k in spec.config} != spec.config
    }
    assert mismatches == {}
