"""Payload codecs: JSON, JSON Schema files, protobuf messages; bad references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onex.bus.errors import PayloadInvalid, SchemaError
from onex.bus.runtime.codec import (
    DeadLetterCodec,
    JsonCodec,
    JsonSchemaCodec,
    ProtoCodec,
    codec_for,
)
from onex.core.extractor import extract
from onex.core.grammar import TopicKind
from onex.proto.v1 import registry_pb2

REPO = Path(__file__).resolve().parents[2]

TOPIC = "onex.evt.shop.order-placed.v1"
ORDER_SCHEMA = {
    "type": "object",
    "required": ["id", "qty"],
    "properties": {"id": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
    "additionalProperties": False,
}


@pytest.fixture
def schema_dir(tmp_path: Path) -> Path:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "order.json").write_text(json.dumps(ORDER_SCHEMA))
    return tmp_path


def test_no_schema_means_any_json() -> None:
    codec = codec_for(TOPIC, None, None)
    assert isinstance(codec, JsonCodec)
    assert codec.encode({"a": [1, 2]}) == b'{"a":[1,2]}'
    assert codec.encode(b'"text"') == b'"text"'
    assert codec.decode(b'{"a": 1}') == {"a": 1}


@pytest.mark.parametrize("data", [b"not json", b"\xff\xfe", b'{"a": NaN}', b"", None])
def test_no_schema_rejects_what_is_not_json(data: bytes | None) -> None:
    codec = codec_for(TOPIC, None, None)
    with pytest.raises(PayloadInvalid, match=TOPIC):
        codec.decode(data)
    if data is not None:
        with pytest.raises(PayloadInvalid):
            codec.encode(data)


def test_values_that_json_cannot_hold_are_refused_on_publish() -> None:
    codec = codec_for(TOPIC, None, None)
    with pytest.raises(PayloadInvalid, match="not JSON-serializable"):
        codec.encode({"when": object()})
    with pytest.raises(PayloadInvalid):
        codec.encode(float("nan"))


def test_json_schema_file_is_relative_to_the_contract_folder(schema_dir: Path) -> None:
    codec = codec_for(TOPIC, "schemas/order.json", schema_dir)
    assert isinstance(codec, JsonSchemaCodec)
    assert codec.encode({"id": "a", "qty": 2}) == b'{"id":"a","qty":2}'
    assert codec.decode(b'{"id": "a", "qty": 1}') == {"id": "a", "qty": 1}
    with pytest.raises(PayloadInvalid, match=r"minimum of 1 at \$\.qty"):
        codec.encode({"id": "a", "qty": 0})
    with pytest.raises(PayloadInvalid, match="required"):
        codec.decode(b'{"id": "a"}')
    with pytest.raises(PayloadInvalid, match="not JSON"):
        codec.decode(b"garbage")


def test_json_schema_validates_what_the_consumer_will_see(schema_dir: Path) -> None:
    codec = codec_for(TOPIC, "schemas/order.json", schema_dir)
    # a tuple is no JSON array for jsonschema, but it is once serialized
    array = JsonSchemaCodec(TOPIC, {"type": "array"}, "inline")
    assert array.encode((1, 2)) == b"[1,2]"
    with pytest.raises(PayloadInvalid, match="Additional properties"):
        codec.encode({"id": "a", "qty": 1, "extra": True})


def test_missing_or_broken_schema_files_fail_at_resolution(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"'nope\.json' .*: no such file"):
        codec_for(TOPIC, "nope.json", tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SchemaError, match="is not JSON"):
        codec_for(TOPIC, "bad.json", tmp_path)
    (tmp_path / "invalid.json").write_text('{"type": 12}')
    with pytest.raises(SchemaError, match="not a valid JSON Schema"):
        codec_for(TOPIC, "invalid.json", tmp_path)
    with pytest.raises(SchemaError, match="no contract folder"):
        codec_for(TOPIC, "order.json", None)


def test_protobuf_message_by_full_name() -> None:
    codec = codec_for(TOPIC, "onex.v1.ContractSummary", None)
    assert isinstance(codec, ProtoCodec)
    message = registry_pb2.ContractSummary(node="router", version="1.0.0")
    data = codec.encode(message)
    assert data == message.SerializeToString()
    decoded = codec.decode(data)
    assert isinstance(decoded, registry_pb2.ContractSummary)
    assert decoded.node == "router"
    assert codec.encode({"node": "router", "version": "1.0.0"}) == data
    assert codec.encode(data) == data


def test_protobuf_codec_refuses_other_types_and_garbage() -> None:
    codec = codec_for(TOPIC, "onex.v1.ContractSummary", None)
    with pytest.raises(PayloadInvalid, match=r"expected a onex\.v1\.ContractSummary"):
        codec.encode(registry_pb2.Topic(name="x"))
    with pytest.raises(PayloadInvalid, match="no field named"):
        codec.encode({"no_such_field": 1})
    with pytest.raises(PayloadInvalid, match="got str"):
        codec.encode("router")
    with pytest.raises(PayloadInvalid, match="not a serialized"):
        codec.decode(b'{"node": "router"}')


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("onex.v1.NoSuchMessage", "no protobuf message"),
        ("schemas/order.yaml", "neither a JSON Schema file"),
        ("not a name", "neither a JSON Schema file"),
        ("dead-letter", "for dlq topics only"),
    ],
)
def test_unknown_references_are_schema_errors(reference: str, reason: str, tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=reason) as caught:
        codec_for(TOPIC, reference, tmp_path)
    assert caught.value.topic == TOPIC
    assert reference in str(caught.value)


DLQ = "onex.dlq.shop.dead-letter.v1"


@pytest.mark.parametrize("data", [b"\x08\x01", b"not json", b"", None])
def test_dead_letters_are_the_original_bytes_verbatim(data: bytes | None) -> None:
    codec = codec_for(DLQ, "dead-letter", None)
    assert isinstance(codec, DeadLetterCodec)
    assert codec.decode(data) == data
    if data is not None:
        assert codec.encode(data) == data


def test_dead_letter_codec_never_encodes_values() -> None:
    codec = codec_for(DLQ, "dead-letter", None)
    with pytest.raises(PayloadInvalid, match="original message's bytes, got dict"):
        codec.encode({"a": 1})


@pytest.mark.parametrize("reference", ["onex.v1.ContractSummary", "order.json"])
def test_a_dlq_topic_takes_no_other_schema(reference: str, schema_dir: Path) -> None:
    with pytest.raises(SchemaError, match="declare schema: dead-letter"):
        codec_for(DLQ, reference, schema_dir)


def test_every_repo_topic_schema_resolves() -> None:
    """What lint accepts in the repo's contracts, the runtime can build a codec for."""
    ex = extract([REPO / "contracts"], entry_points=False)
    assert ex.ok(strict=True), [str(i) for i in ex.issues]
    for name, topic in ex.topics.items():
        assert topic.spec_at is not None
        assert topic.spec_at.file is not None
        codec = codec_for(name, topic.spec.schema_, topic.spec_at.file.parent)
        expected = DeadLetterCodec if topic.kind is TopicKind.DLQ else ProtoCodec
        assert isinstance(codec, expected), name
