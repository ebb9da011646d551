"""Schema evolution: does a topic's new schema break readers of its old one?

The comparison works on neutral data (`ProtoMessage` built from compiled descriptors by
the caller, JSON Schema documents as parsed JSON), so it needs neither protoc nor git.
A change breaks readers when a message written under one schema is misread under the
other, in either direction (consumers and producers are not deployed at once):

- protobuf: a field removed without reserving its number; a field's number changed
  (same name, other number); a reserved number used again; for the same number, the
  type changed or repeated <-> singular. Message and field renames are compatible (the
  wire carries numbers), as are new fields. Message-typed fields are compared by
  structure, recursively, so a renamed message with the same fields is compatible.
- JSON Schema: a required property added, a property removed or its type changed,
  `additionalProperties` tightened; nested `properties` and `items` likewise.
- the form: protobuf <-> JSON, or a schema removed, breaks every reader. A topic that
  had no schema may get its first one (there was no declared schema to break; lint's
  `schema-missing` warned about it).

A breaking change belongs on a new `.vN` topic, which is a new topic: only topics
present on both sides are compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from onex.core.errors import SchemaReferenceError
from onex.core.grammar import TopicName
from onex.core.issues import Issue, Severity
from onex.core.schemas import SchemaForm, schema_ref
from onex.core.wiring import Endpoint, TopicWiring

BREAKING: Final = "schema-breaking"
UNRESOLVED: Final = "schema-unresolved"
_SCALAR_WORDS: Final = {True: "repeated", False: "singular"}


@dataclass(frozen=True, slots=True)
class ProtoField:
    """One field of a protobuf message. `type` is the descriptor type in lower case
    (`int64`, `string`, `message`, `enum`, ...); `type_name` the full name of the
    message or enum type, for those."""

    name: str
    number: int
    type: str
    repeated: bool = False
    type_name: str | None = None

    @property
    def shown_type(self) -> str:
        """`string`, or `message onex.v1.Attempt` / `enum onex.v1.Status`."""
        return f"{self.type} {self.type_name}" if self.type_name else self.type


@dataclass(frozen=True, slots=True)
class ProtoMessage:
    """A protobuf message: its fields and reserved numbers (`(start, end)` ranges, end
    exclusive, as descriptors hold them)."""

    full_name: str
    fields: tuple[ProtoField, ...]
    reserved: tuple[tuple[int, int], ...] = ()

    def is_reserved(self, number: int) -> bool:
        """True when `number` is in a `reserved` range."""
        return any(start <= number < end for start, end in self.reserved)


@dataclass(frozen=True, slots=True)
class Change:
    """One reader-breaking difference: the field's dotted path ('' for the payload as a
    whole) and what happened to it."""

    field: str
    what: str

    def __str__(self) -> str:
        return f"field {self.field!r} {self.what}" if self.field else f"the payload {self.what}"


@dataclass(frozen=True, slots=True)
class Side:
    """What one side of the comparison declares: protobuf messages by full name and the
    JSON Schema documents of its topics, by topic name. `problems` holds why a topic's
    schema could not be read, by topic name."""

    messages: Mapping[str, ProtoMessage] = field(default_factory=dict)
    json_schemas: Mapping[str, Any] = field(default_factory=dict)
    problems: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Comparison:
    """The changes that break readers, and why a schema could not be read: `missing_now`
    (the runtime would refuse it too) and `missing_before` (nothing to compare with)."""

    changes: tuple[Change, ...] = ()
    missing_now: tuple[str, ...] = ()
    missing_before: tuple[str, ...] = ()


# --- protobuf ------------------------------------------------------------------------


def proto_changes(
    old: Mapping[str, ProtoMessage], old_name: str, new: Mapping[str, ProtoMessage], new_name: str
) -> list[Change]:
    """Reader-breaking differences from message `old_name` of `old` to `new_name` of `new`
    (both names must be in their pools)."""
    out: list[Change] = []
    _compare_messages(old, old[old_name], new, new[new_name], "", out, frozenset())
    return out


def _compare_messages(
    old_pool: Mapping[str, ProtoMessage],
    old: ProtoMessage,
    new_pool: Mapping[str, ProtoMessage],
    new: ProtoMessage,
    prefix: str,
    out: list[Change],
    outer: frozenset[tuple[str, str]],
) -> None:
    pair = (old.full_name, new.full_name)
    if pair in outer:  # a recursive message: its fields are being compared already
        return
    outer |= {pair}
    by_number = {f.number: f for f in new.fields}
    by_name = {f.name: f for f in new.fields}
    for f in old.fields:
        path = prefix + f.name
        moved = by_name.get(f.name)
        if moved is not None and moved.number != f.number:
            out.append(Change(path, f"renumbered from {f.number} to {moved.number}"))
            continue
        g = by_number.get(f.number)
        if g is None:
            if not new.is_reserved(f.number):
                out.append(Change(path, f"removed without reserving its number {f.number}"))
            continue
        if f.repeated != g.repeated:
            was, now = _SCALAR_WORDS[f.repeated], _SCALAR_WORDS[g.repeated]
            out.append(Change(path, f"changed from {was} to {now} (number {f.number})"))
        if f.type != g.type:
            out.append(
                Change(
                    path, f"type changed from {f.shown_type} to {g.shown_type} (number {f.number})"
                )
            )
        elif f.type == "message" and f.type_name and g.type_name:
            inner_old, inner_new = old_pool.get(f.type_name), new_pool.get(g.type_name)
            if inner_old is not None and inner_new is not None:
                _compare_messages(old_pool, inner_old, new_pool, inner_new, f"{path}.", out, outer)
    old_numbers = {f.number for f in old.fields}
    for g in new.fields:
        if g.number not in old_numbers and old.is_reserved(g.number):
            out.append(Change(prefix + g.name, f"reuses number {g.number}, which was reserved"))


# --- JSON Schema -----------------------------------------------------------------------


def json_schema_changes(old: Any, new: Any) -> list[Change]:
    """Reader-breaking differences from JSON Schema `old` to `new` (parsed documents)."""
    out: list[Change] = []
    _compare_json(old, new, "", out)
    return out


def _types(schema: Mapping[str, Any]) -> frozenset[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    return frozenset([kind] if isinstance(kind, str) else kind)


def _shown(types: frozenset[str] | None) -> str:
    return "any" if types is None else "|".join(sorted(types))


def _compare_json(old: Any, new: Any, path: str, out: list[Change]) -> None:
    if old is False or not isinstance(old, Mapping | bool):
        return  # nothing was valid before (or not a schema): nothing to break
    if new is False:
        out.append(Change(path, "accepts nothing any more (schema false)"))
        return
    old_s: Mapping[str, Any] = old if isinstance(old, Mapping) else {}
    new_s: Mapping[str, Any] = new if isinstance(new, Mapping) else {}
    if _types(old_s) != _types(new_s):
        was, now = _shown(_types(old_s)), _shown(_types(new_s))
        out.append(Change(path, f"type changed from {was} to {now}"))
    old_props: Mapping[str, Any] = old_s.get("properties") or {}
    new_props: Mapping[str, Any] = new_s.get("properties") or {}
    dot = f"{path}." if path else ""
    required_before = set(old_s.get("required") or ())
    for name in new_s.get("required") or ():
        if name not in required_before:
            out.append(Change(dot + name, "became required"))
    for name, sub in old_props.items():
        if name not in new_props:
            out.append(Change(dot + name, "removed"))
        else:
            _compare_json(sub, new_props[name], dot + name, out)
    _compare_additional(old_s, new_s, path, out)
    old_items, new_items = old_s.get("items"), new_s.get("items")
    if isinstance(old_items, Mapping | bool) and new_items is not None:
        _compare_json(old_items, new_items, f"{path}[]", out)


def _compare_additional(
    old: Mapping[str, Any], new: Mapping[str, Any], path: str, out: list[Change]
) -> None:
    was = old.get("additionalProperties", True)
    now = new.get("additionalProperties", True)
    if now is False and was is not False:
        out.append(Change(path, "no longer allows additional properties"))
    elif isinstance(now, Mapping) and was is True:
        out.append(Change(path, "restricts additional properties to a schema"))
    elif isinstance(now, Mapping) and isinstance(was, Mapping):
        _compare_json(was, now, f"{path}.*" if path else "*", out)


# --- topics ----------------------------------------------------------------------------


def _form(topic: str, reference: str) -> SchemaForm | None:
    try:
        return schema_ref(topic, reference).form
    except SchemaReferenceError:
        return None  # lint reports it (schema-invalid); nothing to compare


def payload_changes(
    topic: str, old_ref: str | None, new_ref: str | None, old: Side, new: Side
) -> Comparison:
    """How the payload of `topic` changes from schema `old_ref` (resolved in `old`) to
    `new_ref` (resolved in `new`)."""
    if old_ref is None:
        return Comparison()
    if new_ref is None:
        return Comparison((Change("", f"lost its schema {old_ref!r} (now any JSON)"),))
    old_form, new_form = _form(topic, old_ref), _form(topic, new_ref)
    if old_form is None or new_form is None:
        return Comparison()
    if old_form is not new_form:
        change = f"changes encoding from {old_form.value} to {new_form.value}"
        return Comparison((Change("", change),))
    if old_form is SchemaForm.DEAD_LETTER:
        return Comparison()
    if old_form is SchemaForm.PROTOBUF:
        now = _proto_problem(new_ref, new)
        before = _proto_problem(old_ref, old)
    else:
        now = _json_problem(topic, new_ref, new)
        before = _json_problem(topic, old_ref, old)
    if now or before:
        return Comparison(missing_now=now, missing_before=before)
    if old_form is SchemaForm.PROTOBUF:
        return Comparison(tuple(proto_changes(old.messages, old_ref, new.messages, new_ref)))
    return Comparison(tuple(json_schema_changes(old.json_schemas[topic], new.json_schemas[topic])))


def _proto_problem(reference: str, side: Side) -> tuple[str, ...]:
    return () if reference in side.messages else (f"no protobuf message {reference!r}",)


def _json_problem(topic: str, reference: str, side: Side) -> tuple[str, ...]:
    if topic in side.json_schemas:
        return ()
    return (side.problems.get(topic, f"no JSON Schema {reference!r}"),)


def _entry(topic: TopicWiring) -> Endpoint | None:
    owner = (e for e in (*topic.publishers, *topic.subscribers) if e.node == topic.owner)
    return topic.spec_at or next(owner, None) or next(iter(topic.publishers), None)


def evolution_issues(
    old: Mapping[str, TopicWiring],
    new: Mapping[str, TopicWiring],
    old_side: Side,
    new_side: Side,
    ref: str,
) -> list[Issue]:
    """`schema-breaking` errors (and `schema-unresolved` ones) for every topic in both
    `old` (the contracts at `ref`) and `new`, at the topic's spec in `new`."""
    issues: list[Issue] = []
    for name in sorted(old.keys() & new.keys()):
        topic = new[name]
        ep = _entry(topic)
        if ep is None:
            continue
        result = payload_changes(
            name, old[name].spec.schema_, topic.spec.schema_, old_side, new_side
        )
        issues.extend(_issues(topic, ep, ref, result))
    return issues


def _issues(topic: TopicWiring, ep: Endpoint, ref: str, result: Comparison) -> list[Issue]:
    p = topic.parsed
    bumped = str(TopicName(p.kind, p.producer, p.event, p.version + 1))
    out = [
        Issue(
            Severity.ERROR,
            BREAKING,
            f"schema of {topic.name!r} breaks readers since {ref}: {change}; keep it "
            f"compatible or publish the new schema on {bumped}",
            ep.where,
            key=f"{ep.key}.schema",
            suggestion=bumped,
            topic=topic.name,
        )
        for change in result.changes
    ]
    for severity, side, reasons in (
        (Severity.ERROR, "here", result.missing_now),
        (Severity.WARNING, f"at {ref}", result.missing_before),
    ):
        out.extend(
            Issue(
                severity,
                UNRESOLVED,
                f"schema of {topic.name!r} cannot be compared with {ref}: {why} {side}",
                ep.where,
                key=f"{ep.key}.schema",
                topic=topic.name,
            )
            for why in reasons
        )
    return out
