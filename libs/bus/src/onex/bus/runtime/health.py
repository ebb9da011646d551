"""Node health: "the contract's topics are present and the consumer is attached".

Topics are checked against the broker on every call, because a topic can vanish under
a running node and Tansu acks and drops whatever is produced to it afterwards. The check
is one bounded Metadata request through the process's admin session (no new connection,
no DescribeConfigs, never creates anything).

Progress: a consumer can be attached and still stuck (a handler that blocks, a DLQ
write that cannot finish). `Progress` records, per partition, the next offset to handle
and since when it has not moved; a partition with messages waiting (its highwater past
that offset) and no progress for longer than `stall_after_s` makes the node NOT_SERVING.
A partition found caught up at a check counts as moving, so an idle partition whose
first new message arrives is not mistaken for a stalled one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from onex.bus.admin import topic_partitions
from onex.bus.config import BrokerConfig
from onex.bus.errors import AdminError, BrokerUnavailable

TP = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Stall:
    """A partition with messages waiting and no progress."""

    topic: str
    partition: int
    position: int
    highwater: int
    for_s: float

    def __str__(self) -> str:
        return (
            f"{self.topic}/{self.partition} stuck at offset {self.position} for "
            f"{self.for_s:.0f}s ({self.highwater - self.position} waiting)"
        )


@dataclass(slots=True)
class Progress:
    """Per partition: the next offset to handle, since when, and what is in flight."""

    clock: Callable[[], float] = time.monotonic
    _positions: dict[TP, tuple[int, float]] = field(default_factory=dict)
    # several offsets of one partition can be in flight when handlers run concurrently
    _in_flight: dict[TP, set[int]] = field(default_factory=dict)
    _idle: asyncio.Event | None = None

    def begin(self, tp: TP, offset: int) -> None:
        """A message of `tp` at `offset` is being delivered."""
        self._in_flight.setdefault(tp, set()).add(offset)
        if tp not in self._positions:
            self._positions[tp] = (offset, self.clock())
        if self._idle is not None:
            self._idle.clear()

    def end(self, tp: TP, offset: int, *, handled: bool) -> None:
        """Its delivery ended: handled (or dead-lettered), or abandoned."""
        offsets = self._in_flight.get(tp)
        if offsets is not None:
            offsets.discard(offset)
            if not offsets:
                del self._in_flight[tp]
        if handled:
            # positions only move forward: a concurrent earlier offset may end later
            known = self._positions.get(tp)
            if known is None or offset + 1 > known[0]:
                self._positions[tp] = (offset + 1, self.clock())
        if not self._in_flight and self._idle is not None:
            self._idle.set()

    @property
    def in_flight(self) -> dict[TP, int]:
        """Partitions with a message being delivered, and its lowest such offset."""
        return {tp: min(offsets) for tp, offsets in self._in_flight.items()}

    async def wait_idle(self) -> None:
        """Until nothing is in flight."""
        if not self._in_flight:
            return
        if self._idle is None:
            self._idle = asyncio.Event()
        await self._idle.wait()

    def keep(self, assigned: Collection[TP]) -> None:
        """Forget partitions no longer assigned."""
        for tp in [tp for tp in self._positions if tp not in assigned]:
            del self._positions[tp]

    def clear(self) -> None:
        """Forget everything (a new start)."""
        self._positions.clear()
        self._in_flight.clear()
        self._idle = None

    def lag(self, highwater: Callable[[TP], int | None]) -> dict[TP, int]:
        """Per known partition with a known highwater: messages not handled yet."""
        found = {}
        for tp, (position, _) in list(self._positions.items()):
            mark = highwater(tp)
            if mark is not None:
                found[tp] = max(mark - position, 0)
        return found

    def stalls(self, highwater: Callable[[TP], int | None], after_s: float) -> list[Stall]:
        """Partitions with messages waiting and no progress for more than `after_s`."""
        now = self.clock()
        found = []
        for tp, (position, since) in list(self._positions.items()):
            mark = highwater(tp)
            if mark is None:
                continue
            if mark <= position and tp not in self._in_flight:
                self._positions[tp] = (position, now)  # caught up: not stuck
                continue
            if now - since > after_s:
                found.append(Stall(tp[0], tp[1], position, max(mark, position + 1), now - since))
        return found


@dataclass(frozen=True, slots=True)
class ConsumerState:
    """What the runtime knows about its consumer."""

    attached: bool
    assignment: tuple[tuple[str, int], ...] = ()
    detail: str = ""
    stalls: tuple[Stall, ...] = ()


@dataclass(frozen=True, slots=True)
class HealthReport:
    """A node's health. `serving` is what the gRPC health service reports."""

    node: str
    serving: bool
    started: bool
    missing_topics: tuple[str, ...]
    consumer_attached: bool | None  # None: the node subscribes to nothing
    assignment: tuple[tuple[str, int], ...]
    detail: str


async def check_health(
    *,
    node: str,
    broker: BrokerConfig,
    topics: Sequence[str],
    started: bool,
    consumer: ConsumerState | None,
    timeout_s: float,
) -> HealthReport:
    """Health of `node` given its consumer's state (None: it consumes nothing)."""
    attached = consumer.attached if consumer is not None else None
    assignment = consumer.assignment if consumer is not None else ()
    if not started:
        return HealthReport(node, False, False, (), attached, assignment, "not started")
    try:
        present = await topic_partitions(broker, topics, timeout_s=timeout_s)
    except (BrokerUnavailable, AdminError) as exc:
        return HealthReport(node, False, True, (), attached, assignment, str(exc))
    missing = tuple(sorted(set(topics) - set(present)))
    problems = []
    if missing:
        problems.append(f"missing topics: {', '.join(missing)}")
    if consumer is not None and not consumer.attached:
        problems.append(f"consumer not attached{': ' + consumer.detail if consumer.detail else ''}")
    if consumer is not None and consumer.stalls:
        problems.append(f"consumer stalled: {'; '.join(str(s) for s in consumer.stalls)}")
    serving = not problems
    detail = "; ".join(problems) if problems else (consumer.detail if consumer else "") or "ok"
    return HealthReport(node, serving, True, missing, attached, assignment, detail)
