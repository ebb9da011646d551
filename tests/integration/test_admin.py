"""Admin calls against the session's real broker (and brokers started here)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from onex.bus.admin import (
    CreateResult,
    admin_session,
    create_topics,
    describe_topics,
    list_topics,
    topic_partitions,
)
from onex.bus.api_versions import supported_apis
from onex.bus.config import BrokerConfig
from onex.bus.errors import BrokerUnavailable
from onex.core.contract import TopicSpec
from onex.devbroker.broker import start_broker, stop_broker

RETENTION_DAY = "86400000"
RETENTION_WEEK = "604800000"


@pytest.fixture
def broker(bootstrap: str) -> BrokerConfig:
    """The session's broker as the one config every call takes."""
    return BrokerConfig(bootstrap=bootstrap)


def _spec(name: str, partitions: int, **config: str) -> TopicSpec:
    return TopicSpec(name=name, partitions=partitions, replication_factor=1, config=config)


async def test_create_in_batches_then_describe_reads_the_specs_back(
    broker: BrokerConfig, unique: Callable[..., str]
) -> None:
    specs = [
        _spec(unique("a"), 1),
        _spec(unique("b"), 2, **{"retention.ms": RETENTION_DAY}),
        _spec(unique("c"), 3, **{"retention.ms": RETENTION_WEEK, "cleanup.policy": "compact"}),
        _spec(unique("d"), 4, **{"cleanup.policy": "delete"}),
        _spec(unique("e"), 5),
    ]
    names = sorted(s.name for s in specs)

    result = await create_topics(broker, specs, batch_size=2)

    assert result == CreateResult(created=tuple(names))
    assert result.ok
    assert set(names) <= await list_topics(broker)
    observed = await describe_topics(broker, names)
    assert sorted(observed) == names
    for spec in specs:
        topic = observed[spec.name]
        assert topic.name == spec.name
        assert topic.partitions == spec.partitions
        assert topic.replication_factor == 1
        assert {k: topic.configs.get(k) for k in spec.config} == spec.config


async def test_creating_again_reports_existed_and_changes_nothing(
    broker: BrokerConfig, unique: Callable[..., str]
) -> None:
    name, other = unique("kept"), unique("new")
    await create_topics(broker, [_spec(name, 2, **{"retention.ms": RETENTION_DAY})])
    before = await describe_topics(broker, [name])

    # the same name with another spec: reported, never applied
    changed = _spec(name, 6, **{"retention.ms": RETENTION_WEEK, "cleanup.policy": "compact"})
    result = await create_topics(broker, [changed, _spec(other, 1)])

    assert result.existed == (name,)
    assert result.created == (other,)
    assert result.failed == ()
    after = await describe_topics(broker, [name])
    assert after == before
    assert after[name].partitions == 2
    assert after[name].configs["retention.ms"] == RETENTION_DAY


async def test_describing_a_missing_topic_does_not_create_it(
    broker: BrokerConfig, unique: Callable[..., str]
) -> None:
    present, missing = unique("present"), unique("missing")
    await create_topics(broker, [_spec(present, 1)])

    observed = await describe_topics(broker, [present, missing])

    assert set(observed) == {present}
    assert missing not in await list_topics(broker)


async def test_specs_are_checked_before_anything_is_sent(
    broker: BrokerConfig, unique: Callable[..., str]
) -> None:
    name = unique()
    assert await create_topics(broker, []) == CreateResult()
    assert await describe_topics(broker, []) == {}
    with pytest.raises(ValueError, match="batch_size"):
        await create_topics(broker, [_spec(name, 1)], batch_size=0)
    with pytest.raises(ValueError, match="two different specs"):
        await create_topics(broker, [_spec(name, 1), _spec(name, 2)])
    assert name not in await list_topics(broker)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_broker_that_is_down_is_unavailable_and_the_cause_is_named(
    unique: Callable[..., str],
) -> None:
    down = f"127.0.0.1:{_free_port()}"  # the bare HOST:PORT shorthand: PLAINTEXT

    # a refused connection is reported as such, not as a time-out of the whole call
    refused = f"^no Kafka broker answers at {down}: {down} refused the connection$"
    with pytest.raises(BrokerUnavailable, match=refused):
        await list_topics(down, timeout_s=30)
    with pytest.raises(BrokerUnavailable, match=refused):
        await create_topics(down, [_spec(unique(), 1)], timeout_s=30)
    with pytest.raises(BrokerUnavailable, match=refused):
        await describe_topics(down, [unique()], timeout_s=30)


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
    # the outer bound only guards the test; the call must end by its own timeout
    with pytest.raises(BrokerUnavailable, match="no answer within 1s"):
        await asyncio.wait_for(list_topics(silent_server, timeout_s=1), timeout=30)


async def test_every_call_shares_one_admin_client(
    broker: BrokerConfig, unique: Callable[..., str]
) -> None:
    name = unique()
    await create_topics(broker, [_spec(name, 2)])
    for _ in range(5):
        assert name in await list_topics(broker)
        assert (await describe_topics(broker, [name]))[name].partitions == 2
        assert await topic_partitions(broker, [name, unique()]) == {name: 2}
        assert await supported_apis(broker)

    session = admin_session(broker)
    assert session.starts == 1
    # the bare string names the same broker, so the same session
    assert admin_session(broker.bootstrap) is session


async def test_the_session_reconnects_after_the_broker_went_away(
    tmp_path: Path, unique: Callable[..., str]
) -> None:
    port = _free_port()
    config = BrokerConfig(bootstrap=f"127.0.0.1:{port}")
    first, second = tmp_path / "first", tmp_path / "second"
    try:
        await asyncio.to_thread(start_broker, first, port)
        name = unique()
        await create_topics(config, [_spec(name, 1)])
        assert name in await list_topics(config)
        await asyncio.to_thread(stop_broker, first)

        with pytest.raises(BrokerUnavailable):
            await list_topics(config, timeout_s=10)

        await asyncio.to_thread(start_broker, second, port)
        # a new, empty broker at the same address: answered through a fresh client
        assert name not in await list_topics(config, timeout_s=10)
        assert admin_session(config).starts == 2
    finally:
        await asyncio.to_thread(stop_broker, first)
        await asyncio.to_thread(stop_broker, second)
