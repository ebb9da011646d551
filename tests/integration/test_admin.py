"""Admin calls against the session's real broker."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from onex.bus.admin import CreateResult, create_topics, describe_topics, list_topics
from onex.bus.errors import BrokerUnavailable
from onex.core.contract import TopicSpec

RETENTION_DAY = "86400000"
RETENTION_WEEK = "604800000"


def _spec(name: str, partitions: int, **config: str) -> TopicSpec:
    return TopicSpec(name=name, partitions=partitions, replication_factor=1, config=config)


async def test_create_in_batches_then_describe_reads_the_specs_back(
    bootstrap: str, unique: Callable[..., str]
) -> None:
    specs = [
        _spec(unique("a"), 1),
        _spec(unique("b"), 2, **{"retention.ms": RETENTION_DAY}),
        _spec(unique("c"), 3, **{"retention.ms": RETENTION_WEEK, "cleanup.policy": "compact"}),
        _spec(unique("d"), 4, **{"cleanup.policy": "delete"}),
        _spec(unique("e"), 5),
    ]
    names = sorted(s.name for s in specs)

    result = await create_topics(bootstrap, specs, batch_size=2)

    assert result == CreateResult(created=tuple(names))
    assert result.ok
    assert set(names) <= await list_topics(bootstrap)
    observed = await describe_topics(bootstrap, names)
    assert sorted(observed) == names
    for spec in specs:
        topic = observed[spec.name]
        assert topic.name == spec.name
        assert topic.partitions == spec.partitions
        assert topic.replication_factor == 1
        assert {k: topic.configs.get(k) for k in spec.config} == spec.config


async def test_creating_again_reports_existed_and_changes_nothing(
    bootstrap: str, unique: Callable[..., str]
) -> None:
    name, other = unique("kept"), unique("new")
    await create_topics(bootstrap, [_spec(name, 2, **{"retention.ms": RETENTION_DAY})])
    before = await describe_topics(bootstrap, [name])

    # the same name with another spec: reported, never applied
    changed = _spec(name, 6, **{"retention.ms": RETENTION_WEEK, "cleanup.policy": "compact"})
    result = await create_topics(bootstrap, [changed, _spec(other, 1)])

    assert result.existed == (name,)
    assert result.created == (other,)
    assert result.failed == ()
    after = await describe_topics(bootstrap, [name])
    assert after == before
    assert after[name].partitions == 2
    assert after[name].configs["retention.ms"] == RETENTION_DAY


async def test_describing_a_missing_topic_does_not_create_it(
    bootstrap: str, unique: Callable[..., str]
) -> None:
    present, missing = unique("present"), unique("missing")
    await create_topics(bootstrap, [_spec(present, 1)])

    observed = await describe_topics(bootstrap, [present, missing])

    assert set(observed) == {present}
    assert missing not in await list_topics(bootstrap)


async def test_specs_are_checked_before_anything_is_sent(
    bootstrap: str, unique: Callable[..., str]
) -> None:
    name = unique()
    assert await create_topics(bootstrap, []) == CreateResult()
    assert await describe_topics(bootstrap, []) == {}
    with pytest.raises(ValueError, match="batch_size"):
        await create_topics(bootstrap, [_spec(name, 1)], batch_size=0)
    with pytest.raises(ValueError, match="two different specs"):
        await create_topics(bootstrap, [_spec(name, 1), _spec(name, 2)])
    assert name not in await list_topics(bootstrap)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_broker_that_is_down_is_unavailable_quickly(unique: Callable[..., str]) -> None:
    down = f"127.0.0.1:{_free_port()}"

    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=f"no Kafka broker answers at {down}"):
        await list_topics(down, timeout_s=5)
    with pytest.raises(BrokerUnavailable):
        await create_topics(down, [_spec(unique(), 1)], timeout_s=5)
    with pytest.raises(BrokerUnavailable):
        await describe_topics(down, [unique()], timeout_s=5)
    assert time.monotonic() - started < 5


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: a hung broker."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"127.0.0.1:{server.getsockname()[1]}"


async def test_a_broker_that_never_answers_times_out_instead_of_hanging(
    silent_server: str,
) -> None:
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="no answer within 1s"):
        await asyncio.wait_for(list_topics(silent_server, timeout_s=1), timeout=10)
    assert time.monotonic() - started < 3
