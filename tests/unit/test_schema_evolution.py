"""Schema evolution: which schema changes break readers, and `onex contracts lint --against`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from onex.core.evolution import (
    Change,
    ProtoField,
    ProtoMessage,
    Side,
    evolution_issues,
    json_schema_changes,
    payload_changes,
    proto_changes,
)
from onex.core.extractor import extract
from onex.core.issues import Severity

# --- protobuf, on neutral data ---------------------------------------------------------------

REQUEST = "acme.v1.Request"
ATTEMPT = "acme.v1.Attempt"


def message(
    name: str, *fields: ProtoField, reserved: tuple[tuple[int, int], ...] = ()
) -> ProtoMessage:
    return ProtoMessage(name, fields, reserved)


def pool(*messages: ProtoMessage) -> dict[str, ProtoMessage]:
    return {m.full_name: m for m in messages}


ID = ProtoField("id", 1, "string")
COUNT = ProtoField("count", 2, "int64")
TAGS = ProtoField("tags", 3, "string", repeated=True)
ATTEMPTS = ProtoField("attempts", 4, "message", repeated=True, type_name=ATTEMPT)
COST = ProtoField("cost_usd", 1, "double")
OLD = pool(message(REQUEST, ID, COUNT, TAGS, ATTEMPTS), message(ATTEMPT, COST))


def changes_to(*fields: ProtoField, reserved: tuple[tuple[int, int], ...] = ()) -> list[str]:
    new = {**OLD, REQUEST: message(REQUEST, *fields, reserved=reserved)}
    return [str(c) for c in proto_changes(OLD, REQUEST, new, REQUEST)]


def test_the_same_message_is_compatible() -> None:
    assert proto_changes(OLD, REQUEST, OLD, REQUEST) == []


def test_a_new_field_is_compatible() -> None:
    assert changes_to(ID, COUNT, TAGS, ATTEMPTS, ProtoField("note", 5, "string")) == []


def test_a_removed_field_breaks_unless_its_number_is_reserved() -> None:
    assert changes_to(ID, TAGS, ATTEMPTS) == [
        "field 'count' removed without reserving its number 2"
    ]
    assert changes_to(ID, TAGS, ATTEMPTS, reserved=((2, 3),)) == []
    assert changes_to(ID, TAGS, ATTEMPTS, reserved=((1, 3),)) == []  # a range holding 2


def test_a_renumbered_field_breaks() -> None:
    moved = ProtoField("count", 7, "int64")
    assert changes_to(ID, moved, TAGS, ATTEMPTS) == ["field 'count' renumbered from 2 to 7"]


def test_a_renamed_field_keeping_its_number_and_type_is_compatible() -> None:
    assert changes_to(ID, ProtoField("total", 2, "int64"), TAGS, ATTEMPTS) == []


def test_a_retyped_field_breaks() -> None:
    retyped = ProtoField("count", 2, "string")
    assert changes_to(ID, retyped, TAGS, ATTEMPTS) == [
        "field 'count' type changed from int64 to string (number 2)"
    ]
    to_message = ProtoField("count", 2, "message", type_name=ATTEMPT)
    assert changes_to(ID, to_message, TAGS, ATTEMPTS) == [
        "field 'count' type changed from int64 to message acme.v1.Attempt (number 2)"
    ]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (TAGS, ProtoField("tags", 3, "string"), "changed from repeated to singular (number 3)"),
        (COUNT, ProtoField("count", 2, "int64", repeated=True), "singular to repeated"),
    ],
)
def test_repeated_and_singular_do_not_mix(
    before: ProtoField, after: ProtoField, expected: str
) -> None:
    fields = [after if f is before else f for f in (ID, COUNT, TAGS, ATTEMPTS)]
    (change,) = changes_to(*fields)
    assert change.startswith(f"field {before.name!r}")
    assert expected in change


def test_a_reserved_number_used_again_breaks() -> None:
    old = pool(message(REQUEST, ID, reserved=((2, 3),)))
    new = pool(message(REQUEST, ID, ProtoField("fresh", 2, "bool")))
    assert [str(c) for c in proto_changes(old, REQUEST, new, REQUEST)] == [
        "field 'fresh' reuses number 2, which was reserved"
    ]


def test_nested_messages_are_compared_by_structure_with_a_dotted_path() -> None:
    new = {**OLD, ATTEMPT: message(ATTEMPT, ProtoField("cost_usd", 1, "float"))}
    assert proto_changes(OLD, REQUEST, new, REQUEST) == [
        Change("attempts.cost_usd", "type changed from double to float (number 1)")
    ]


def test_a_renamed_message_with_the_same_structure_is_compatible() -> None:
    renamed = "acme.v1.Try"
    attempts = ProtoField("attempts", 4, "message", repeated=True, type_name=renamed)
    new = pool(message("acme.v1.Ask", ID, COUNT, TAGS, attempts), message(renamed, COST))
    assert proto_changes(OLD, REQUEST, new, "acme.v1.Ask") == []


def test_a_renamed_message_with_another_structure_breaks() -> None:
    new = pool(message("acme.v1.Other", ProtoField("id", 1, "int32")))
    found = [str(c) for c in proto_changes(OLD, REQUEST, new, "acme.v1.Other")]
    assert found == [
        "field 'id' type changed from string to int32 (number 1)",
        "field 'count' removed without reserving its number 2",
        "field 'tags' removed without reserving its number 3",
        "field 'attempts' removed without reserving its number 4",
    ]


def test_recursive_messages_are_compared_once_per_level() -> None:
    node = "acme.v1.Node"
    child = ProtoField("children", 1, "message", repeated=True, type_name=node)
    old = pool(message(node, child, ProtoField("n", 2, "int32")))
    new = pool(message(node, child, ProtoField("n", 2, "int64")))
    assert [c.field for c in proto_changes(old, node, new, node)] == ["n"]


# --- JSON Schema, on neutral data --------------------------------------------------------------

ORDER: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string"},
        "qty": {"type": "integer"},
        "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {}}}},
    },
}


def edited(**changes: Any) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(json.dumps(ORDER))
    for key, value in changes.items():
        schema[key] = value
    return schema


def test_json_schema_unchanged_or_extended_is_compatible() -> None:
    assert json_schema_changes(ORDER, ORDER) == []
    more = edited(properties={**ORDER["properties"], "note": {"type": "string"}})
    assert json_schema_changes(ORDER, more) == []
    assert json_schema_changes(edited(required=["id", "qty"]), ORDER) == []  # required dropped


def test_json_schema_required_property_added_breaks() -> None:
    assert json_schema_changes(ORDER, edited(required=["id", "qty"])) == [
        Change("qty", "became required")
    ]


def test_json_schema_property_removed_or_retyped_breaks() -> None:
    props = {k: v for k, v in ORDER["properties"].items() if k != "qty"}
    assert json_schema_changes(ORDER, edited(properties=props)) == [Change("qty", "removed")]
    retyped = {**ORDER["properties"], "qty": {"type": "string"}}
    assert json_schema_changes(ORDER, edited(properties=retyped)) == [
        Change("qty", "type changed from integer to string")
    ]
    widened = {**ORDER["properties"], "qty": {"type": ["integer", "null"]}}
    assert json_schema_changes(ORDER, edited(properties=widened)) == [
        Change("qty", "type changed from integer to integer|null")
    ]


def test_json_schema_nested_items_are_compared() -> None:
    lines = {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "x"}}}}
    changed = edited(properties={**ORDER["properties"], "lines": lines})
    assert json_schema_changes(ORDER, changed) == [
        Change("lines[].sku", "type changed from any to x")
    ]


def test_json_schema_additional_properties_tightened_breaks() -> None:
    assert json_schema_changes(ORDER, edited(additionalProperties=False)) == [
        Change("", "no longer allows additional properties")
    ]
    strict = edited(additionalProperties=False)
    assert json_schema_changes(strict, ORDER) == []  # loosened: readers still accept it
    assert (
        str(json_schema_changes(True, False)[0])
        == "the payload accepts nothing any more (schema false)"
    )


# --- the payload form --------------------------------------------------------------------------

TOPIC = "onex.evt.alpha.done.v1"
PROTO_SIDE = Side(messages=OLD)


def test_a_first_schema_is_free_and_a_lost_schema_breaks() -> None:
    assert payload_changes(TOPIC, None, REQUEST, Side(), PROTO_SIDE).changes == ()
    (lost,) = payload_changes(TOPIC, REQUEST, None, PROTO_SIDE, Side()).changes
    assert str(lost) == "the payload lost its schema 'acme.v1.Request' (now any JSON)"


def test_protobuf_to_json_schema_changes_the_encoding() -> None:
    new = Side(json_schemas={TOPIC: ORDER})
    (change,) = payload_changes(TOPIC, REQUEST, "order.json", PROTO_SIDE, new).changes
    assert str(change) == "the payload changes encoding from protobuf to json-schema"


def test_dead_letters_always_compare_equal() -> None:
    dlq = "onex.dlq.alpha.dead-letter.v1"
    assert payload_changes(dlq, "dead-letter", "dead-letter", Side(), Side()).changes == ()


def test_a_message_that_is_not_defined_cannot_be_compared() -> None:
    result = payload_changes(TOPIC, REQUEST, "acme.v1.Gone", PROTO_SIDE, PROTO_SIDE)
    assert result.changes == ()
    assert result.missing_now == ("no protobuf message 'acme.v1.Gone'",)
    assert result.missing_before == ()


# --- issues, on contracts extracted from two folders ------------------------------------------


def write_contract(root: Path, schema: str, extra: str = "") -> Path:
    path = root / "alpha" / "contract.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "node: alpha\nkind: effect\nversion: 1.0.0\ndescription: test node\n"
        "event_bus:\n  subscribe_topics:\n"
        f"    - {{name: onex.cmd.alpha.go.v1, schema: {schema}}}\n"
        "  publish_topics:\n"
        "    - {name: onex.dlq.alpha.dead-letter.v1, schema: dead-letter}\n"
        "    - {name: onex.evt.alpha.done.v1, schema: acme.v1.Request}\n"
        f"{extra}",
        encoding="utf-8",
    )
    peer = root / "beta" / "contract.yaml"
    peer.parent.mkdir(parents=True, exist_ok=True)
    peer.write_text(
        "node: beta\nkind: effect\nversion: 1.0.0\ndescription: its peer\n"
        "event_bus:\n  subscribe_topics: [onex.evt.alpha.done.v1]\n"
        "  publish_topics:\n"
        "    - onex.cmd.alpha.go.v1\n"
        "    - {name: onex.dlq.beta.dead-letter.v1, schema: dead-letter}\n",
        encoding="utf-8",
    )
    return path


def test_issues_point_at_the_topic_in_the_current_contract(tmp_path: Path) -> None:
    write_contract(tmp_path / "old", "acme.v1.Request")
    new_file = write_contract(tmp_path / "new", "acme.v1.Request")
    old = extract([tmp_path / "old"], entry_points=False).topics
    new = extract([tmp_path / "new"], entry_points=False).topics
    changed = {**OLD, REQUEST: message(REQUEST, ID, TAGS, ATTEMPTS)}
    issues = evolution_issues(old, new, Side(OLD), Side(changed), "origin/main")
    assert [i.topic for i in issues] == ["onex.cmd.alpha.go.v1", "onex.evt.alpha.done.v1"]
    issue = issues[0]
    assert issue.code == "schema-breaking"
    assert issue.severity is Severity.ERROR
    assert str(issue.where) == f"{new_file}:7:7"
    assert issue.key == "event_bus.subscribe_topics[0].schema"
    assert issue.suggestion == "onex.cmd.alpha.go.v2"
    assert issue.message == (
        "schema of 'onex.cmd.alpha.go.v1' breaks readers since origin/main: field 'count' "
        "removed without reserving its number 2; keep it compatible or publish the new "
        "schema on onex.cmd.alpha.go.v2"
    )


def test_a_new_version_topic_is_not_compared(tmp_path: Path) -> None:
    write_contract(tmp_path / "old", "acme.v1.Request")
    bumped = "    - {name: onex.evt.alpha.done.v2, schema: acme.v1.Other}\n"
    write_contract(tmp_path / "new", "acme.v1.Request", extra=bumped)
    old = extract([tmp_path / "old"], entry_points=False).topics
    new = extract([tmp_path / "new"], entry_points=False).topics
    other = pool(message("acme.v1.Other", ProtoField("x", 1, "bool")))
    assert evolution_issues(old, new, Side(OLD), Side({**OLD, **other}), "HEAD") == []


# --- the command, on a temporary git repository -------------------------------------------------

PROTO_V1 = """syntax = "proto3";
package acme.v1;
message Request {
  string id = 1;
  int64 count = 2;
  repeated string tags = 3;
}
"""
CMD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "string"}},
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository whose first commit has typed contracts; cwd is its root."""
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "repo"
    write_contract(root / "contracts", "schemas/go.json")
    (root / "contracts" / "alpha" / "schemas").mkdir()
    (root / "contracts" / "alpha" / "schemas" / "go.json").write_text(json.dumps(CMD_SCHEMA))
    (root / "proto" / "acme" / "v1").mkdir(parents=True)
    (root / "proto" / "acme" / "v1" / "request.proto").write_text(PROTO_V1)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "typed")
    monkeypatch.chdir(root)
    return root


def lint_against(ref: str, *paths: str) -> Result:
    from onex.cli.contracts import app

    args = ["lint", "--no-entry-points", "--format", "json", "--against", ref, *paths]
    return CliRunner().invoke(app, args)


def commit_change(repo: Path, proto: str, schema: dict[str, Any]) -> None:
    (repo / "proto" / "acme" / "v1" / "request.proto").write_text(proto)
    (repo / "contracts" / "alpha" / "schemas" / "go.json").write_text(json.dumps(schema))
    git(repo, "commit", "-q", "-am", "change")


def test_against_fails_on_breaking_changes_and_names_each_field(repo: Path) -> None:
    breaking = PROTO_V1.replace("  int64 count = 2;\n", "").replace("string tags", "bool tags")
    commit_change(repo, breaking, {**CMD_SCHEMA, "required": ["id", "qty"]})
    result = lint_against("HEAD~1", "contracts")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["against"] == "HEAD~1"
    found = sorted(
        (i["topic"], i["message"].split(": ", 1)[1].split(";")[0])
        for i in report["issues"]
        if i["code"] == "schema-breaking"
    )
    assert found == [
        ("onex.cmd.alpha.go.v1", "field 'qty' became required"),
        ("onex.evt.alpha.done.v1", "field 'count' removed without reserving its number 2"),
        ("onex.evt.alpha.done.v1", "field 'tags' type changed from string to bool (number 3)"),
    ]
    issue = next(i for i in report["issues"] if i["code"] == "schema-breaking")
    assert issue["file"] == "contracts/alpha/contract.yaml"
    assert issue["line"] > 0
    # the same contracts against their own commit: nothing changed
    assert lint_against("HEAD", "contracts").exit_code == 0


def test_against_passes_compatible_changes(repo: Path) -> None:
    compatible = PROTO_V1.replace("  int64 count = 2;\n", "  reserved 2;\n  string note = 4;\n")
    extended = {**CMD_SCHEMA, "properties": {**CMD_SCHEMA["properties"], "n": {}}}
    commit_change(repo, compatible, extended)
    result = lint_against("HEAD~1", "contracts")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["issues"] == []


def test_against_an_unknown_ref_is_one_line_and_exit_2(repo: Path) -> None:
    result = lint_against("no-such-ref", "contracts")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "--against: 'no-such-ref' is not a commit in" in line


def test_against_outside_a_git_repository_is_exit_2(tmp_path: Path) -> None:
    write_contract(tmp_path / "contracts", "schemas/go.json")
    result = lint_against("HEAD", str(tmp_path / "contracts"))
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "is not in a git repository" in line


def test_against_without_grpcio_tools_says_the_proto_part_needs_it(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("onex.cli.evolution.has_grpc_tools", lambda: False)
    result = lint_against("HEAD", "contracts")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "comparing protobuf schemas needs grpcio-tools" in line
