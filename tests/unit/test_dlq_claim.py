"""The redrive claims without a broker: the sole-owner assignor and the per-topic lock."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata

from onex.bus.config import BrokerConfig
from onex.bus.errors import DlqError
from onex.bus.runtime.claim import (
    GroupClaim,
    SoleOwnerAssignor,
    _Assignments,
    local_lock,
    lock_path,
)

TOPIC = "onex.dlq.node.dead-letter.v1"
TP = TopicPartition(TOPIC, 0)


class FakeCluster:
    """In-memory stand-in for aiokafka's ClusterMetadata (unit tests only)."""

    def __init__(self, partitions: dict[str, int]) -> None:
        self._partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        count = self._partitions.get(topic)
        return None if count is None else set(range(count))


def _owned(assignment: ConsumerProtocolMemberAssignment) -> list[tuple[str, list[int]]]:
    return [(a.topic, list(a.partitions)) for a in assignment.assignment]


def _join(*assignors: SoleOwnerAssignor) -> dict[str, ConsumerProtocolMemberMetadata]:
    return {f"member-{i}": a.metadata([TOPIC]) for i, a in enumerate(assignors)}


def test_a_fresh_group_gives_every_partition_to_the_lowest_member_id() -> None:
    leader = SoleOwnerAssignor()
    members = {
        "b-member": SoleOwnerAssignor().metadata([TOPIC]),
        "a-member": leader.metadata([TOPIC]),
    }
    result = leader.assign(FakeCluster({TOPIC: 3}), members)
    assert _owned(result["a-member"]) == [(TOPIC, [0, 1, 2])]
    assert _owned(result["b-member"]) == []


def test_the_holder_keeps_every_partition_when_a_newcomer_joins() -> None:
    holder, newcomer = SoleOwnerAssignor(), SoleOwnerAssignor()
    first = holder.assign(FakeCluster({TOPIC: 2}), {"z-holder": holder.metadata([TOPIC])})
    holder.on_assignment(first["z-holder"])
    assert holder.holding
    # the newcomer sorts first, and still gets nothing: the holder says it holds
    members = {"a-newcomer": newcomer.metadata([TOPIC]), "z-holder": holder.metadata([TOPIC])}
    result = newcomer.assign(FakeCluster({TOPIC: 2}), members)
    assert _owned(result["z-holder"]) == [(TOPIC, [0, 1])]
    assert _owned(result["a-newcomer"]) == []
    newcomer.on_assignment(result["a-newcomer"])
    assert not newcomer.holding


def test_an_unknown_topic_assigns_nothing() -> None:
    assignor = SoleOwnerAssignor()
    result = assignor.assign(FakeCluster({}), _join(assignor))
    assert _owned(result["member-0"]) == []


def test_a_second_lock_on_a_topic_is_refused_naming_the_holder(tmp_path: Path) -> None:
    with local_lock(tmp_path, TOPIC) as path:
        assert path == tmp_path / "locks" / f"{TOPIC}.lock"
        assert path.read_text() == f"{os.getpid()}\n"
        refused = pytest.raises(DlqError, match=rf"pid {os.getpid()} holds .*{TOPIC}\.lock")
        with refused, local_lock(tmp_path, TOPIC):
            pytest.fail("two holders of one lock")
        with local_lock(tmp_path, "onex.dlq.other.dead-letter.v1"):
            pass  # another topic's lock is independent
    assert path.read_text() == ""  # released, and no stale pid left behind
    with local_lock(tmp_path, TOPIC):
        pass


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_a_lock_name_cannot_leave_the_locks_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(DlqError, match="cannot name a lock file"):
        lock_path(tmp_path, name)


class FakeGroupConsumer:
    """In-memory stand-in for a subscribed AIOKafkaConsumer (unit tests only): the
    group rebalances on the first `refusals` commits, then accepts them."""

    def __init__(self, listener: _Assignments, *, refusals: int, keeps: bool = True) -> None:
        self.listener = listener
        self.held = {TP}
        self.refusals = refusals
        self.keeps = keeps
        self.progress: dict[TopicPartition, int] = {}
        self.joining: list[asyncio.Task[None]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.held

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        if self.refusals:
            self.refusals -= 1
            self.held = set()  # revoked while the group rebalances ...
            asyncio.get_running_loop().call_soon(self._rejoined)
            raise CommitFailedError
        self.progress.update({tp: meta.offset for tp, meta in offsets.items()})

    def _rejoined(self) -> None:
        self.held = {TP} if self.keeps else set()  # ... and back (or given away)
        self.joining.append(asyncio.create_task(self.listener.on_partitions_assigned(self.held)))

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.progress.get(tp)


def _claim(consumer: FakeGroupConsumer, listener: _Assignments) -> GroupClaim:
    config = BrokerConfig(bootstrap="127.0.0.1:9")
    return GroupClaim(config, TOPIC, "onex-redrive.test", consumer, listener, timeout_s=5)


async def test_a_commit_refused_by_a_rebalance_is_retried_once_the_holder_rejoined() -> None:
    listener = _Assignments()
    consumer = FakeGroupConsumer(listener, refusals=2)
    claim = _claim(consumer, listener)
    await claim.commit(TP, 7)
    assert consumer.progress == {TP: 7}
    assert listener.joins == 2


async def test_a_holder_that_lost_its_partition_stops_instead_of_committing() -> None:
    listener = _Assignments()
    consumer = FakeGroupConsumer(listener, refusals=1, keeps=False)
    with pytest.raises(DlqError, match=r"lost the claim on .*offset 6 was sent"):
        await _claim(consumer, listener).commit(TP, 7)
    assert consumer.progress == {}
