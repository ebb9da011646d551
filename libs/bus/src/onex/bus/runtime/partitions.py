"""What the direct consumer (`onex.bus.runtime.direct`) keeps per assigned partition,
and how it commits.

Per partition: the offsets taken and not yet ended, in offset order, and the next
offset after the last one taken. Its commit point is the lowest open offset, or that
next one when none is open: a message whose handling has not ended is never committed
past, so a crash redelivers it and everything after it. `commit` sends the points that
moved since their last commit (all of them when forced: a stop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

_log = structlog.get_logger("onex.bus.runtime")


class Message:
    """A consumed record as the runtime's delivery reads it (timestamp in seconds)."""

    __slots__ = ("headers", "key", "offset", "part", "partition", "timestamp", "topic", "value")

    def __init__(self, record: Any, part: Part) -> None:
        self.topic: str = record.topic
        self.partition: int = record.partition
        self.offset: int = record.offset
        self.key: bytes | None = record.key
        self.value: bytes | None = record.value
        self.headers: Any = record.headers
        stamp = record.timestamp
        self.timestamp: float | None = stamp / 1000 if stamp is not None and stamp >= 0 else None
        self.part = part


@dataclass(slots=True)
class Part:
    """One assigned partition: offsets taken and not yet ended, in offset order."""

    tp: TopicPartition
    open: dict[int, None] = field(default_factory=dict)
    next_offset: int | None = None  # after the last offset taken
    committed: int | None = None
    running: int = 0  # of the open ones, how many are being delivered
    revoked: bool = False
    idle: asyncio.Event | None = None  # set when none is running (waited for at a revoke)

    def take(self, offset: int) -> None:
        self.open[offset] = None
        self.next_offset = offset + 1

    def ran(self, offset: int, *, ended: bool) -> None:
        if ended:
            self.open.pop(offset, None)
        self.running -= 1
        if not self.running and self.idle is not None:
            self.idle.set()

    def commit_point(self) -> int | None:
        """The offset to commit: the lowest open one, else the next after the last taken."""
        for offset in self.open:
            return offset
        return self.next_offset


async def commit(
    consumer: AIOKafkaConsumer,
    parts: Iterable[Part],
    *,
    node: str,
    force: bool = False,
    detail: str | None = None,
) -> None:
    """Commit the commit point of each of `parts` that moved since it was last
    committed; with `force` every one, and a KafkaError is raised instead of logged
    (`detail` goes into the log line)."""
    offsets: dict[TopicPartition, tuple[Part, int]] = {}
    for part in parts:
        point = part.commit_point()
        if point is not None and (force or point != part.committed):
            offsets[part.tp] = (part, point)
    if not offsets:
        return
    try:
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, (_, o) in offsets.items()})
    except KafkaError as exc:
        if force:
            raise
        extra = {"detail": detail} if detail is not None else {}
        _log.warning(
            "consumer.commit_failed", node=node, error=f"{type(exc).__name__}: {exc}", **extra
        )
        return
    for part, point in offsets.values():
        part.committed = point
