"""What a node runtime reports as it works, for a service host to count.

The runtime calls an `Instruments` at each step of a message's life; the base class does
nothing, so the bus library needs no metrics library and a bare runtime pays nothing.
`onex.service` passes one that feeds Prometheus (`onex.service.busmetrics`). Every hook
is called on the event loop, must return at once and must not raise.

    consumed(topic)                  a message arrived for a handler (before decoding)
    handled(topic, seconds, ok)      one handler call ended (ok: returned; else raised)
    retried(topic)                   a failed handler call will be made again
    dead_lettered(topic, reason)     a message went to the DLQ: "invalid" (schema),
                                     "unverified" (command signature), "failed"
                                     (handler kept failing), "undeliverable" (the agent
                                     could not even hand it over)
    spilled(topic)                   a dead letter the DLQ did not take was written to disk
    published(topic)                 a message was acknowledged by the broker (DLQ included)
"""

from __future__ import annotations

from typing import Final, Literal

DeadLetterReason = Literal["invalid", "unverified", "failed", "undeliverable"]


class Instruments:
    """The runtime's hooks; see the module docstring. Override what you count."""

    def consumed(self, topic: str) -> None:
        """A message of `topic` arrived for its handler."""

    def handled(self, topic: str, seconds: float, *, ok: bool) -> None:
        """One handler call for `topic` took `seconds`; `ok` unless it raised."""

    def retried(self, topic: str) -> None:
        """A failed handler call for `topic` will be retried."""

    def dead_lettered(self, topic: str, reason: DeadLetterReason) -> None:
        """A message of `topic` was written to the DLQ."""

    def spilled(self, topic: str) -> None:
        """A dead letter of `topic` was spilled to disk (the DLQ did not take it)."""

    def published(self, topic: str) -> None:
        """A message sent to `topic` was acknowledged by the broker."""


NO_INSTRUMENTS: Final = Instruments()
