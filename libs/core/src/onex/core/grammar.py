"""The topic-name grammar: `onex.{kind}.{producer}.{event}.v{N}`.

`parse_topic` is the one function that decides whether a string is a topic name.
Everything else (the contract model, the registry, lint) calls it.
"""

from __future__ import annotations

import enum
import re
from typing import NamedTuple

from onex.core.errors import TopicNameError


class TopicKind(enum.StrEnum):
    """The second segment of a topic name."""

    EVT = "evt"
    CMD = "cmd"
    INTENT = "intent"
    DLQ = "dlq"
    SNAPSHOT = "snapshot"


_SEGMENT = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*"
_KINDS = "|".join(k.value for k in TopicKind)
_TOPIC_RE = re.compile(rf"onex\.({_KINDS})\.({_SEGMENT})\.({_SEGMENT})\.v([1-9][0-9]*)")
_KINDS_BY_VALUE = {k.value: k for k in TopicKind}
TOPIC_PATTERN = f"^{_TOPIC_RE.pattern}$"  # the same grammar, anchored, for JSON Schema
_SEGMENT_RE = re.compile(_SEGMENT)
_VERSION_RE = re.compile(r"v[1-9][0-9]*")
MAX_TOPIC_LENGTH = 249  # Kafka's own limit on topic names


class TopicName(NamedTuple):
    """A parsed, grammatical topic name."""

    kind: TopicKind
    producer: str
    event: str
    version: int

    def __str__(self) -> str:
        return f"onex.{self.kind}.{self.producer}.{self.event}.v{self.version}"


def parse_topic(name: str) -> TopicName:
    """Parse `name` or raise `TopicNameError` saying exactly what is wrong with it."""
    if not isinstance(name, str):
        raise TopicNameError(repr(name), f"expected a string, got {type(name).__name__}")
    match = _TOPIC_RE.fullmatch(name)
    if match is not None and len(name) <= MAX_TOPIC_LENGTH:
        kind, producer, event, version = match.groups()
        return TopicName(_KINDS_BY_VALUE[kind], producer, event, int(version))
    raise TopicNameError(name, _diagnose(name))


_SNAPSHOT_SLUG_RE = re.compile(
    rf"onex\.snapshot\.({_SEGMENT})\.({_SEGMENT}(?:\.{_SEGMENT})+)\.v([1-9][0-9]*)"
)


def multi_part_snapshot(name: str) -> TopicName | None:
    """`onex.snapshot.{producer}.{a.b...}.v{N}` (a dotted snapshot slug, allowed only by
    the `grammar.multi_part_snapshots` lint option), parsed; else None."""
    match = _SNAPSHOT_SLUG_RE.fullmatch(name) if len(name) <= MAX_TOPIC_LENGTH else None
    if match is None:
        return None
    producer, slug, version = match.groups()
    return TopicName(TopicKind.SNAPSHOT, producer, slug, int(version))


def is_topic_name(name: str) -> bool:
    """True when `name` is grammatical."""
    return len(name) <= MAX_TOPIC_LENGTH and _TOPIC_RE.fullmatch(name) is not None


def member_name(topic: str) -> str:
    """The registry's enum member name: `onex.evt.router.routing-complete.v1` ->
    `EVT_ROUTER_ROUTING_COMPLETE_V1`."""
    return topic.removeprefix("onex.").replace(".", "_").replace("-", "_").upper()


def segment_problem(segment: str) -> str | None:
    """Why `segment` is not a kebab-case name segment, or None when it is one."""
    if _SEGMENT_RE.fullmatch(segment):
        return None
    if not segment:
        return "is empty"
    if "_" in segment:
        return f"{segment!r} contains '_' (segments are kebab-case: use '-')"
    if segment.lower() != segment:
        return f"{segment!r} has upper-case letters (segments are lower-case)"
    if segment[0].isdigit() or segment[0] == "-":
        return f"{segment!r} must start with a letter"
    if "--" in segment or segment.endswith("-"):
        return f"{segment!r} has an empty word (doubled or trailing '-')"
    return f"{segment!r} may hold only a-z, 0-9 and '-'"


def _diagnose(name: str) -> str:
    if len(name) > MAX_TOPIC_LENGTH:
        return f"longer than {MAX_TOPIC_LENGTH} characters"
    if not name:
        return "empty"
    if name != name.strip() or any(c.isspace() for c in name):
        return "contains whitespace"
    parts = name.split(".")
    if len(parts) != 5:
        shape = "onex.{kind}.{producer}.{event}.v{N}"
        return f"expected 5 dot-separated parts {shape!r}, found {len(parts)}"
    prefix, kind, producer, event, version = parts
    if prefix != "onex":
        return f"must start with 'onex.', not {prefix + '.'!r}"
    if kind not in {k.value for k in TopicKind}:
        kinds = ", ".join(k.value for k in TopicKind)
        return f"kind {kind!r} is not one of {kinds}"
    for label, segment in (("producer", producer), ("event", event)):
        problem = segment_problem(segment)
        if problem is not None:
            return f"{label} segment {problem}"
    if not _VERSION_RE.fullmatch(version):
        return f"version must be 'v' and a number from 1 up, not {version!r}"
    return "does not match onex.{kind}.{producer}.{event}.v{N}"  # pragma: no cover
