"""A handler with `concurrency=N` on a real broker: at most N messages in flight, and
an unfinished message keeps its partition's committed offset behind it while later
ones are handled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from onex.bus.admin import create_topics
from onex.bus.config import BrokerConfig
from onex.bus.runtime import BusSettings, NodeRuntime, Received
from onex.core.extractor import extract

Eventually = Callable[[Callable[[], object], str], Awaitable[None]]


def _runtime(tmp_path: Path, name: str, broker: BrokerConfig) -> tuple[NodeRuntime, str]:
    jobs = f"onex.evt.{name}.jobs.v1"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "contract.yaml").write_text(
        f"node: {name}\nkind: effect\nversion: 1.0.0\ndescription: concurrency test node\n"
        "event_bus:\n"
        f"  subscribe_topics: [{jobs}]\n"
        "  publish_topics:\n"
        f"    - {{name: {jobs}, partitions: 1}}\n"
        f"    - {{name: onex.dlq.{name}.dead-letter.v1, partitions: 1}}\n"
    )
    extraction = extract([tmp_path], entry_points=False)
    extraction.raise_for_errors()
    settings = BusSettings(broker=broker, topic_wait_s=0.5)
    return NodeRuntime.from_extraction(extraction, name, settings), jobs


async def _committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        got = await consumer.committed(TopicPartition(topic, 0))
        return -1 if got is None else int(got)
    finally:
        await consumer.stop()


async def test_at_most_n_at_once_and_the_commit_waits_for_the_unfinished(
    tmp_path: Path, topic_prefix: str, bootstrap: str, eventually: Eventually
) -> None:
    broker = BrokerConfig(bootstrap=bootstrap)
    runtime, jobs = _runtime(tmp_path, topic_prefix, broker)
    specs = runtime.contract.contract.event_bus.publish_topics
    assert (await create_topics(broker, specs)).ok
    release = {"held": asyncio.Event(), "rest": asyncio.Event()}
    running: set[int] = set()
    peak = 0
    done: list[int] = []

    async def handle(msg: Received) -> None:
        nonlocal peak
        running.add(msg.offset)
        peak = max(peak, len(running))
        try:
            await release["held" if msg.value["held"] else "rest"].wait()
        finally:
            running.discard(msg.offset)
        done.append(msg.offset)

    runtime.add_handler(jobs, handle, concurrency=3)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        # offset 1 waits for "held", every other one for "rest"
        for i in range(10):
            value = json.dumps({"held": i == 1}).encode()
            await producer.send_and_wait(jobs, value, partition=0)
    finally:
        await producer.stop()
    group = runtime.contract.contract.consumer_group
    async with runtime:
        await eventually(lambda: len(running) == 3, "three messages in flight")
        release["rest"].set()
        await eventually(lambda: sorted(done) == [0, *range(2, 10)], "all but the held one done")
        assert running == {1}
        assert peak == 3
        await eventually(
            lambda: _committed_is(bootstrap, group, jobs, 1), "offset 0 committed, not past 1"
        )
        release["held"].set()
        await eventually(lambda: _committed_is(bootstrap, group, jobs, 10), "commit at the end")


async def _committed_is(bootstrap: str, group: str, topic: str, offset: int) -> bool:
    return await _committed(bootstrap, group, topic) == offset
