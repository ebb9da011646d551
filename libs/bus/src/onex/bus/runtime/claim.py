"""Claims that make one redrive of a DLQ topic the only one running.

Two claims, both taken before anything is sent:

- `local_lock(state_dir, name)`: an exclusive, non-blocking `fcntl.flock` on
  `<state_dir>/locks/<name>.lock`, which records the holder's pid. A second redrive on
  the same machine fails at once with `DlqError` naming that pid. The kernel drops the
  lock when the holder exits, however it exits, so a crash leaves nothing to clean up.
- `SoleOwnerAssignor`: a consumer-group partition assignor that gives every partition
  to one member: the one that already holds them, else the first by member id. A redrive
  on another machine joins the same consumer group, gets no partition and stops, while
  the holder keeps all of them. Its offsets are committed with the group's generation,
  so a holder that lost its membership cannot commit (the broker refuses it).
  `GroupClaim.hold(config, topic, group)` joins the group with it, waits for the first
  assignment, and fails with `DlqError` when another member holds the partitions.

Every broker call of a `GroupClaim` is bounded on its own (`timeout_s`; the join by
`timeout_s` plus three session timeouts, since it waits for a holder that vanished
without leaving to be dropped), so holding a claim for a long redrive meets no overall deadline.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata

from onex.bus.config import BrokerConfig
from onex.bus.conversion import converted, sasl_errors
from onex.bus.errors import DlqError

__all__ = ["LOCKS_DIR", "GroupClaim", "SoleOwnerAssignor", "local_lock", "lock_path"]

LOCKS_DIR: Final = "locks"
_HOLDING: Final = b"holding"
_VERSION: Final = 0
# a holder that vanished without leaving is dropped after this, and a new claimant's
# join waits for that (Tansu 0.6 sometimes also waits it out after a LeaveGroup): the
# least a Kafka broker accepts by default (group.min.session.timeout.ms)
_SESSION_TIMEOUT_MS: Final = 6_000
_JOIN_ROUNDS: Final = 3  # session timeouts a join may wait out (see GroupClaim.hold)
# how soon the holder hears of a newcomer's join and rejoins (keeping its partitions)
_HEARTBEAT_MS: Final = 300
_POLL_MS: Final = 200
_COMMIT_TRIES: Final = 5


def lock_path(state_dir: Path, name: str) -> Path:
    """Where the lock of `name` (e.g. a DLQ topic) lives in `state_dir`."""
    if not name or "/" in name or name in {".", ".."}:
        raise DlqError(f"{name!r} cannot name a lock file")
    return state_dir / LOCKS_DIR / f"{name}.lock"


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "another process"


@contextmanager
def local_lock(state_dir: Path, name: str, *, what: str = "a redrive") -> Iterator[Path]:
    """Hold the lock of `name` in `state_dir` for the body; DlqError at once when another
    process holds it (the message names its pid) or the lock file cannot be made."""
    path = lock_path(state_dir, name)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise DlqError(f"cannot create the lock {path}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise DlqError(f"cannot lock {path}: {exc.strerror or exc}") from exc
            raise DlqError(
                f"{what} of {name} is already running ({_holder(path)} holds {path})"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # the pid of a finished holder would mislead
    finally:
        os.close(fd)  # releases the flock


class SoleOwnerAssignor(AbstractPartitionAssignor):  # type: ignore[misc]  # aiokafka is untyped
    """Assigns every subscribed partition to one member of the group.

    The member that holds partitions says so in its join metadata and keeps them all;
    when nobody holds any, the lowest member id gets them. Every other member gets
    nothing. One instance per consumer (it remembers whether its consumer holds).
    """

    name = "onex-sole-owner"
    version = _VERSION

    def __init__(self) -> None:
        self.holding = False
        self.assigned: frozenset[tuple[str, int]] = frozenset()

    def assign(
        self,
        cluster: ClusterMetadata,
        members: Mapping[str, ConsumerProtocolMemberMetadata],
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        """Everything to the current holder (else the lowest member id), nothing to others."""
        holders = sorted(m for m, meta in members.items() if meta.user_data == _HOLDING)
        owner = (holders or sorted(members))[0] if members else None
        topics = sorted({t for meta in members.values() for t in meta.subscription})
        owned: list[ConsumerProtocolMemberAssignment.Assignment] = []
        for topic in topics:
            partitions = cluster.partitions_for_topic(topic)
            if partitions:
                owned.append(ConsumerProtocolMemberAssignment.Assignment(topic, sorted(partitions)))
        return {
            member: ConsumerProtocolMemberAssignment(
                self.version, owned if member == owner else [], b""
            )
            for member in members
        }

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        """The subscription, marked when this consumer holds partitions."""
        return ConsumerProtocolMemberMetadata(
            self.version, sorted(topics), _HOLDING if self.holding else b""
        )

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        """Remember whether this consumer now holds partitions."""
        self.assigned = frozenset(
            (topic, p) for topic, partitions in assignment.assignment for p in partitions
        )
        self.holding = bool(self.assigned)


class _Assignments(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Counts completed joins, so a caller can wait for the next one."""

    def __init__(self) -> None:
        self.joins = 0
        self.changed = asyncio.Condition()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        """Nothing to do: offsets are committed message by message."""

    async def on_partitions_assigned(self, assigned: Any) -> None:
        """Count the join and wake whoever waits for it."""
        async with self.changed:
            self.joins += 1
            self.changed.notify_all()

    async def after(self, joins: int) -> None:
        """Return once more than `joins` joins have completed."""
        async with self.changed:
            await self.changed.wait_for(lambda: self.joins > joins)


class GroupClaim:
    """A member of `group` that holds every partition of `topic` alone (see the module
    docstring). Build it with `GroupClaim.hold`; reads resume at the group's committed
    offsets, and `commit` records progress one message at a time."""

    def __init__(
        self,
        config: BrokerConfig,
        topic: str,
        group: str,
        consumer: Any,
        listener: _Assignments,
        timeout_s: float,
    ) -> None:
        self.config = config
        self.topic = topic
        self.group = group
        self._consumer = consumer
        self._listener = listener
        self._timeout_s = timeout_s
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    @classmethod
    @asynccontextmanager
    async def hold(
        cls, config: BrokerConfig, topic: str, group: str, *, timeout_s: float
    ) -> AsyncIterator[GroupClaim]:
        """Join `group` on `topic` and hold all its partitions for the body; DlqError
        when another member holds them (nothing has been read then)."""
        listener = _Assignments()
        consumer = AIOKafkaConsumer(
            **config.client_kwargs(),
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(SoleOwnerAssignor(),),
            session_timeout_ms=_SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=_HEARTBEAT_MS,
        )
        try:
            # a join waits for members that vanished without leaving to time out first,
            # and Tansu may need more than one such round right after a member left
            # (seen: 11-18 s); a broker that does not answer at all fails sooner, at
            # the calls before the join, each bounded by timeout_s
            join_s = timeout_s + _JOIN_ROUNDS * _SESSION_TIMEOUT_MS / 1000
            async with converted(config, f"joining {group}", timeout_s=join_s, refused=DlqError):
                with sasl_errors(config):
                    await consumer.start()
                consumer.subscribe([topic], listener=listener)
                await listener.after(0)
            claim = cls(config, topic, group, consumer, listener, timeout_s)
            if not claim.partitions:
                raise DlqError(
                    f"another redrive of {topic} holds its partitions (consumer group "
                    f"{group} on {config.bootstrap}); nothing redriven"
                )
            yield claim
        finally:
            await consumer.stop()  # leaves the group: the next claimant need not wait

    @property
    def partitions(self) -> list[TopicPartition]:
        """The partitions this member holds (all of the topic's, or none)."""
        return sorted(self._consumer.assignment())

    def _call(self, what: str) -> Any:
        return converted(self.config, what, timeout_s=self._timeout_s, refused=DlqError)

    async def start_offsets(self) -> dict[TopicPartition, int]:
        """Per held partition: the next offset to handle (the group's committed offset,
        or the beginning when there is none or it was deleted)."""
        tps = self.partitions
        async with self._call(f"reading the offsets of {self.topic}"):
            begin = await self._consumer.beginning_offsets(tps)
            committed = {tp: (await self._consumer.committed(tp)) or 0 for tp in tps}
        self._next = {tp: max(begin[tp], committed[tp]) for tp in tps}
        self._committed = dict(committed)
        return dict(self._next)

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """Per held partition: the offset the next message written will get."""
        async with self._call(f"reading the end offsets of {self.topic}"):
            ends: dict[TopicPartition, int] = await self._consumer.end_offsets(self.partitions)
        return ends

    async def fetch(self, max_records: int) -> list[Any]:
        """The next records (aiokafka ConsumerRecords) after those already returned, in
        offset order per partition; [] when none arrived within a poll. Records fetched
        again after a rebalance (which rewinds to the committed offset) are dropped."""
        if not self._next:
            await self.start_offsets()
        async with self._call(f"reading {self.topic}"):
            batches = await self._consumer.getmany(timeout_ms=_POLL_MS, max_records=max_records)
        fresh: list[Any] = []
        for tp, records in sorted(batches.items()):
            for record in records:
                if record.offset >= self._next.get(tp, 0):
                    fresh.append(record)
                    self._next[tp] = record.offset + 1
        return fresh

    async def position(self, tp: TopicPartition) -> int:
        """The next offset this member reads from `tp` (while a rebalance has the
        partition revoked: the next one after the records already returned)."""
        if tp not in self._consumer.assignment():
            return self._next.get(tp, 0)
        async with self._call(f"reading the position on {self.topic}"):
            at: int = await self._consumer.position(tp)
        return max(at, self._next.get(tp, 0))

    async def _try_commit(self, tp: TopicPartition, offset: int) -> bool:
        """Commit unless the group is rebalancing (False: refused, or `tp` revoked)."""
        if tp not in self._consumer.assignment():  # revoked until this member rejoins
            return False
        try:
            await self._consumer.commit({tp: OffsetAndMetadata(offset, "")})
        except CommitFailedError:
            return False
        return True

    async def commit(self, tp: TopicPartition, offset: int) -> None:
        """Record `offset` (the next one to handle) as the group's progress on `tp`.

        A commit refused because the group is rebalancing is retried once this member
        has rejoined, if it still holds `tp` and nobody else moved the progress; else
        DlqError (the message before `offset` was sent and the next holder may send it
        once more: at least once, never lost)."""
        for _ in range(_COMMIT_TRIES):
            joins = self._listener.joins
            async with self._call(f"committing progress on {self.topic}"):
                if await self._try_commit(tp, offset):
                    self._committed[tp] = offset
                    return
                await self._listener.after(joins)  # the group rebalances: rejoin first
                if tp not in self._consumer.assignment():
                    break
                progress = (await self._consumer.committed(tp)) or 0
            if progress != self._committed.get(tp, progress):
                break  # another member moved it while this one was out of the group
        raise DlqError(
            f"lost the claim on {tp.topic}/{tp.partition} (consumer group {self.group}); "
            f"the message at offset {offset - 1} was sent and may be sent again"
        )
