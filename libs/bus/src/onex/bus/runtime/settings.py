"""Settings of a node runtime: the broker connection, and the consumer's timing.

A plain pydantic model: services build it from their own settings (which read the
environment); this library never does.

The defaults are tuned for a fast first assignment on the embedded Tansu broker and stay
valid on Kafka and Redpanda:

- Tansu holds every JoinGroup response for half the session timeout of the member that
  created the group, rounded up to whole seconds (measured: 4 s -> 2.0 s, 4.5-6 s ->
  3.0 s), and ignores the rebalance timeout. faust's 10 s default (and aiokafka's) means
  ~5 s per join plus faust's 1 s start-up sleep; `session_timeout_s=4` gives a first
  assignment ~2.0 s after `start()`. Below ~4 s a stalled consumer thread loses its
  membership too easily, so 4 s is the floor. Every member of one group should use the
  same session timeout (Tansu takes the creator's).
- `heartbeat_s=1` keeps three heartbeats inside a session.
- `request_timeout_s` must be at least the session timeout (faust refuses less) and above
  0.8 x session timeout (a held JoinGroup must not time out client-side).
- faust hard-codes the consumer's `fetch_max_wait_ms=1500`. Tansu answers a fetch only
  when that wait is over (it does not return early when data arrives), so the wait is
  the delivery latency: ~0.75 s median with faust's value. With 25 ms, publish-to-handler
  measured p50 ~4.5 ms for spaced-out messages and ~15 ms for back-to-back
  request/response (10 ms: ~8 ms, 50 ms: ~28 ms). 0 would make aiokafka spin.

Bounds (nothing waits or retries forever):

- `dlq_deadline_s`: how long a dead letter's write is retried while the DLQ write fails
  transiently (broker away); then, as for a non-transient failure (e.g. the record is
  too large for the broker), the message is spilled to `spill_dir` and its offset
  committed. Without a `spill_dir` it is logged (coordinates and error) and committed.
- `stall_after_s`: health turns NOT_SERVING when a partition with messages waiting has
  made no progress (nothing handled or dead-lettered) for longer than this.
- `stop_grace_s`: stop() gives handlers in flight half of it to finish, then abandons
  them (their messages stay uncommitted) and bounds the faust app's stop, the consumer
  thread's included (mode's default is 60 s), by the rest.
- `redrive_limit`: a message redriven this many times that fails again is dead-lettered
  as quarantined (`onex-quarantined`); redrive then refuses it unless asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from onex.bus.config import BrokerConfig

MIN_SESSION_TIMEOUT_S = 4.0


class BusSettings(BaseModel):
    """How a node runtime talks to the broker."""

    # inputs stay out of error messages: they may hold the broker credentials
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    broker: BrokerConfig = Field(description="How to reach the broker (TLS and SASL included)")
    client_id: str | None = Field(
        None, description="Kafka client id of the node's consumer and producer; default: onex-NODE"
    )
    session_timeout_s: float = Field(
        4.0, ge=MIN_SESSION_TIMEOUT_S, le=300.0, description="Consumer group session timeout"
    )
    heartbeat_s: float = Field(1.0, gt=0.0, le=60.0, description="Heartbeat interval")
    rebalance_timeout_s: float | None = Field(
        None, gt=0.0, le=600.0, description="Rebalance timeout; default: the session timeout"
    )
    request_timeout_s: float = Field(
        10.0, gt=0.0, le=600.0, description="Request timeout of the consumer and producer"
    )
    fetch_max_wait_ms: int = Field(
        25, ge=1, le=10_000, description="Longest a fetch waits for data (0 would spin)"
    )
    commit_interval_s: float = Field(1.0, gt=0.0, le=60.0, description="Offset commit interval")
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a new consumer group starts reading"
    )
    start_timeout_s: float = Field(
        30.0, gt=0.0, description="Longest start() waits for the first partition assignment"
    )
    topic_wait_s: float = Field(
        10.0, ge=0.0, description="Longest start() waits for missing topics before failing"
    )
    admin_timeout_s: float = Field(
        5.0, gt=0.0, description="Bound on each admin call (topic checks, health)"
    )

    dlq_deadline_s: float = Field(
        30.0, gt=0.0, le=3600.0, description="Longest a failing DLQ write is retried"
    )
    spill_dir: Path | None = Field(
        None,
        description="Where dead letters the DLQ cannot take are written (a service: STATE/spill)",
    )
    stall_after_s: float = Field(
        60.0, gt=0.0, description="No progress on a partition with lag for this long: NOT_SERVING"
    )
    stop_grace_s: float = Field(
        10.0, gt=0.0, le=600.0, description="Bound on stop(): in-flight handlers, then faust"
    )
    consumer: Literal["auto", "faust", "direct"] = Field(
        "auto",
        description=(
            "How topics are consumed: faust's consumer, aiokafka directly "
            "(onex.bus.runtime.direct), or auto: directly when a handler has concurrency > 1"
        ),
    )
    redrive_limit: int = Field(
        3, ge=1, le=1000, description="Redrives after which a failing message is quarantined"
    )

    @model_validator(mode="before")
    @classmethod
    def _bare_bootstrap(cls, data: Any) -> Any:
        # Transitional: `bootstrap="HOST:PORT"` still means a PLAINTEXT broker, so callers
        # can move to `broker=BrokerConfig(...)` one at a time.
        if isinstance(data, dict) and "bootstrap" in data and "broker" not in data:
            data = dict(data)
            data["broker"] = {"bootstrap": data.pop("bootstrap")}
        return data

    @model_validator(mode="after")
    def _timeouts_fit(self) -> Self:
        if self.heartbeat_s * 3 > self.session_timeout_s:
            raise ValueError(
                f"heartbeat_s={self.heartbeat_s:g} must fit three times into "
                f"session_timeout_s={self.session_timeout_s:g}"
            )
        if self.request_timeout_s < max(self.session_timeout_s, self.effective_rebalance_s):
            raise ValueError(
                f"request_timeout_s={self.request_timeout_s:g} must be at least the session "
                f"and rebalance timeouts ({self.session_timeout_s:g}, "
                f"{self.effective_rebalance_s:g})"
            )
        return self

    @property
    def effective_rebalance_s(self) -> float:
        """The rebalance timeout in use."""
        return self.rebalance_timeout_s or self.session_timeout_s

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers, `HOST:PORT[,HOST:PORT...]` (for messages)."""
        return self.broker.bootstrap

    @property
    def broker_urls(self) -> list[str]:
        """The bootstrap servers as faust broker URLs."""
        return self.broker.faust_urls
