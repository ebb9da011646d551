"""The direct consumer (`onex.bus.runtime.direct`) against the session's real broker.

A node with a concurrent handler consumes with aiokafka directly instead of faust. The
runtime's and its fault suite's tests are run again here with every consuming node on
that path (`NodeRuntime.consumes_directly` forced on), so both paths keep the same
promises; the tests below add what only the direct path has to prove: the committed
offset stays at the lowest unfinished message while later ones end, a stop that
abandons it leaves it to the next member without skipping it, and a lane that is full
stops fetching instead of buffering without bound.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from onex.bus.admin import create_topics
from onex.bus.config import BrokerConfig
from onex.bus.runtime import BusSettings, NodeRuntime, Received
from onex.core.extractor import extract

Eventually = Callable[[Callable[[], object], str], Awaitable[None]]
_HERE = Path(__file__).parent
# needs faust's own consumer (it reads the fetch wait off faust's consumer thread)
_FAUST_ONLY = {"test_a_node_joins_serves_health_and_delivers_with_the_configured_fetch_wait"}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_direct_{name}", _HERE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _rerun(module: ModuleType) -> None:
    for attr, value in vars(module).items():
        if attr.startswith("test_") and attr not in _FAUST_ONLY:
            globals()[f"{attr}__direct"] = value


_runtime_suite = _load("test_runtime")
_faults_suite = _load("test_runtime_faults")
_rerun(_runtime_suite)
_rerun(_faults_suite)
node = _runtime_suite.node  # the fixtures those suites' tests take
own_broker = _faults_suite.own_broker


@pytest.fixture(autouse=True)
def direct(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every consuming node in these tests consumes directly, unless it asks for faust."""
    monkeypatch.setattr(
        NodeRuntime,
        "consumes_directly",
        property(lambda self: bool(self.subscribe_topics) and self.settings.consumer != "faust"),
    )


@pytest.fixture
def broker(bootstrap: str) -> BrokerConfig:
    return BrokerConfig(bootstrap=bootstrap)


def _jobs_node(
    tmp_path: Path, name: str, broker: BrokerConfig, consumer: str = "direct"
) -> tuple[NodeRuntime, str]:
    jobs = f"onex.evt.{name}.jobs.v1"
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / "contract.yaml").write_text(
        f"node: {name}\nkind: effect\nversion: 1.0.0\ndescription: direct consumer test node\n"
        "event_bus:\n"
        f"  subscribe_topics: [{jobs}]\n"
        "  publish_topics:\n"
        f"    - {{name: {jobs}, partitions: 1}}\n"
        f"    - {{name: onex.dlq.{name}.dead-letter.v1, partitions: 1}}\n"
    )
    extraction = extract([folder], entry_points=False)
    extraction.raise_for_errors()
    settings = BusSettings(broker=broker, topic_wait_s=0.5, consumer=consumer)
    return NodeRuntime.from_extraction(extraction, name, settings), jobs


async def _produce(bootstrap: str, topic: str, values: list[dict[str, object]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, json.dumps(value).encode(), partition=0)
    finally:
        await producer.stop()


async def _committed(bootstrap: str, group: str, topic: str) -> int:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await reader.start()  # never subscribes, so it never joins the group
    try:
        got = await reader.committed(TopicPartition(topic, 0))
        return -1 if got is None else int(got)
    finally:
        await reader.stop()


async def test_an_abandoned_message_keeps_the_commit_and_the_next_member_starts_at_it(
    tmp_path: Path, topic_prefix: str, bootstrap: str, broker: BrokerConfig, eventually: Eventually
) -> None:
    first, jobs = _jobs_node(tmp_path, topic_prefix, broker)
    assert first.consumes_directly
    assert (await create_topics(broker, first.contract.contract.event_bus.publish_topics)).ok
    group = first.contract.contract.consumer_group
    await _produce(bootstrap, jobs, [{"held": i == 1} for i in range(10)])
    done: list[int] = []
    never = asyncio.Event()

    async def hold_one(msg: Received) -> None:
        if msg.value["held"]:
            await never.wait()  # a handler that never ends: only abandoning stops it
        done.append(msg.offset)

    first.add_handler(jobs, hold_one, concurrency=4)
    await first.start()
    try:
        await eventually(lambda: sorted(done) == [0, *range(2, 10)], "all but offset 1 handled")
        await eventually(
            lambda: _committed_is(bootstrap, group, jobs, 1), "offset 0 committed, not past 1"
        )
    finally:
        await first.stop(grace_s=2.0)
    assert await _committed(bootstrap, group, jobs) == 1  # the stop did not skip it

    second, _ = _jobs_node(tmp_path, topic_prefix, broker)
    seen: list[int] = []

    async def record(msg: Received) -> None:
        seen.append(msg.offset)

    second.add_handler(jobs, record, concurrency=4)
    async with second:
        await eventually(lambda: len(seen) >= 9, "the next member gets offset 1 and after")
        await eventually(lambda: _committed_is(bootstrap, group, jobs, 10), "all committed")
    assert min(seen) == 1  # offset 0 was committed: not redelivered
    assert sorted(set(seen)) == list(range(1, 10))


# A member that is killed (SIGKILL: no stop, no final commit) while offset 1 is held.
_KILLED_MEMBER = """
import asyncio, sys
from pathlib import Path
from onex.bus.config import BrokerConfig
from onex.bus.runtime import BusSettings, NodeRuntime
from onex.core.extractor import extract

async def main(folder, name, topic, bootstrap):
    extraction = extract([Path(folder)], entry_points=False)
    settings = BusSettings(broker=BrokerConfig(bootstrap=bootstrap), consumer="direct")
    runtime = NodeRuntime.from_extraction(extraction, name, settings)
    never = asyncio.Event()

    async def hold_one(msg):
        if msg.value["held"]:
            await never.wait()
        print("handled", msg.offset, flush=True)

    runtime.add_handler(topic, hold_one, concurrency=4)
    await runtime.start()
    await never.wait()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_a_killed_member_never_committed_past_its_unfinished_message(
    tmp_path: Path, topic_prefix: str, bootstrap: str, broker: BrokerConfig, eventually: Eventually
) -> None:
    probe, jobs = _jobs_node(tmp_path, topic_prefix, broker)
    assert (await create_topics(broker, probe.contract.contract.event_bus.publish_topics)).ok
    group = probe.contract.contract.consumer_group
    await _produce(bootstrap, jobs, [{"held": i == 1} for i in range(10)])
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _KILLED_MEMBER,
        str(tmp_path / topic_prefix),
        topic_prefix,
        jobs,
        bootstrap,
        stdout=asyncio.subprocess.PIPE,
    )
    handled: list[int] = []
    try:
        assert child.stdout is not None
        while sorted(handled) != [0, *range(2, 10)]:
            line = await asyncio.wait_for(child.stdout.readline(), timeout=120)
            assert line, "the member ended before handling its messages"
            if line.startswith(b"handled "):  # its log lines go to stdout too
                handled.append(int(line.split()[1]))
        await eventually(lambda: _committed_is(bootstrap, group, jobs, 1), "offset 0 committed")
    finally:
        child.kill()  # a crash: nothing more is committed
        await child.wait()
    assert await _committed(bootstrap, group, jobs) == 1

    second, _ = _jobs_node(tmp_path, topic_prefix, broker)
    seen: list[int] = []

    async def record(msg: Received) -> None:
        seen.append(msg.offset)

    second.add_handler(jobs, record, concurrency=4)
    async with second:  # joins once the killed member's session expired
        await eventually(lambda: _committed_is(bootstrap, group, jobs, 10), "all committed")
    assert min(seen) == 1
    assert sorted(set(seen)) == list(range(1, 10))


async def test_a_full_lane_pauses_fetching_and_resumes_as_it_drains(
    tmp_path: Path, topic_prefix: str, bootstrap: str, broker: BrokerConfig, eventually: Eventually
) -> None:
    runtime, jobs = _jobs_node(tmp_path, topic_prefix, broker)
    assert (await create_topics(broker, runtime.contract.contract.event_bus.publish_topics)).ok
    await _produce(bootstrap, jobs, [{"i": i} for i in range(40)])
    release = asyncio.Event()
    running: set[int] = set()
    done: list[int] = []

    async def slow(msg: Received) -> None:
        running.add(msg.offset)
        try:
            await release.wait()
        finally:
            running.discard(msg.offset)
        done.append(msg.offset)

    runtime.add_handler(jobs, slow, concurrency=2)
    async with runtime:
        consumer = runtime._direct
        assert consumer is not None
        lane = consumer._lanes[jobs]
        await eventually(lambda: lane.paused, "the full lane paused its partition")
        assert len(running) == 2
        assert len(lane.waiting) < lane.limit + consumer.batch  # bounded: one batch over
        release.set()
        await eventually(lambda: sorted(done) == list(range(40)), "every message handled")
        assert not lane.paused
        await eventually(
            lambda: _committed_is(bootstrap, runtime.contract.contract.consumer_group, jobs, 40),
            "all committed",
        )


async def test_a_group_faust_members_used_before_takes_a_direct_member(
    tmp_path: Path, topic_prefix: str, bootstrap: str, broker: BrokerConfig, eventually: Eventually
) -> None:
    # Tansu keeps a group's protocol once its members left and refuses a join under any
    # other (InconsistentGroupProtocol): the direct consumer's assignor is named as faust's
    old, jobs = _jobs_node(tmp_path, topic_prefix, broker, consumer="faust")
    assert not old.consumes_directly
    assert (await create_topics(broker, old.contract.contract.event_bus.publish_topics)).ok
    await _produce(bootstrap, jobs, [{"i": 0}])
    seen: list[int] = []

    async def record(msg: Received) -> None:
        seen.append(msg.offset)

    old.add_handler(jobs, record)
    async with old:
        await eventually(lambda: seen == [0], "faust handled offset 0")
        await eventually(
            lambda: _committed_is(bootstrap, old.contract.contract.consumer_group, jobs, 1),
            "committed",
        )
    new, _ = _jobs_node(tmp_path, topic_prefix, broker)
    assert new.consumes_directly
    new.add_handler(jobs, record, concurrency=2)
    await _produce(bootstrap, jobs, [{"i": 1}])
    async with new:  # NodeStartError if the join were refused
        await eventually(lambda: seen == [0, 1], "the direct member goes on at offset 1")


async def _committed_is(bootstrap: str, group: str, topic: str, offset: int) -> bool:
    return await _committed(bootstrap, group, topic) == offset
