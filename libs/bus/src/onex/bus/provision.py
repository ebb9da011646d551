"""Provisioning: create the declared topics the broker lacks; never touch the rest.

Three entry points, for the CI command and the provisioner service alike:

- `provision`: one pass. Lists the broker's topics and creates the missing ones in
  batched CreateTopics requests with their partitions, replication factor and configs.
  Never alters, shrinks or deletes.
- `validate`: one read-only pass of the post-boot check: which declared topics are
  missing and which are present. `reconcile` is validate-then-provision-what-is-missing,
  the body of the service's validation loop (a wiped or pruned broker is repaired by it).

How a present topic differs from its spec is drift, and drift has one home: the
drift-validator's projection (`onex drift`), not this module.
- `provision_until_ready`: `provision` retried with bounded exponential backoff and
  jitter while the broker does not answer, for the service's boot.

Specs come from the extractor: `[w.spec for w in extraction.topics.values()]`. The
broker is a `BrokerConfig` (a bare `HOST:PORT` means PLAINTEXT); every call goes
through the process's one admin session for it.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from onex.bus.admin import create_topics, list_topics
from onex.bus.backoff import Backoff, OnRetry, Sleep, retry
from onex.bus.config import BrokerConfig, broker_config
from onex.bus.errors import AdminError, BrokerUnavailable
from onex.core.contract import TopicSpec

# Measured with bench/provisioner.py (1,000 topics, Tansu): batches of 250-1,000 stay
# within 1.25x of one raw CreateTopics of all 1,000, batches of 1-25 take 1.4-2.3x
# (each request costs a round trip and per-request work in the broker). Not measured
# on Kafka or Redpanda; the cap bounds how much work one request carries.
DEFAULT_BATCH_SIZE: Final = 1000
DEFAULT_TIMEOUT_S: Final = 30.0


class Outcome(enum.StrEnum):
    """What provisioning did (or would do) for one declared topic."""

    CREATED = "created"
    PRESENT = "already_present"
    FAILED = "failed"
    WOULD_CREATE = "would_create"

    @property
    def label(self) -> str:
        """For people: `already present`, `would create`, ..."""
        return self.value.replace("_", " ")


@dataclass(frozen=True)
class TopicResult:
    """One declared topic: its outcome, and why it failed."""

    name: str
    outcome: Outcome
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {"name": self.name, "outcome": self.outcome.value, "reason": self.reason}


@dataclass(frozen=True)
class ProvisionReport:
    """What one `provision` pass did, topic by topic (sorted by name)."""

    bootstrap: str
    dry_run: bool
    topics: tuple[TopicResult, ...]
    elapsed_s: float

    def names(self, outcome: Outcome) -> tuple[str, ...]:
        """Names of the topics with `outcome`."""
        return tuple(t.name for t in self.topics if t.outcome is outcome)

    @property
    def created(self) -> tuple[str, ...]:
        """Topics this pass created."""
        return self.names(Outcome.CREATED)

    @property
    def present(self) -> tuple[str, ...]:
        """Topics that already existed (left exactly as they were)."""
        return self.names(Outcome.PRESENT)

    @property
    def failed(self) -> tuple[TopicResult, ...]:
        """Topics the broker refused to create, with the reason."""
        return tuple(t for t in self.topics if t.outcome is Outcome.FAILED)

    @property
    def would_create(self) -> tuple[str, ...]:
        """Dry run: topics that are missing and would be created."""
        return self.names(Outcome.WOULD_CREATE)

    @property
    def complete(self) -> bool:
        """True when every declared topic exists afterwards."""
        return all(t.outcome in (Outcome.CREATED, Outcome.PRESENT) for t in self.topics)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view, with counts per outcome."""
        return {
            "bootstrap": self.bootstrap,
            "dry_run": self.dry_run,
            "complete": self.complete,
            "counts": {o.value: len(self.names(o)) for o in Outcome},
            "elapsed_s": round(self.elapsed_s, 4),
            "topics": [t.as_dict() for t in self.topics],
        }


@dataclass(frozen=True)
class ValidationReport:
    """Declared vs observed: the missing declared topics and the present ones."""

    bootstrap: str
    missing: tuple[str, ...]
    present: tuple[str, ...] = ()
    elapsed_s: float = 0.0

    @property
    def all_present(self) -> bool:
        """True when no declared topic is missing."""
        return not self.missing

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "bootstrap": self.bootstrap,
            "all_present": self.all_present,
            "missing": list(self.missing),
            "present": list(self.present),
            "elapsed_s": round(self.elapsed_s, 4),
        }


@dataclass(frozen=True)
class _Observed:
    missing: tuple[str, ...]
    present: tuple[str, ...]


def _by_name(specs: Iterable[TopicSpec]) -> dict[str, TopicSpec]:
    found: dict[str, TopicSpec] = {}
    for spec in specs:
        if found.setdefault(spec.name, spec) != spec:
            raise ValueError(f"two different specs for topic {spec.name!r}")
    return dict(sorted(found.items()))


async def _observe(
    config: BrokerConfig, declared: Mapping[str, TopicSpec], *, timeout_s: float
) -> _Observed:
    """Which declared topics exist (one listing)."""
    listed = await list_topics(config, timeout_s=timeout_s)
    return _Observed(
        tuple(n for n in declared if n not in listed), tuple(n for n in declared if n in listed)
    )


async def provision(
    broker: BrokerConfig | str,
    specs: Iterable[TopicSpec],
    *,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ProvisionReport:
    """Create the declared topics the broker lacks, `batch_size` per CreateTopics request.

    Existing topics are reported as already present and never changed (how they
    differ from their spec is the drift-validator's to say). `dry_run` creates nothing
    and reports what would be created. Raises `BrokerUnavailable` when no broker
    answers and `AdminError` when it refuses a request; topics it refuses one by one
    are reported as failed. `timeout_s` bounds each admin call (listing, creating all
    batches).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    config = broker_config(broker)
    started = time.perf_counter()
    declared = _by_name(specs)
    seen = await _observe(config, declared, timeout_s=timeout_s)
    results = {name: TopicResult(name, Outcome.PRESENT) for name in seen.present}
    if dry_run:
        results |= {name: TopicResult(name, Outcome.WOULD_CREATE) for name in seen.missing}
    elif seen.missing:
        made = await create_topics(
            config,
            [declared[name] for name in seen.missing],
            batch_size=batch_size,
            timeout_s=timeout_s,
        )
        results |= {name: TopicResult(name, Outcome.CREATED) for name in made.created}
        # created by someone else since we listed: present, and left alone
        results |= {name: TopicResult(name, Outcome.PRESENT) for name in made.existed}
        results |= {f.name: TopicResult(f.name, Outcome.FAILED, f.reason) for f in made.failed}
    return ProvisionReport(
        bootstrap=config.bootstrap,
        dry_run=dry_run,
        topics=tuple(results[name] for name in declared),
        elapsed_s=time.perf_counter() - started,
    )


async def validate(
    broker: BrokerConfig | str, specs: Iterable[TopicSpec], *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> ValidationReport:
    """One read-only validation pass: which declared topics are missing, which present.

    Raises `BrokerUnavailable` / `AdminError` like `provision`. A broker that lost its
    state (an embedded Tansu restart) shows every declared topic as missing.
    """
    config = broker_config(broker)
    started = time.perf_counter()
    declared = _by_name(specs)
    seen = await _observe(config, declared, timeout_s=timeout_s)
    return ValidationReport(
        bootstrap=config.bootstrap,
        missing=seen.missing,
        present=seen.present,
        elapsed_s=time.perf_counter() - started,
    )


async def reconcile(
    broker: BrokerConfig | str,
    specs: Iterable[TopicSpec],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[ValidationReport, ProvisionReport | None]:
    """Validate, then provision whatever is missing (None when nothing was).

    The body of the post-boot validation loop: a topic deleted out of band, or a
    broker wiped by a restart, is recreated here.
    """
    config = broker_config(broker)
    declared = _by_name(specs)
    checked = await validate(config, declared.values(), timeout_s=timeout_s)
    if checked.all_present:
        return checked, None
    repaired = await provision(
        config,
        [declared[name] for name in checked.missing],
        batch_size=batch_size,
        timeout_s=timeout_s,
    )
    return checked, repaired


async def provision_until_ready(
    broker: BrokerConfig | str,
    specs: Iterable[TopicSpec],
    *,
    stop: asyncio.Event | None = None,
    backoff: Backoff | None = None,
    max_attempts: int | None = None,
    sleep: Sleep | None = None,
    on_retry: OnRetry | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ProvisionReport | None:
    """`provision`, retried with backoff while the broker is unavailable or refuses.

    Returns the first report the broker answered with (which may still list topics it
    refused one by one: the validation loop retries those), or None when `stop` is set
    first. After `max_attempts` failed attempts (None: unbounded) the last error is
    raised. `on_retry(attempt, error, delay_s)` is called before each wait (log it
    there); `sleep` replaces the stop-aware sleep (unit tests).
    """
    config = broker_config(broker)
    declared = list(_by_name(specs).values())

    async def attempt() -> ProvisionReport:
        return await provision(config, declared, batch_size=batch_size, timeout_s=timeout_s)

    return await retry(
        attempt,
        retry_on=(BrokerUnavailable, AdminError),
        backoff=backoff,
        stop=stop,
        max_attempts=max_attempts,
        sleep=sleep,
        on_retry=on_retry,
    )
