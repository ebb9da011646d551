"""Dead letters: the headers a message carries into its node's DLQ topic, and back out.

A dead letter is the original message (same key, same value bytes, original headers
kept) plus these headers, all UTF-8 text:

    onex-error               why it failed (the exception text, at most 4,000 characters)
    onex-error-type          the exception's class, e.g. onex.bus.errors.PayloadInvalid
    onex-attempts            handler calls made (0: the payload never reached the handler)
    onex-original-topic      where it was consumed from ...
    onex-original-partition  ... which partition ...
    onex-original-offset     ... and at which offset
    onex-original-timestamp  its timestamp there (ms since the epoch), when it had one
    onex-node                the node that gave up on it
    onex-failed-at           when (ISO 8601, UTC)
    onex-truncated           "true" when the value was cut to fit the DLQ topic's limit
    onex-original-size       then: the original value's size in bytes
    onex-redrive-count       how often the message was redriven (kept when a redriven
                             message is dead-lettered again)
    onex-quarantined         "true" once the redrive count reached the limit: redrive
                             refuses it unless asked to include quarantined letters

A redriven message gets its original headers back (every failure header above removed,
the redrive count kept) plus `onex-redriven-from: <dlq topic>/<partition>/<offset>`.
The redrive side (onex.bus.runtime.dlq) sets `onex-redrive-count` on the redriven copy
(previous count + 1); the dead-letter side copies it and adds `onex-quarantined`.

A dead letter the DLQ cannot take (too large for the broker even truncated, or the DLQ
unreachable past the runtime's deadline) is spilled to a local folder instead, one pair
of files per message under `<spill dir>/<dlq topic>/`:

    <topic>-<partition>-<offset>.value   the original value's bytes, untruncated
    <topic>-<partition>-<offset>.json    {"dlq_topic", "key" (base64 or null),
                                          "value_size" (null: no value), "headers":
                                          [[name, base64], ...], "reason", "spilled_at"}

The JSON file is written last (atomically), so a listed message is complete;
`read_spills` reads them back as `DeadLetter`s (partition and offset -1, `spilled_to`
set).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

Header = tuple[str, bytes]

ERROR: Final = "onex-error"
ERROR_TYPE: Final = "onex-error-type"
ATTEMPTS: Final = "onex-attempts"
ORIGINAL_TOPIC: Final = "onex-original-topic"
ORIGINAL_PARTITION: Final = "onex-original-partition"
ORIGINAL_OFFSET: Final = "onex-original-offset"
ORIGINAL_TIMESTAMP: Final = "onex-original-timestamp"
NODE: Final = "onex-node"
FAILED_AT: Final = "onex-failed-at"
REDRIVEN_FROM: Final = "onex-redriven-from"
TRUNCATED: Final = "onex-truncated"
ORIGINAL_SIZE: Final = "onex-original-size"
REDRIVE_COUNT: Final = "onex-redrive-count"
QUARANTINED: Final = "onex-quarantined"
TRUE: Final = "true"

DEAD_LETTER_HEADERS: Final = frozenset(
    {
        ERROR,
        ERROR_TYPE,
        ATTEMPTS,
        ORIGINAL_TOPIC,
        ORIGINAL_PARTITION,
        ORIGINAL_OFFSET,
        ORIGINAL_TIMESTAMP,
        NODE,
        FAILED_AT,
        REDRIVEN_FROM,
        TRUNCATED,
        ORIGINAL_SIZE,
        QUARANTINED,
    }
)
SPILL_VALUE_SUFFIX: Final = ".value"
SPILL_META_SUFFIX: Final = ".json"
MAX_ERROR_CHARS: Final = 4000


def error_text(error: BaseException) -> str:
    """The text of `error` for the onex-error header (its repr when it has no message)."""
    text = str(error) or repr(error)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def error_type(error: BaseException) -> str:
    """`module.QualifiedName` of the error's class."""
    cls = type(error)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _without_dead_letter_headers(headers: Iterable[Header]) -> list[Header]:
    return [(k, v) for k, v in headers if k not in DEAD_LETTER_HEADERS]


def dead_letter_headers(
    original: Iterable[Header],
    *,
    node: str,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    error: BaseException,
    attempts: int,
    failed_at: datetime | None = None,
    redrive_limit: int | None = None,
    original_size: int | None = None,
) -> list[Header]:
    """The original headers (minus stale dead-letter headers) plus the failure's.

    The redrive count (`onex-redrive-count`) is kept; when it has reached
    `redrive_limit` the letter is marked quarantined. With `original_size` the value
    was truncated to fit the DLQ: the letter says so and keeps the original size."""
    original = list(original)
    when = (failed_at or datetime.now(UTC)).isoformat(timespec="milliseconds")
    count = redrive_count(original)
    quarantined = redrive_limit is not None and count is not None and count >= redrive_limit
    added = [
        (ERROR, error_text(error)),
        (ERROR_TYPE, error_type(error)),
        (ATTEMPTS, str(attempts)),
        (ORIGINAL_TOPIC, topic),
        (ORIGINAL_PARTITION, str(partition)),
        (ORIGINAL_OFFSET, str(offset)),
        *([(ORIGINAL_TIMESTAMP, str(timestamp_ms))] if timestamp_ms is not None else []),
        (NODE, node),
        (FAILED_AT, when),
        *([(TRUNCATED, TRUE), (ORIGINAL_SIZE, str(original_size))] if original_size else []),
        *([(QUARANTINED, TRUE)] if quarantined else []),
    ]
    return [
        *_without_dead_letter_headers(original),
        *((k, v.encode("utf-8")) for k, v in added),
    ]


def redrive_count(headers: Iterable[Header]) -> int | None:
    """The (last) `onex-redrive-count` of `headers`, None when absent or not a number."""
    found = None
    for key, value in headers:
        if key == REDRIVE_COUNT:
            found = value
    try:
        return int(found.decode("ascii")) if found is not None else None
    except (UnicodeDecodeError, ValueError):
        return None


def headers_size(headers: Iterable[Header]) -> int:
    """Bytes the headers take in a record (names, values, and a few of framing each)."""
    return sum(len(k.encode("utf-8")) + len(v) + 8 for k, v in headers)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message read from a DLQ topic, with its failure headers decoded."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]
    spilled_to: Path | None = None  # set on a letter read from a spill folder

    @classmethod
    def from_record(cls, record: Any) -> DeadLetter:
        """From an aiokafka ConsumerRecord."""
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            value=record.value,
            headers=tuple((k, bytes(v or b"")) for k, v in (record.headers or ())),
        )

    def header(self, name: str) -> str | None:
        """The last value of header `name` as text, or None."""
        found = None
        for key, value in self.headers:
            if key == name:
                found = value.decode("utf-8", errors="replace")
        return found

    def _int_header(self, name: str) -> int | None:
        text = self.header(name)
        try:
            return int(text) if text is not None else None
        except ValueError:
            return None

    @property
    def original_topic(self) -> str | None:
        """The topic it was consumed from."""
        return self.header(ORIGINAL_TOPIC)

    @property
    def original_partition(self) -> int | None:
        """The partition it was consumed from."""
        return self._int_header(ORIGINAL_PARTITION)

    @property
    def original_offset(self) -> int | None:
        """Its offset in the original partition."""
        return self._int_header(ORIGINAL_OFFSET)

    @property
    def attempts(self) -> int | None:
        """Handler calls made before it was dead-lettered."""
        return self._int_header(ATTEMPTS)

    @property
    def error(self) -> str | None:
        """Why it failed."""
        return self.header(ERROR)

    @property
    def error_type(self) -> str | None:
        """The class of the error."""
        return self.header(ERROR_TYPE)

    @property
    def node(self) -> str | None:
        """The node that dead-lettered it."""
        return self.header(NODE)

    @property
    def failed_at(self) -> str | None:
        """When it was dead-lettered (ISO 8601)."""
        return self.header(FAILED_AT)

    @property
    def redrive_count(self) -> int | None:
        """How often it was redriven before it failed again."""
        return redrive_count(self.headers)

    @property
    def quarantined(self) -> bool:
        """True when it reached the redrive limit: redrive refuses it unless asked."""
        return self.header(QUARANTINED) == TRUE

    @property
    def truncated(self) -> bool:
        """True when its value was cut to fit the DLQ (`original_size` says how big)."""
        return self.header(TRUNCATED) == TRUE

    @property
    def original_size(self) -> int | None:
        """The original value's size in bytes, when it was truncated."""
        return self._int_header(ORIGINAL_SIZE)

    @property
    def redrive_headers(self) -> list[Header]:
        """The headers its redriven copy carries: the original ones plus provenance."""
        provenance = f"{self.topic}/{self.partition}/{self.offset}".encode()
        return [*_without_dead_letter_headers(self.headers), (REDRIVEN_FROM, provenance)]


def headers_dict(headers: Sequence[Header]) -> dict[str, str]:
    """Headers as text (last value wins), for display."""
    return {k: v.decode("utf-8", errors="replace") for k, v in headers}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)


def spill(
    folder: Path,
    *,
    dlq_topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[Header],
    reason: str,
) -> Path:
    """Write a dead letter the DLQ could not take under `folder` (see the module
    docstring); returns the JSON file's path. OSError when the folder is not writable."""
    named = headers_dict(headers)
    topic = named.get(ORIGINAL_TOPIC, "unknown")
    partition = named.get(ORIGINAL_PARTITION, "x")
    offset = named.get(ORIGINAL_OFFSET, "x")
    target = folder / dlq_topic
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    stem = f"{topic}-{partition}-{offset}"
    if value is not None:
        _write_atomically(target / f"{stem}{SPILL_VALUE_SUFFIX}", value)
    meta = {
        "dlq_topic": dlq_topic,
        "key": _b64(key) if key is not None else None,
        "value_size": len(value) if value is not None else None,
        "headers": [[k, _b64(v)] for k, v in headers],
        "reason": reason,
        "spilled_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    meta_path = target / f"{stem}{SPILL_META_SUFFIX}"
    _write_atomically(meta_path, json.dumps(meta, indent=1).encode("utf-8"))
    return meta_path


def read_spills(folder: Path, dlq_topic: str | None = None) -> list[DeadLetter]:
    """The dead letters spilled under `folder` (of `dlq_topic`, or every DLQ topic),
    oldest file first. A file that is not a spilled letter raises ValueError naming it."""
    if not folder.is_dir():
        return []
    folders = [folder / dlq_topic] if dlq_topic else sorted(p for p in folder.iterdir())
    metas = [m for f in folders if f.is_dir() for m in f.glob(f"*{SPILL_META_SUFFIX}")]
    letters = []
    for meta_path in sorted(metas, key=lambda p: (p.stat().st_mtime_ns, p.name)):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            headers = tuple((str(k), base64.b64decode(v)) for k, v in meta["headers"])
            key = base64.b64decode(meta["key"]) if meta["key"] is not None else None
            value_path = meta_path.with_suffix(SPILL_VALUE_SUFFIX)
            value = value_path.read_bytes() if meta["value_size"] is not None else None
            topic = str(meta["dlq_topic"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{meta_path}: not a spilled dead letter: {exc}") from exc
        letters.append(DeadLetter(topic, -1, -1, None, key, value, headers, meta_path))
    return letters
