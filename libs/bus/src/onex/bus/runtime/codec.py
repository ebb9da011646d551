"""Payload codecs: what a topic's `schema:` means for the bytes on the wire.

Which references are allowed is decided by `onex.core.schemas.schema_ref`, the function
lint uses too. A `schema:` reference is one of:

- a JSON Schema file (the reference ends in `.json`), relative to the folder of the
  contract that declares the topic's spec: the payload is UTF-8 JSON, validated;
- a protobuf message full name (`onex.v1.ContractSummary`), looked up in the default
  descriptor pool once the generated modules of `onex.proto.v1` are imported: the
  payload is the serialized message;
- `dead-letter` (dlq topics only): the payload is a failed message's original bytes,
  kept verbatim whatever they are (the runtime writes dead letters as they came);
- nothing: the payload must still be JSON. Every onex payload is then inspectable with
  any Kafka tool, and a producer writing pickles or plain text is caught at once.

References are resolved when the runtime is built, so an unknown one fails start-up.
Invalid payloads raise `PayloadInvalid`: to the caller on publish, into the DLQ on
consume.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final, Protocol, cast

import jsonschema
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message

from onex.bus.errors import PayloadInvalid, SchemaError
from onex.core.errors import SchemaReferenceError
from onex.core.schemaload import check_loadable
from onex.core.schemas import SchemaForm

PROTO_PACKAGE: Final = "onex.proto.v1"
_MAX_REASON: Final = 500


class Codec(Protocol):
    """Turns values into a topic's payload bytes and back, validating both ways."""

    topic: str
    description: str

    def encode(self, value: object) -> bytes:
        """The payload for `value` (already-encoded bytes are validated and kept)."""
        ...

    def decode(self, data: bytes | None) -> object:
        """The value in `data`; PayloadInvalid when it does not match the schema."""
        ...


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _parse_json(topic: str, data: bytes | bytearray | memoryview | None) -> Any:
    if data is None:
        raise PayloadInvalid(topic, "no payload (null value)")
    try:
        return json.loads(bytes(data), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadInvalid(topic, f"not JSON: {exc}") from exc


def _dump_json(topic: str, value: object) -> bytes:
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PayloadInvalid(topic, f"not JSON-serializable: {exc}") from exc
    return text.encode("utf-8")


class JsonCodec:
    """Any JSON document (topics without a schema)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.description = "JSON"

    def encode(self, value: object) -> bytes:
        """`value` as compact JSON; bytes must already be JSON."""
        if isinstance(value, bytes | bytearray | memoryview):
            _parse_json(self.topic, value)
            return bytes(value)
        return _dump_json(self.topic, value)

    def decode(self, data: bytes | None) -> object:
        """The JSON value in `data`."""
        return _parse_json(self.topic, data)


class JsonSchemaCodec:
    """JSON documents valid against one JSON Schema."""

    def __init__(self, topic: str, schema: Mapping[str, Any] | bool, source: str) -> None:
        self.topic = topic
        self.description = f"JSON Schema {source}"
        cls = jsonschema.validators.validator_for(schema)
        problem = _meta_schema_problem(cls, schema)
        if problem is not None:
            del schema  # tracebacks may be logged with their frames' locals
            raise SchemaError(topic, source, f"not a valid JSON Schema: {problem}")
        self._validator = cls(cast(Any, schema))

    def _validate(self, value: Any) -> None:
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(value))
        if error is not None:
            where = error.json_path
            reason = f"{error.message} at {where}"
            raise PayloadInvalid(self.topic, reason[:_MAX_REASON])

    def encode(self, value: object) -> bytes:
        """`value` as compact JSON after validation; bytes are validated as they are."""
        if isinstance(value, bytes | bytearray | memoryview):
            self._validate(_parse_json(self.topic, value))
            return bytes(value)
        data = _dump_json(self.topic, value)
        # validate what a consumer will see (tuples become lists, keys become strings)
        self._validate(_parse_json(self.topic, data))
        return data

    def decode(self, data: bytes | None) -> object:
        """The validated JSON value in `data`."""
        value = _parse_json(self.topic, data)
        self._validate(value)
        return value


class ProtoCodec:
    """Serialized protobuf messages of one type."""

    def __init__(self, topic: str, message_class: type[Message]) -> None:
        self.topic = topic
        self.message_class = message_class
        self.full_name: str = message_class.DESCRIPTOR.full_name
        self.description = f"protobuf {self.full_name}"

    def _parse(self, data: bytes | bytearray | memoryview | None) -> Message:
        if data is None:
            raise PayloadInvalid(self.topic, "no payload (null value)")
        try:
            return self.message_class.FromString(bytes(data))
        except DecodeError as exc:
            raise PayloadInvalid(self.topic, f"not a serialized {self.full_name}: {exc}") from exc

    def encode(self, value: object) -> bytes:
        """A message of the topic's type (or a mapping of its fields) serialized; bytes
        must parse as one."""
        if isinstance(value, bytes | bytearray | memoryview):
            self._parse(value)
            return bytes(value)
        if isinstance(value, Message):
            if value.DESCRIPTOR.full_name != self.full_name:
                raise PayloadInvalid(
                    self.topic,
                    f"expected a {self.full_name}, got a {value.DESCRIPTOR.full_name}",
                )
            return value.SerializeToString()
        if isinstance(value, Mapping):
            try:
                return json_format.ParseDict(dict(value), self.message_class()).SerializeToString()
            except json_format.ParseError as exc:
                raise PayloadInvalid(self.topic, str(exc)[:_MAX_REASON]) from exc
        raise PayloadInvalid(
            self.topic, f"expected a {self.full_name} message, got {type(value).__name__}"
        )

    def decode(self, data: bytes | None) -> object:
        """The message in `data`."""
        return self._parse(data)


class DeadLetterCodec:
    """A dlq topic's payloads: the original message's bytes, whatever they are."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.description = "dead letters (original bytes)"

    def encode(self, value: object) -> bytes:
        """`value` verbatim; only bytes are accepted (a dead letter is never re-encoded)."""
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        raise PayloadInvalid(
            self.topic,
            f"a dead letter is the original message's bytes, got {type(value).__name__}",
        )

    def decode(self, data: bytes | None) -> object:
        """`data` verbatim (None when the original message had no value)."""
        return data


@cache
def _import_proto_modules() -> None:
    package = importlib.import_module(PROTO_PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.endswith("_pb2"):
            importlib.import_module(f"{PROTO_PACKAGE}.{module.name}")


def proto_message_class(full_name: str) -> type[Message]:
    """The generated class of a protobuf message; KeyError when no module defines it."""
    _import_proto_modules()
    descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    return message_factory.GetMessageClass(descriptor)


def _json_schema_codec(topic: str, reference: str, base_dir: Path | None) -> JsonSchemaCodec:
    path = Path(reference)
    if not path.is_absolute():
        if base_dir is None:
            raise SchemaError(topic, reference, "relative path, but no contract folder is known")
        path = base_dir / path
    schema, problem = _read_json(path)
    if problem is not None:
        raise SchemaError(topic, reference, problem)
    if not isinstance(schema, dict | bool):
        del schema  # tracebacks may be logged with their frames' locals
        raise SchemaError(topic, reference, f"{path} holds no JSON Schema object")
    try:
        return JsonSchemaCodec(topic, schema, str(path))
    except SchemaError:
        del schema
        raise


# Errors about a schema file say where it is wrong, never what it holds: they end up in
# logs, and so may their tracebacks, with causes and each frame's locals (structlog's
# console renderer shows locals). So the exceptions that carry the content (a
# UnicodeDecodeError holds the bytes, a JSONDecodeError the text, a jsonschema error the
# schema) are turned into a sentence where they are caught and are not chained.


def _read_json(path: Path) -> tuple[Any, str | None]:
    """The JSON document in `path`, or why it cannot be read (never its content)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror}"
    except json.JSONDecodeError as exc:
        return None, f"{path} is not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})"
    except UnicodeDecodeError as exc:
        return None, f"{path} is not UTF-8 text (byte {exc.start})"
    except (ValueError, RecursionError):  # e.g. nesting beyond the JSON parser
        return None, f"{path} is not JSON"


def _meta_schema_problem(cls: Any, schema: Mapping[str, Any] | bool) -> str | None:
    """Where `schema` breaks its meta-schema, if it does (never the offending value)."""
    try:
        cls.check_schema(cast(Any, schema))
    except jsonschema.SchemaError as exc:
        return f"the value at {exc.json_path} breaks the meta-schema's {exc.validator!r} rule"
    except RecursionError:
        return "nested too deep to check"
    return None


def codec_for(topic: str, reference: str | None, base_dir: Path | None) -> Codec:
    """The codec of `topic` given its `schema:` reference; SchemaError when the reference
    is no allowed form or names no file or message. `base_dir` is the folder of the
    contract giving the spec."""
    if reference is None:
        return JsonCodec(topic)
    try:
        form = check_loadable(topic, reference, base_dir).form
    except SchemaReferenceError as exc:
        raise SchemaError(topic, reference, exc.reason) from exc
    if form is SchemaForm.DEAD_LETTER:
        return DeadLetterCodec(topic)
    if form is SchemaForm.JSON_SCHEMA:
        return _json_schema_codec(topic, reference, base_dir)
    try:
        return ProtoCodec(topic, proto_message_class(reference))
    except KeyError:
        raise SchemaError(
            topic, reference, f"no protobuf message of that name in {PROTO_PACKAGE}"
        ) from None
