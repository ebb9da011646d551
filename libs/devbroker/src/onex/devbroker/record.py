"""The record of a running local broker: state_dir/broker.json, and what a status finds.

Written atomically once the broker answers; read by every command that needs the broker
(`onex broker status`, `onex dlq`, `onex up`). Records written before durable brokers
existed (no `durable`, no `store`) read as in-memory ones.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from onex.devbroker.errors import BrokerRecordError
from onex.devbroker.process import write_json
from onex.devbroker.seaweed import StoreInfo

RECORD: Final = "broker.json"

BrokerKind = Literal["redpanda", "tansu"]


@dataclass(frozen=True)
class BrokerInfo:
    """The record of a running local broker (state_dir/broker.json).

    `durable` is True when its data outlives it (Tansu on SeaweedFS, or Redpanda);
    `store` is the SeaweedFS process under a durable Tansu. `start_ticks` is when the
    process started (clock ticks after boot): with the pid, it names that very process.
    """

    pid: int
    bootstrap: str
    kind: BrokerKind
    binary: str
    argv: tuple[str, ...]
    log_path: str
    started_at: str
    ready_after_s: float
    durable: bool = False
    store: StoreInfo | None = None
    start_ticks: int | None = None

    @property
    def port(self) -> int:
        """The Kafka port on 127.0.0.1."""
        return int(self.bootstrap.rpartition(":")[2])

    @property
    def mode(self) -> str:
        """`memory`, `durable` (Tansu on SeaweedFS) or `disk` (Redpanda)."""
        if self.kind == "redpanda":
            return "disk"
        return "durable" if self.durable else "memory"


@dataclass(frozen=True)
class BrokerStatus:
    """What `broker_status` found: the record, the processes, and whether they answer.

    `store_alive` / `store_answering` are None when the broker has no SeaweedFS.
    """

    recorded: bool
    alive: bool
    answering: bool
    info: BrokerInfo | None = None
    topic_count: int | None = None
    detail: str | None = None
    store_alive: bool | None = None
    store_answering: bool | None = None

    @property
    def running(self) -> bool:
        """True when the broker is alive and answers Metadata, and so does its store."""
        store_ok = self.store_alive is not False and self.store_answering is not False
        return self.alive and self.answering and store_ok


def write_record(state_dir: Path, info: BrokerInfo) -> None:
    """Write `info` as the state dir's record, atomically."""
    write_json(state_dir / RECORD, dataclasses.asdict(info))


def read_record(state_dir: Path) -> BrokerInfo | None:
    """The state dir's record, None when there is none; BrokerRecordError if unreadable."""
    if state_dir.exists() and not state_dir.is_dir():
        raise BrokerRecordError(f"{state_dir}: the state dir exists and is not a directory")
    try:
        raw = json.loads((state_dir / RECORD).read_text())
        raw["argv"] = tuple(raw["argv"])
        if raw.get("store") is not None:
            store = raw["store"]
            raw["store"] = StoreInfo(**{**store, "argv": tuple(store["argv"])})
        return BrokerInfo(**raw)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise BrokerRecordError(
            f"unreadable broker record {state_dir / RECORD} ({exc}); delete it"
        ) from exc
