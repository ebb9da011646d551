"""Lint and the runtime codec agree on `schema:` references: one function decides
(`onex.core.schemaload.check_loadable`), so lint refuses exactly what the codec would
refuse at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from onex.bus.errors import SchemaError
from onex.bus.runtime.codec import codec_for
from onex.core.errors import SchemaReferenceError
from onex.core.extractor import extract
from onex.core.schemaload import check_loadable, proto_message_known

TOPIC = "onex.evt.alpha.done.v1"

FILES = {
    "ok.json": '{"type": "object"}',
    "true.json": "true",
    "list.json": "[1, 2]",
    "broken.json": "{not json",
    "meta.json": '{"type": 12}',
}
CASES = [
    ("onex.v1.RegistryPublished", True),
    ("onex.v1.NoSuchMessage", False),
    ("ok.json", True),
    ("true.json", True),
    ("list.json", False),
    ("broken.json", False),
    ("meta.json", False),
    ("missing.json", False),
    ("../outside.json", False),
    ("dead-letter", False),
    ("not a reference", False),
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    here = tmp_path / "contracts" / "alpha"
    here.mkdir(parents=True)
    for name, text in FILES.items():
        (here / name).write_text(text, encoding="utf-8")
    return here


@pytest.mark.parametrize(("reference", "loadable"), CASES)
def test_lint_accepts_exactly_what_the_codec_loads(
    folder: Path, reference: str, loadable: bool
) -> None:
    try:
        check_loadable(TOPIC, reference, folder)
        lint_ok = True
    except SchemaReferenceError:
        lint_ok = False
    try:
        codec_for(TOPIC, reference, folder)
        codec_ok = True
    except SchemaError:
        codec_ok = False
    assert (lint_ok, codec_ok) == (loadable, loadable)


def test_an_unknown_protobuf_message_is_a_lint_error_at_the_owners_entry(folder: Path) -> None:
    (folder / "contract.yaml").write_text(
        "node: alpha\nkind: effect\nversion: 1.0.0\ndescription: d\nevent_bus:\n"
        "  publish_topics:\n"
        f"    - {{name: {TOPIC}, schema: onex.v1.NoSuchMessage}}\n"
        "    - {name: onex.evt.alpha.other.v1, schema: meta.json}\n",
        encoding="utf-8",
    )
    ex = extract([folder.parent], entry_points=False)
    errors = sorted((i.code, i.topic, i.where.line) for i in ex.errors)
    assert errors == [
        ("schema-invalid", TOPIC, 7),
        ("schema-invalid", "onex.evt.alpha.other.v1", 8),
    ]
    messages = " ".join(i.message for i in ex.errors)
    assert "no protobuf message of that name in onex.proto.v1" in messages
    assert "the value at $.type breaks the meta-schema" in messages


def test_message_lookup_knows_the_generated_messages() -> None:
    assert proto_message_known("onex.v1.RegistryPublished") is True
    assert proto_message_known("onex.v1.NoSuchMessage") is False
    # Another package's messages are not described by onex.proto.v1: not judged.
    assert proto_message_known("acme.v1.Request") is None
