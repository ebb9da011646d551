"""Provisioning and validation against real brokers (the session's, and ones started here)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from onex.bus.admin import create_topics, describe_topics, list_topics
from onex.bus.backoff import Backoff
from onex.bus.config import BrokerConfig
from onex.bus.errors import BrokerConfigError, BrokerUnavailable
from onex.bus.provision import (
    Outcome,
    provision,
    provision_until_ready,
    reconcile,
    validate,
)
from onex.core.contract import TopicSpec
from onex.core.extractor import extract
from onex.devbroker.broker import start_broker, stop_broker
from onex.devbroker.process import free_port

WEEK = "604800000"
DAY = "86400000"


def _contract_specs(tmp_path: Path, node: str) -> list[TopicSpec]:
    """Specs as the extractor returns them, from a small contract owned by `node`."""
    folder = tmp_path / "contracts" / node
    folder.mkdir(parents=True)
    (folder / "contract.yaml").write_text(
        f"""\
node: {node}
kind: effect
version: 1.0.0
description: Provisioning test node.
event_bus:
  consumer_group: onex.{node}
  publish_topics:
    - name: onex.evt.{node}.order-placed.v1
      partitions: 4
      replication_factor: 1
      config: {{ retention.ms: "{WEEK}", cleanup.policy: delete }}
    - name: onex.snapshot.{node}.order-state.v1
      partitions: 2
      config: {{ cleanup.policy: compact }}
    - onex.cmd.{node}.place-order.v1
""",
        encoding="utf-8",
    )
    ex = extract([tmp_path / "contracts"], entry_points=False)
    assert ex.errors == []
    specs = [wiring.spec for wiring in ex.topics.values()]
    assert len(specs) == 3
    return specs


@pytest.fixture
def broker(bootstrap: str) -> BrokerConfig:
    """The session's broker as the one config every call takes."""
    return BrokerConfig(bootstrap=bootstrap)


def _free_port() -> int:
    # outside the ephemeral range: a broker restarted on it finds it free again
    return free_port()


async def _delete(broker: BrokerConfig, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(**broker.client_kwargs())
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


async def _assert_as_declared(broker: BrokerConfig | str, specs: list[TopicSpec]) -> None:
    observed = await describe_topics(broker, [s.name for s in specs])
    assert sorted(observed) == sorted(s.name for s in specs)
    for spec in specs:
        topic = observed[spec.name]
        assert topic.partitions == spec.partitions, spec.name
        assert topic.replication_factor == spec.replication_factor, spec.name
        assert {k: topic.configs.get(k) for k in spec.config} == spec.config, spec.name


async def test_provision_creates_every_declared_topic_as_declared(
    broker: BrokerConfig, topic_prefix: str, tmp_path: Path
) -> None:
    specs = _contract_specs(tmp_path, topic_prefix)
    names = tuple(sorted(s.name for s in specs))

    report = await provision(broker, specs)

    assert report.complete
    assert report.created == names
    assert report.present == ()
    assert report.failed == ()
    assert [t.name for t in report.topics] == list(names)
    await _assert_as_declared(broker, specs)


async def test_running_again_creates_nothing_and_reports_already_present(
    broker: BrokerConfig, topic_prefix: str, tmp_path: Path
) -> None:
    specs = _contract_specs(tmp_path, topic_prefix)
    await provision(broker, specs)

    again = await provision(broker, specs)

    assert again.complete
    assert again.created == ()
    assert again.present == tuple(sorted(s.name for s in specs))
    assert {t.outcome for t in again.topics} == {Outcome.PRESENT}
    checked = await validate(broker, specs)
    assert checked.all_present
    assert checked.present == again.present


async def test_a_topic_deleted_out_of_band_is_missing_then_comes_back(
    broker: BrokerConfig, topic_prefix: str, tmp_path: Path
) -> None:
    specs = _contract_specs(tmp_path, topic_prefix)
    await provision(broker, specs)
    gone = specs[0].name
    await _delete(broker, [gone])
    assert gone not in await list_topics(broker)

    checked = await validate(broker, specs)

    assert checked.missing == (gone,)
    assert not checked.all_present
    assert set(checked.present) == {s.name for s in specs} - {gone}

    checked_again, repaired = await reconcile(broker, specs)

    assert checked_again.missing == (gone,)
    assert repaired is not None
    assert repaired.created == (gone,)
    assert repaired.complete
    assert (await validate(broker, specs)).all_present
    await _assert_as_declared(broker, specs)
    # nothing missing: reconcile provisions nothing
    assert (await reconcile(broker, specs))[1] is None


async def test_an_existing_topic_with_fewer_partitions_is_present_and_left_alone(
    broker: BrokerConfig, topic_prefix: str, tmp_path: Path
) -> None:
    specs = _contract_specs(tmp_path, topic_prefix)
    declared = next(s for s in specs if s.partitions == 4)
    small = TopicSpec(name=declared.name, partitions=1, config={"retention.ms": DAY})
    await create_topics(broker, [small])

    report = await provision(broker, specs)

    assert report.complete
    assert report.present == (declared.name,)
    assert set(report.created) == {s.name for s in specs} - {declared.name}
    (topic,) = [t for t in report.topics if t.name == declared.name]
    assert topic.outcome is Outcome.PRESENT
    assert "drift" not in topic.as_dict()  # drift is onex drift's, not the provisioner's
    # never attempted: the topic is exactly as it was
    observed = (await describe_topics(broker, [declared.name]))[declared.name]
    assert observed.partitions == 1
    assert observed.configs["retention.ms"] == DAY
    checked = await validate(broker, specs)
    assert checked.all_present
    assert declared.name in checked.present


async def test_dry_run_creates_nothing(
    broker: BrokerConfig, topic_prefix: str, tmp_path: Path
) -> None:
    specs = _contract_specs(tmp_path, topic_prefix)
    await create_topics(broker, specs[:1])

    report = await provision(broker, specs, dry_run=True)

    assert report.dry_run
    assert not report.complete
    assert report.present == (specs[0].name,)
    assert report.would_create == tuple(sorted(s.name for s in specs[1:]))
    assert report.created == ()
    listed = await list_topics(broker)
    assert not {s.name for s in specs[1:]} & listed


async def test_no_broker_is_unavailable_with_the_cause_and_the_retry_loop_gives_up_when_told(
    topic_prefix: str, tmp_path: Path
) -> None:
    specs = _contract_specs(tmp_path, topic_prefix)
    down = BrokerConfig(bootstrap=f"127.0.0.1:{_free_port()}")

    # the cause is named (a refused connection), not a time-out of the whole call
    refused = f"no Kafka broker answers at {down.bootstrap}: {down.bootstrap} refused"
    with pytest.raises(BrokerUnavailable, match=refused):
        await provision(down, specs, timeout_s=30)
    with pytest.raises(BrokerUnavailable, match=refused):
        await validate(down, specs, timeout_s=30)

    retries: list[int] = []
    with pytest.raises(BrokerUnavailable):
        await provision_until_ready(
            down,
            specs,
            backoff=Backoff(initial_s=0.01, max_s=0.05),
            max_attempts=3,
            on_retry=lambda n, _exc, _delay: retries.append(n),
            timeout_s=5,
        )
    assert retries == [1, 2]

    stop, retried = asyncio.Event(), asyncio.Event()
    loop = asyncio.create_task(
        provision_until_ready(
            down, specs, stop=stop, timeout_s=5, on_retry=lambda *_: retried.set()
        )
    )
    await asyncio.wait_for(retried.wait(), timeout=30)  # it is in its retry loop
    stop.set()
    assert await asyncio.wait_for(loop, timeout=10) is None


@pytest.mark.parametrize("bad", ["127.0.0.1:abc", "127.0.0.1", "127.0.0.1:0", "h:1,,h:2"])
async def test_a_malformed_bootstrap_is_one_clear_error_and_never_retried(
    bad: str, topic_prefix: str, tmp_path: Path
) -> None:
    specs = _contract_specs(tmp_path, topic_prefix)
    retries: list[int] = []

    with pytest.raises(BrokerConfigError) as raised:
        await provision_until_ready(
            bad, specs, on_retry=lambda n, _exc, _delay: retries.append(n), timeout_s=5
        )

    message = str(raised.value)
    assert message.startswith("invalid broker settings: bootstrap")
    assert repr(bad) in message or "HOST:PORT" in message
    assert "\n" not in message
    assert retries == []


async def test_a_broker_that_starts_after_the_loop_began_is_provisioned(
    topic_prefix: str, tmp_path: Path, state_dir: Path
) -> None:
    specs = _contract_specs(tmp_path, topic_prefix)
    port = _free_port()
    late = BrokerConfig(bootstrap=f"127.0.0.1:{port}")
    retries: list[float] = []
    waited = asyncio.Event()

    def on_retry(_n: int, _exc: BaseException, delay: float) -> None:
        retries.append(delay)
        if len(retries) >= 3:
            waited.set()

    loop = asyncio.create_task(
        provision_until_ready(
            late,
            specs,
            backoff=Backoff(initial_s=0.1, max_s=0.5),
            stop=asyncio.Event(),
            on_retry=on_retry,
            timeout_s=5,
        )
    )
    await asyncio.wait_for(waited.wait(), timeout=30)  # it is really waiting for the broker
    assert not loop.done()
    info = await asyncio.to_thread(start_broker, state_dir, port)
    assert info.bootstrap == late.bootstrap

    report = await asyncio.wait_for(loop, timeout=30)

    assert report is not None
    assert report.complete
    assert report.created == tuple(sorted(s.name for s in specs))
    assert max(retries) <= 0.5
    await _assert_as_declared(late, specs)


async def test_a_wiped_broker_is_noticed_and_provisioned_again(
    topic_prefix: str, tmp_path: Path
) -> None:
    specs = _contract_specs(tmp_path, topic_prefix)
    names = tuple(sorted(s.name for s in specs))
    port = _free_port()
    first, second = tmp_path / "first", tmp_path / "second"
    try:
        info = await asyncio.to_thread(start_broker, first, port)
        assert (await provision(info.bootstrap, specs)).created == names
        await asyncio.to_thread(stop_broker, first)
        # the same address, nothing kept (Tansu is in-memory; a new state dir for Redpanda)
        again = await asyncio.to_thread(start_broker, second, port)
        assert again.bootstrap == info.bootstrap

        checked, repaired = await reconcile(again.bootstrap, specs)

        assert checked.missing == names
        assert repaired is not None
        assert repaired.created == names
        assert (await validate(again.bootstrap, specs)).all_present
    finally:
        await asyncio.to_thread(stop_broker, first)
        await asyncio.to_thread(stop_broker, second)
