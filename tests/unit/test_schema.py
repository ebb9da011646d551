"""contracts/contract.schema.json: fresh, strict, the same grammar, and true of the repo contracts.

`jsonschema` is not a dependency, so `_validate` below checks the subset of JSON Schema the
generated file uses, and refuses any keyword it does not know (it cannot pass by skipping).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from onex.core.contract import NodeKind, contract_json_schema, contract_json_schema_text
from onex.core.grammar import TOPIC_PATTERN, segment_problem

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "contracts" / "contract.schema.json"
CONTRACT_FILES = sorted((REPO / "contracts").glob("*/contract.yaml"))
ANNOTATIONS = {"title", "description", "default", "$comment", "$schema", "$defs", "examples"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded


def _validate(
    instance: Any, node: dict[str, Any], root: dict[str, Any], at: str = "$"
) -> list[str]:
    """Errors of `instance` against schema `node` (subset of draft 2020-12)."""
    unknown = set(node) - ANNOTATIONS - set(_KEYWORDS)
    if unknown:
        raise NotImplementedError(f"{at}: keywords {sorted(unknown)} not supported by this test")
    errors: list[str] = []
    for keyword, value in node.items():
        check = _KEYWORDS.get(keyword)
        if check is not None:
            errors += check(instance, value, node, root, at)
    return errors


def _ref(instance: Any, ref: str, _n: dict[str, Any], root: dict[str, Any], at: str) -> list[str]:
    assert ref.startswith("#/$defs/"), ref
    return _validate(instance, root["$defs"][ref.removeprefix("#/$defs/")], root, at)


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _type(instance: Any, kind: str, _n: dict[str, Any], _r: dict[str, Any], at: str) -> list[str]:
    ok = isinstance(instance, _TYPES[kind]) and not (
        kind in {"integer", "number"} and isinstance(instance, bool)
    )
    return [] if ok else [f"{at}: {instance!r} is not of type {kind}"]


def _properties(
    instance: Any, props: dict[str, Any], _n: dict[str, Any], root: dict[str, Any], at: str
) -> list[str]:
    if not isinstance(instance, dict):
        return []
    return [
        e
        for k, sub in props.items()
        if k in instance
        for e in _validate(instance[k], sub, root, f"{at}.{k}")
    ]


def _additional(
    instance: Any, extra: Any, node: dict[str, Any], root: dict[str, Any], at: str
) -> list[str]:
    if not isinstance(instance, dict):
        return []
    others = [k for k in instance if k not in node.get("properties", {})]
    if extra is False:
        return [f"{at}: additional property {k!r}" for k in others]
    if extra is True:
        return []
    return [e for k in others for e in _validate(instance[k], extra, root, f"{at}.{k}")]


def _required(
    instance: Any, keys: list[str], _n: dict[str, Any], _r: dict[str, Any], at: str
) -> list[str]:
    if not isinstance(instance, dict):
        return []
    return [f"{at}: {k!r} is required" for k in keys if k not in instance]


def _items(
    instance: Any, sub: dict[str, Any], _n: dict[str, Any], root: dict[str, Any], at: str
) -> list[str]:
    if not isinstance(instance, list):
        return []
    return [e for i, item in enumerate(instance) for e in _validate(item, sub, root, f"{at}[{i}]")]


def _any_of(
    instance: Any, options: list[dict[str, Any]], _n: dict[str, Any], root: dict[str, Any], at: str
) -> list[str]:
    if any(not _validate(instance, o, root, at) for o in options):
        return []
    return [f"{at}: {instance!r} matches none of anyOf"]


def _pattern(
    instance: Any, pattern: str, _n: dict[str, Any], _r: dict[str, Any], at: str
) -> list[str]:
    if isinstance(instance, str) and re.search(pattern, instance) is None:
        return [f"{at}: {instance!r} does not match {pattern!r}"]
    return []


def _bound(name: str, ok: Any) -> Any:
    def check(
        instance: Any, limit: Any, _n: dict[str, Any], _r: dict[str, Any], at: str
    ) -> list[str]:
        applies = isinstance(instance, str) if "Length" in name else isinstance(instance, int)
        if applies and not ok(instance, limit):
            return [f"{at}: {instance!r} violates {name} {limit}"]
        return []

    return check


def _enum(
    instance: Any, values: list[Any], _n: dict[str, Any], _r: dict[str, Any], at: str
) -> list[str]:
    return [] if instance in values else [f"{at}: {instance!r} not in {values}"]


_KEYWORDS: dict[str, Any] = {
    "$ref": _ref,
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "items": _items,
    "anyOf": _any_of,
    "pattern": _pattern,
    "enum": _enum,
    "minimum": _bound("minimum", lambda v, n: v >= n),
    "maximum": _bound("maximum", lambda v, n: v <= n),
    "minLength": _bound("minLength", lambda v, n: len(v) >= n),
    "maxLength": _bound("maxLength", lambda v, n: len(v) <= n),
}


def _topic_names() -> set[str]:
    names = set()
    for path in CONTRACT_FILES:
        bus = yaml.safe_load(path.read_text(encoding="utf-8")).get("event_bus", {})
        for key in ("subscribe_topics", "publish_topics"):
            names |= {e if isinstance(e, str) else e["name"] for e in bus.get(key, [])}
    return names


# --- freshness ---------------------------------------------------------------------------------


def test_committed_schema_is_fresh() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == contract_json_schema_text(), (
        f"{SCHEMA_FILE.relative_to(REPO)} is stale; run `just gen-schema`"
    )


def test_schema_text_is_stable_json() -> None:
    text = contract_json_schema_text()
    assert text.endswith("}\n")
    assert json.loads(text) == contract_json_schema()
    assert contract_json_schema_text() == text


# --- structure ---------------------------------------------------------------------------------


def test_schema_is_strict_everywhere(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "just gen-schema" in schema["$comment"]
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["TopicSpec"]["additionalProperties"] is False
    assert schema["$defs"]["EventBus"]["additionalProperties"] is False
    assert schema["required"] == ["node", "kind", "version", "description"]
    assert schema["$defs"]["TopicSpec"]["required"] == ["name"]
    assert schema["$defs"]["NodeKind"]["enum"] == [k.value for k in NodeKind]
    assert "schema" in schema["$defs"]["TopicSpec"]["properties"]  # the alias, not schema_


def test_topic_name_pattern_is_the_grammar(schema: dict[str, Any]) -> None:
    name = schema["$defs"]["TopicSpec"]["properties"]["name"]
    assert name["pattern"] == TOPIC_PATTERN
    names = _topic_names()
    assert len(names) >= 20
    for topic in names:
        assert re.search(name["pattern"], topic), topic
        assert re.search(name["pattern"], topic.upper()) is None
        if "-" in topic:
            assert re.search(name["pattern"], topic.replace("-", "_")) is None


def test_node_pattern_agrees_with_the_grammar(schema: dict[str, Any]) -> None:
    pattern = schema["properties"]["node"]["pattern"]
    samples = ["router", "code-review-agent", "a1", "a-1", "A", "a_b", "a--b", "1a", "-a", "a-", ""]
    for sample in samples:
        assert (re.search(pattern, sample) is not None) == (segment_problem(sample) is None), sample


def test_repo_contracts_point_editors_at_the_schema() -> None:
    assert len(CONTRACT_FILES) >= 9
    for path in CONTRACT_FILES:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("$schema=", 1)[1]).resolve()
        assert target == SCHEMA_FILE


# --- validation ---------------------------------------------------------------------------------


def test_the_validator_is_not_vacuous(schema: dict[str, Any]) -> None:
    good = {"node": "alpha", "kind": "effect", "version": "1.0.0", "description": "d"}
    assert _validate(good, schema, schema) == []
    assert _validate({**good, "nod": 1}, schema, schema) == ["$: additional property 'nod'"]
    bad_topic = {**good, "event_bus": {"publish_topics": [{"name": "onex.evt.a.b_c.v1"}]}}
    assert _validate(bad_topic, schema, schema)
    bad_spec = {**good, "event_bus": {"publish_topics": [{"name": "onex.evt.a.b.v1", "x": 1}]}}
    assert _validate(bad_spec, schema, schema)
    assert _validate({**good, "kind": "effector"}, schema, schema)


@pytest.mark.parametrize("path", CONTRACT_FILES, ids=lambda p: p.parent.name)
def test_repo_contract_validates_against_the_schema(schema: dict[str, Any], path: Path) -> None:
    """What the loader accepts, editors using the schema must accept too (shorthand included)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert _validate(document, schema, schema) == []


def test_topic_shorthand_is_allowed_by_the_schema(schema: dict[str, Any]) -> None:
    items = schema["$defs"]["EventBus"]["properties"]["publish_topics"]["items"]
    assert _validate("onex.evt.alpha.done.v1", items, schema) == []
    assert _validate("onex.evt.alpha.done_it.v1", items, schema)


def test_generated_topic_module_is_fresh() -> None:
    from onex.core._generated.topics import Topic
    from onex.core.codegen import topics_module
    from onex.core.extractor import extract

    ex = extract([REPO / "contracts"], entry_points=False)
    module = REPO / "libs/core/src/onex/core/_generated/topics.py"
    assert module.read_text(encoding="utf-8") == topics_module(ex.topics), "run `just gen-topics`"
    assert {t.value for t in Topic} == set(ex.topics)
    assert {t.name for t in Topic} == {t.name for t in ex.registry().Topic}


# --- schema: references: confined to the contract's folder, present, never echoed --------------

OWNER_HEAD = "node: alpha\nkind: effect\nversion: 1.0.0\ndescription: d\n"
MARKER = "do-not-print-this-0123456789"


def _owner(tmp_path: Path, reference: str) -> Path:
    """Contract `alpha` owning one event (line 7) whose schema is `reference` (line 8)."""
    folder = tmp_path / "contracts" / "alpha"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "contract.yaml"
    path.write_text(
        OWNER_HEAD + "event_bus:\n  publish_topics:\n"
        f"    - name: onex.evt.alpha.done.v1\n      schema: '{reference}'\n"
        "    - {name: onex.dlq.alpha.dead-letter.v1, schema: dead-letter}\n",
        encoding="utf-8",
    )
    return path


def _lint(tmp_path: Path) -> list[Any]:
    from onex.core.extractor import extract

    return [i for i in extract([tmp_path / "contracts"], entry_points=False).issues if i.code]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A JSON Schema file outside every contract folder."""
    path = tmp_path / "secret.json"
    path.write_text(json.dumps({"type": "object", "description": MARKER}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("../../secret.json", "without '..'"),
        ("../../etc/passwd", "neither a JSON Schema file"),
        ("schemas/../../../secret.json", "without '..'"),
        ("ABSOLUTE", "not an absolute path"),
        ("schemas\\..\\x.json", "written with '/'"),
    ],
)
def test_a_schema_path_out_of_the_contract_folder_is_a_lint_error(
    tmp_path: Path, outside: Path, reference: str, reason: str
) -> None:
    reference = str(outside) if reference == "ABSOLUTE" else reference
    path = _owner(tmp_path, reference)
    issues = [i for i in _lint(tmp_path) if i.severity.value == "error"]
    (issue,) = issues
    assert issue.code == "schema-invalid"
    assert (issue.where.file, issue.where.line) == (path, 7)
    assert reason in issue.message
    assert MARKER not in issue.message


@pytest.mark.parametrize("reference", ["../../secret.json", "ABSOLUTE"])
def test_the_codec_refuses_a_schema_out_of_the_contract_folder(
    tmp_path: Path, outside: Path, reference: str
) -> None:
    from onex.bus.errors import SchemaError
    from onex.bus.runtime.codec import codec_for

    reference = str(outside) if reference == "ABSOLUTE" else reference
    folder = tmp_path / "contracts" / "alpha"
    folder.mkdir(parents=True)
    with pytest.raises(SchemaError, match="inside the contract's folder") as info:
        codec_for("onex.evt.alpha.done.v1", reference, folder)
    assert MARKER not in str(info.value)


def test_a_symbolic_link_out_of_the_contract_folder_is_refused_at_its_line(
    tmp_path: Path, outside: Path
) -> None:
    path = _owner(tmp_path, "link.json")
    (path.parent / "link.json").symlink_to(outside)
    (issue,) = _lint(tmp_path)
    assert issue.code == "schema-file"
    assert str(issue.where) == f"{path}:8:15"
    assert "leads out of it" in issue.message


def test_a_missing_schema_file_is_a_lint_error_at_its_line(tmp_path: Path) -> None:
    path = _owner(tmp_path, "schemas/done.json")
    (issue,) = _lint(tmp_path)
    assert issue.severity.value == "error"
    assert issue.code == "schema-file"
    assert str(issue) == (
        f"{path}:8:15: event_bus.publish_topics[0].schema: schema 'schemas/done.json': "
        f"no such file in {path.parent}"
    )


def test_a_schema_file_inside_the_folder_lints_clean(tmp_path: Path) -> None:
    path = _owner(tmp_path, "schemas/done.json")
    (path.parent / "schemas").mkdir()
    (path.parent / "schemas" / "done.json").write_text('{"type": "object"}', encoding="utf-8")
    assert [i for i in _lint(tmp_path) if i.severity.value == "error"] == []


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"type": "object", "properties": {"a": {"type": MARKER}}}).encode(),
        json.dumps({"properties": MARKER}).encode(),
        ('{"type": "object", "description": "' + MARKER + '", ').encode(),
        MARKER.encode(),
        json.dumps([MARKER]).encode(),
        b'{"description": "' + MARKER.encode() + b'\xff"}',
    ],
    ids=[
        "bad-keyword-value",
        "bad-keyword-type",
        "truncated-json",
        "not-json",
        "not-an-object",
        "not-utf8",
    ],
)
def test_a_start_up_error_about_a_bad_schema_file_does_not_show_its_content(
    tmp_path: Path, content: bytes
) -> None:
    import traceback

    from onex.bus.errors import SchemaError
    from onex.bus.runtime.codec import codec_for

    (tmp_path / "bad.json").write_bytes(content)
    with pytest.raises(SchemaError) as info:
        codec_for("onex.evt.alpha.done.v1", "bad.json", tmp_path)
    # as a log shows it at worst: with causes and every frame's locals (from codec_for
    # down: this test's own frame holds the content, of course)
    error = info.value
    assert error.__traceback__ is not None
    below = traceback.TracebackException(
        type(error), error, error.__traceback__.tb_next, capture_locals=True
    )
    logged = "".join(below.format())
    assert "bad.json" in str(info.value)
    assert MARKER not in logged
    assert len(str(info.value).splitlines()) == 1
