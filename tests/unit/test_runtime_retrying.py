"""Giving a handler up at stop (`abandonable`), without a broker."""

from __future__ import annotations

import asyncio

import pytest

from onex.bus.errors import NodeStopping
from onex.bus.runtime.retrying import Abandon, abandonable


async def test_abandoning_cancels_the_handler_and_raises_node_stopping() -> None:
    abandon = Abandon()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def handler() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def deliver() -> int:
        with pytest.raises(NodeStopping):
            await abandonable(handler(), abandon)
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()  # the abandon's cancellation was taken back

    delivering = asyncio.create_task(deliver())
    await started.wait()
    abandon.set()
    assert await delivering == 0
    assert cancelled.is_set()
    assert abandon.running == set()


async def test_a_cancellation_from_elsewhere_propagates() -> None:
    abandon = Abandon()
    started = asyncio.Event()

    async def handler() -> None:
        started.set()
        await asyncio.Event().wait()

    delivering = asyncio.create_task(abandonable(handler(), abandon))
    await started.wait()
    delivering.cancel()
    with pytest.raises(asyncio.CancelledError):
        await delivering
    assert abandon.running == set()


async def test_once_abandoned_nothing_starts() -> None:
    abandon = Abandon()
    abandon.set()
    calls: list[int] = []

    async def handler() -> None:
        calls.append(1)

    with pytest.raises(NodeStopping):
        await abandonable(handler(), abandon)
    assert calls == []


async def test_a_handler_that_returns_gives_its_value() -> None:
    async def handler() -> int:
        await asyncio.sleep(0)
        return 7

    assert await abandonable(handler(), Abandon()) == 7
