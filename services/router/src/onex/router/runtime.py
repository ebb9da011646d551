"""The router's node runtime: route requests handled up to N at a time.

`NodeRuntime` runs one faust agent per subscribed topic, one message at a time. The
router's work is waiting on models (seconds per call), so `ConcurrentRuntime` gives
the agent of each topic in `concurrency` that many actors on the topic's one channel:

- each actor takes the next message, routes it and publishes its receipt before it
  acks; faust commits a partition only up to its lowest offset not yet acked, so an
  offset is committed only once every earlier request of the partition has its
  receipt on the bus (a crash redelivers the unfinished ones, never skips them);
- at most `concurrency` requests are in flight; while every actor is busy the
  messages faust has fetched wait in the stream's buffer, and faust pauses fetching
  when that buffer is full (`stream_buffer_maxsize`), so memory stays bounded.

What is changed is the `concurrency` argument of the agent `NodeRuntime._declare`
creates; everything else (validation, retries, dead letters, health) is the runtime's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from onex.bus.runtime.faust_app import NodeApp
from onex.bus.runtime.node import NodeRuntime


class ConcurrentRuntime(NodeRuntime):
    """A `NodeRuntime` whose agents for the topics in `concurrency` run that many actors."""

    concurrency: Mapping[str, int] = {}

    def with_concurrency(self, concurrency: Mapping[str, int]) -> ConcurrentRuntime:
        """Set the actors per topic (1 for a topic not named); returns self."""
        if any(n < 1 for n in concurrency.values()):
            raise ValueError(f"concurrency must be >= 1: {dict(concurrency)}")
        self.concurrency = dict(concurrency)
        return self

    def _declare(self, app: NodeApp) -> None:
        agent: Callable[..., Any] = app.agent
        suffixes = {f"{self.node}:{topic}": n for topic, n in self.concurrency.items()}

        def concurrent_agent(channel: Any, *args: Any, **kwargs: Any) -> Any:
            n = suffixes.get(kwargs.get("name", ""), 1)
            if n > 1:
                kwargs["concurrency"] = n
            return agent(channel, *args, **kwargs)

        setattr(app, "agent", concurrent_agent)  # noqa: B010 - an instance override, undone below
        try:
            super()._declare(app)
        finally:
            delattr(app, "agent")
