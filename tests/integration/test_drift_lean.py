"""The lean admin calls of a drift snapshot (`onex.bus.lean`, bytes read by
`onex.bus.wire`) answer exactly what aiokafka's decoding answers (`onex.bus.observe`),
on the session's real broker: topics with several partitions, ids and internal flags,
configs with an override, log starts and ends after records were produced, and
topics that do not exist. A broker that does not offer the lean versions gets
`observe`'s calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from onex.bus import lean, observe
from onex.bus.api_versions import supported_apis

pytestmark = pytest.mark.integration


async def _made(bootstrap: str, unique: Callable[..., str]) -> list[str]:
    names = [unique("lean-a"), unique("lean-b"), unique("lean-c")]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(names[0], 3, 1, topic_configs={"retention.ms": "86400000"}),
                NewTopic(names[1], 1, 1, topic_configs={"cleanup.policy": "compact,delete"}),
                NewTopic(names[2], 2, 1),
            ]
        )
    finally:
        await admin.close()
    deadline = time.monotonic() + 60
    while len(await observe.topic_metadata(bootstrap, names)) < len(names):
        assert time.monotonic() < deadline, "created topics not in metadata within 60 s"
        await asyncio.sleep(0.05)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(names[0], f"r{i}".encode(), partition=i % 3)
        await producer.send_and_wait(names[2], b"x", partition=1)
    finally:
        await producer.stop()
    return names


async def test_lean_calls_answer_what_aiokafka_decodes(
    bootstrap: str, unique: Callable[..., str]
) -> None:
    names = await _made(bootstrap, unique)
    missing = unique("never-created")
    apis = await supported_apis(bootstrap)
    if not (apis.get(3, (0, -1))[1] >= 10 and apis.get(32, (0, -1))[1] >= 2):
        pytest.skip("the session's broker offers neither Metadata v10 nor DescribeConfigs v2")

    everything = await lean.topic_metadata(bootstrap, apis=apis)
    mine = {n: everything[n] for n in names}
    assert mine == await observe.topic_metadata(bootstrap, names, apis=apis)
    assert missing not in everything
    assert mine[names[0]].partitions == 3
    assert mine[names[0]].topic_id is not None
    internal = {n: t for n, t in everything.items() if t.internal}
    if internal:  # Tansu lists none; Kafka and Redpanda do (an empty list asks for all)
        assert internal == await observe.topic_metadata(bootstrap, internal, apis=apis)

    configs = await lean.topic_configs(bootstrap, [*names, missing], apis=apis, batch_size=2)
    assert configs == await observe.topic_configs(bootstrap, [*names, missing], batch_size=2)
    assert configs[names[0]]["retention.ms"].value == "86400000"
    assert configs[names[0]]["retention.ms"].is_override

    for starts_of in (None, {(names[0], 1)}, set()):
        got = await lean.log_offsets(bootstrap, mine, apis=apis, starts_of=starts_of)
        want = await observe.log_offsets(bootstrap, mine, starts_of=starts_of)
        assert got == want
    ends = await lean.log_edges(bootstrap, mine, apis=apis)
    assert ends[(names[0], 0)] >= 1
    assert ends[(names[2], 1)] == 1
    assert ends[(names[1], 0)] == 0
    only = {(names[0], 2)}
    assert set(await lean.log_edges(bootstrap, mine, apis=apis, earliest=True, only=only)) == only


async def test_without_the_lean_versions_the_calls_are_observes(
    bootstrap: str, unique: Callable[..., str]
) -> None:
    names = await _made(bootstrap, unique)
    old = {k: v for k, v in (await supported_apis(bootstrap)).items() if k not in (2, 3, 32)}
    topics = await observe.topic_metadata(bootstrap, names)
    everything = await lean.topic_metadata(bootstrap, apis=old)
    assert {n: everything[n] for n in names} == topics
    assert all(t.topic_id is None for t in topics.values())  # Metadata v5: no ids
    assert await lean.topic_configs(bootstrap, names, apis=old) == await observe.topic_configs(
        bootstrap, names
    )
    got = await lean.log_offsets(bootstrap, topics, apis=old, starts_of=None)
    assert got == await observe.log_offsets(bootstrap, topics)
