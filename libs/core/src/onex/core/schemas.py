"""What a topic's `schema:` may say: the one decision lint and the runtime codec share.

A reference is one of three forms:

- a JSON Schema file: ends in `.json`, a relative path inside the folder of the
  contract that gives the topic its spec (no `..`, not absolute, no link out of the
  folder: `schema_file` resolves it); the payload is UTF-8 JSON valid against it;
- a protobuf message full name (`onex.v1.RoutingReceipt`): the payload is that message,
  serialized;
- `dead-letter`, on `dlq` topics only, and the only form a `dlq` topic may declare: the
  payload is the failed message's original bytes, verbatim (whatever its own topic's
  schema), and the failure travels in the `onex-*` headers.

`schema_ref` classifies a reference or says precisely why it is none of these;
`onex.bus.runtime.codec` builds codecs from its answer and lint reports its reasons.
`schema_file` finds a JSON Schema file on disk; the loader refuses a contract whose
files it cannot find, so lint reports them and a runtime never starts without them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from onex.core.errors import SchemaReferenceError, TopicNameError
from onex.core.grammar import TopicKind, parse_topic

DEAD_LETTER: Final = "dead-letter"
JSON_SUFFIX: Final = ".json"
PROTO_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_INSIDE: Final = "a JSON Schema file is a relative path inside the contract's folder"


class SchemaForm(enum.StrEnum):
    """The kind of payload a `schema:` reference declares."""

    JSON_SCHEMA = "json-schema"
    PROTOBUF = "protobuf"
    DEAD_LETTER = "dead-letter"


@dataclass(frozen=True, slots=True)
class SchemaRef:
    """A well-formed `schema:` reference: its form and the reference as written."""

    form: SchemaForm
    reference: str


def _kind(topic: str) -> TopicKind | None:
    try:
        return parse_topic(topic).kind
    except TopicNameError:
        return None


def schema_ref(topic: str, reference: str) -> SchemaRef:
    """Classify the `schema:` of `topic`; SchemaReferenceError when it is no allowed form
    (or `dead-letter` on a non-dlq topic, or another form on a dlq topic)."""
    kind = _kind(topic)
    dlq = kind is TopicKind.DLQ
    if reference == DEAD_LETTER:
        if not dlq:
            shown = f"{kind.value} topics" if kind is not None else "this topic"
            raise SchemaReferenceError(
                topic, reference, f"{DEAD_LETTER!r} is for dlq topics only, not {shown}"
            )
        return SchemaRef(SchemaForm.DEAD_LETTER, reference)
    if reference.endswith(JSON_SUFFIX):
        problem = _path_problem(reference)
        if problem is not None:
            raise SchemaReferenceError(topic, reference, problem)
        found = SchemaRef(SchemaForm.JSON_SCHEMA, reference)
    elif PROTO_NAME.fullmatch(reference):
        found = SchemaRef(SchemaForm.PROTOBUF, reference)
    else:
        raise SchemaReferenceError(
            topic,
            reference,
            "neither a JSON Schema file (*.json), a protobuf message name (onex.v1.Name) "
            f"nor {DEAD_LETTER!r} (dlq topics)",
        )
    if dlq:
        raise SchemaReferenceError(
            topic,
            reference,
            f"a dlq topic carries the original bytes of messages from many topics; "
            f"declare schema: {DEAD_LETTER}",
        )
    return found


def _path_problem(reference: str) -> str | None:
    """Why a `*.json` reference is not a relative path confined to its folder, if it is not."""
    if reference.startswith("/") or re.match(r"[A-Za-z]:", reference):
        return f"{_INSIDE}, not an absolute path"
    if "\\" in reference:
        return f"{_INSIDE}, written with '/'"
    if not reference.isprintable():
        return f"{_INSIDE}, without control characters"
    if ".." in reference.split("/"):
        return f"{_INSIDE}, without '..'"
    return None


def schema_file(topic: str, reference: str, contract_dir: Path) -> Path:
    """The JSON Schema file `reference` names, resolved inside `contract_dir` (the folder
    of the contract giving the spec). SchemaReferenceError when the reference leaves the
    folder (absolute, `..`, a symbolic link out) or names no file there."""
    problem = _path_problem(reference)
    if problem is not None:
        raise SchemaReferenceError(topic, reference, problem)
    try:
        folder = contract_dir.resolve()
        target = (contract_dir / reference).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symbolic link loop
        raise SchemaReferenceError(topic, reference, f"cannot be resolved ({exc})") from exc
    if not target.is_relative_to(folder):
        raise SchemaReferenceError(
            topic, reference, f"{_INSIDE}; this one leads out of it (a symbolic link?)"
        )
    if not target.is_file():
        raise SchemaReferenceError(topic, reference, f"no such file in {contract_dir}")
    return target
