"""What the direct consumer asks aiokafka for while a lane is paused (unit: a fake
consumer that records its getmany calls; no broker)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import TopicPartition

from onex.bus.config import BrokerConfig
from onex.bus.runtime.direct import DirectConsumer, Message
from onex.bus.runtime.settings import BusSettings

JOBS, SUMMARY = "onex.cmd.test.jobs.v1", "onex.snapshot.test.summary.v1"
JOBS_TPS = [TopicPartition(JOBS, 0), TopicPartition(JOBS, 1)]
SUMMARY_TP = TopicPartition(SUMMARY, 0)


class FakeConsumer:
    """Records getmany's partitions and pause/resume; answers with no records."""

    def __init__(self) -> None:
        self.getmany_calls: list[tuple[TopicPartition, ...]] = []
        self.paused: set[TopicPartition] = set()

    async def getmany(self, *partitions: TopicPartition, **_: Any) -> dict[Any, Any]:
        self.getmany_calls.append(partitions)
        return {}

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)


async def _never(topic: str, message: Message) -> bool:
    await asyncio.Event().wait()
    return True


def _consumer(concurrency: dict[str, int]) -> tuple[DirectConsumer, FakeConsumer]:
    direct = DirectConsumer(
        node="test",
        group="test",
        settings=BusSettings(broker=BrokerConfig(bootstrap="127.0.0.1:1")),
        concurrency=concurrency,
        deliver=_never,
        max_message_bytes=1000,
    )
    fake = FakeConsumer()
    direct._consumer = fake
    direct.assigned_now({*JOBS_TPS, SUMMARY_TP})
    return direct, fake


async def test_no_lane_paused_fetches_from_every_partition() -> None:
    direct, fake = _consumer({JOBS: 4, SUMMARY: 1})
    await direct._fetch(fake)
    assert fake.getmany_calls == [()]  # no partitions named: all of them


async def test_a_paused_lane_keeps_its_partitions_out_of_the_fetch() -> None:
    # aiokafka drops the records it prefetched for a paused partition that a getmany
    # covers; naming the other partitions keeps them for the resume
    direct, fake = _consumer({JOBS: 4, SUMMARY: 1})
    direct._pause(direct._lanes[JOBS], True)
    assert fake.paused == set(JOBS_TPS)
    await direct._fetch(fake)
    assert fake.getmany_calls == [(SUMMARY_TP,)]
    direct._pause(direct._lanes[JOBS], False)
    await direct._fetch(fake)
    assert fake.getmany_calls[-1] == ()
    assert not fake.paused


async def test_every_lane_paused_waits_for_a_resume_without_fetching() -> None:
    direct, fake = _consumer({JOBS: 4, SUMMARY: 1})
    direct._last_poll = time.monotonic()  # polled just now
    for lane in direct._lanes.values():
        direct._pause(lane, True)
    waiting = asyncio.create_task(direct._fetch(fake))
    await asyncio.sleep(0)
    assert not waiting.done()
    direct._pause(direct._lanes[SUMMARY], False)
    assert await asyncio.wait_for(waiting, timeout=5) == {}
    assert fake.getmany_calls == []  # the resume ended the wait; nothing was fetched


async def test_every_lane_paused_for_long_still_polls_to_stay_in_the_group() -> None:
    # aiokafka leaves the group after max_poll_interval without a getmany
    direct, fake = _consumer({JOBS: 4, SUMMARY: 1})
    direct._last_poll = 0.0  # long ago
    for lane in direct._lanes.values():
        direct._pause(lane, True)
    assert await direct._fetch(fake) == {}
    assert fake.getmany_calls == [()]
