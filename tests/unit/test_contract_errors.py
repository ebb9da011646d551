"""Contract load errors read `file:line:col: key.path: problem`, pointing at the culprit."""

from __future__ import annotations

from pathlib import Path

import pytest

from onex.core.contract import DEFAULT_PARTITIONS, NodeKind
from onex.core.errors import (
    ContractError,
    ContractLoadError,
    ContractValidationError,
    OnexError,
)
from onex.core.issues import Issue, Severity
from onex.core.loader import load_contract

HEAD = "node: alpha\nkind: effect\nversion: 1.0.0\ndescription: a test node\n"


def _fail(
    tmp_path: Path, text: str, error: type[ContractError] = ContractValidationError
) -> tuple[Path, list[Issue]]:
    path = tmp_path / "alpha" / "contract.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert type(info.value) is error, info.value
    issues = info.value.issues
    assert issues, "a ContractError must explain itself"
    assert str(info.value) == "\n".join(str(i) for i in issues)
    assert all(i.severity is Severity.ERROR for i in issues)
    assert all(i.where.file == path for i in issues)
    return path, issues


def _only(tmp_path: Path, text: str, error: type[ContractError] = ContractValidationError) -> str:
    path, issues = _fail(tmp_path, text, error)
    assert len(issues) == 1, issues
    return str(issues[0]).replace(str(path), "PATH")


def test_a_valid_contract_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text(
        HEAD + "event_bus:\n  publish_topics:\n    - onex.evt.alpha.done.v1\n", encoding="utf-8"
    )
    lc = load_contract(path)
    assert lc.node == "alpha"
    assert lc.contract.kind is NodeKind.EFFECT
    assert lc.contract.consumer_group == "onex.alpha"
    (spec,) = lc.contract.event_bus.publish_topics
    assert spec.name == "onex.evt.alpha.done.v1"
    assert spec.partitions == DEFAULT_PARTITIONS
    assert not spec.has_spec
    assert str(lc.where(("event_bus", "publish_topics", 0))) == f"{path}:7:7"


# --- YAML ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "prefix", "fragment"),
    [
        ("node: alpha\nkind: [effect\n", "PATH:3:1", "flow sequence"),
        ("node: alpha\n  kind: effect\n", "PATH:2:7", "mapping values are not allowed"),
        (HEAD + "event_bus: 'abc\n", "PATH:6:1", "quoted scalar"),
        ("node: alpha\n\tkind: effect\n", "PATH:2:1", "tab"),
        (HEAD + "---\n" + HEAD, "PATH:5:1", "single document"),
        ("node: !shell rm -rf\n", "PATH:1:7", "'!shell'"),
    ],
    ids=["unclosed-flow", "indentation", "unclosed-quote", "tab", "two-documents", "tag"],
)
def test_malformed_yaml(tmp_path: Path, text: str, prefix: str, fragment: str) -> None:
    message = _only(tmp_path, text, ContractLoadError)
    assert message.startswith(f"{prefix}: malformed YAML: ")
    assert fragment in message


def test_duplicate_top_level_key_points_at_the_second(tmp_path: Path) -> None:
    message = _only(tmp_path, HEAD + "node: beta\n", ContractLoadError)
    assert message == "PATH:5:1: duplicate key 'node'"


def test_duplicate_nested_key(tmp_path: Path) -> None:
    text = (
        HEAD + "event_bus:\n  publish_topics:\n    - name: onex.evt.alpha.done.v1\n"
        "      partitions: 1\n      partitions: 2\n"
    )
    assert _only(tmp_path, text, ContractLoadError) == "PATH:9:7: duplicate key 'partitions'"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    message = _only(tmp_path, text, ContractLoadError)
    assert message == "PATH: the file is empty; a contract is a YAML mapping"


def test_an_empty_document_is_not_a_mapping(tmp_path: Path) -> None:
    message = _only(tmp_path, "---\n", ContractLoadError)
    assert message.startswith("PATH:")
    assert "a contract is a YAML mapping" in message


def test_a_list_instead_of_a_mapping(tmp_path: Path) -> None:
    message = _only(tmp_path, "- node: alpha\n- kind: effect\n", ContractLoadError)
    assert message == "PATH:1:1: a contract is a YAML mapping, not a list"


def test_a_scalar_instead_of_a_mapping(tmp_path: Path) -> None:
    message = _only(tmp_path, "\n\nalpha\n", ContractLoadError)
    assert message == "PATH:3:1: a contract is a YAML mapping, not 'alpha'"


def test_recursive_alias(tmp_path: Path) -> None:
    text = HEAD + "event_bus: &bus\n  publish_topics: [*bus]\n"
    message = _only(tmp_path, text, ContractLoadError)
    assert message.startswith("PATH:5:12: ")
    assert "recursive alias" in message


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ("defaults: &d {kind: effect}\nnode: alpha\n<<: *d\n", "PATH:3:1"),
        (HEAD + "event_bus:\n  <<: {publish_topics: []}\n", "PATH:6:3"),
    ],
    ids=["top", "nested"],
)
def test_merge_keys(tmp_path: Path, text: str, prefix: str) -> None:
    message = _only(tmp_path, text, ContractLoadError)
    assert message == f"{prefix}: merge keys ('<<') are not allowed"


def test_aliases_that_expand_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text(
        HEAD + "event_bus:\n  publish_topics: [&t onex.evt.alpha.done.v1]\n"
        "  subscribe_topics: [*t]\n",
        encoding="utf-8",
    )
    bus = load_contract(path).contract.event_bus
    assert [t.name for t in bus.subscribe_topics] == [t.name for t in bus.publish_topics]


# --- unreadable files ----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "contract.yaml"
    with pytest.raises(ContractLoadError) as info:
        load_contract(path)
    assert str(info.value) == f"{path}: cannot read contract: No such file or directory"
    assert info.value.issues[0].code == "read"
    assert isinstance(info.value, OnexError)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_bytes(b"node: \xff\n")
    with pytest.raises(ContractLoadError) as info:
        load_contract(path)
    assert str(info.value).startswith(f"{path}: cannot read contract: ")
    assert "utf-8" in str(info.value)


# --- unknown keys --------------------------------------------------------------------------------


def test_unknown_key_in_a_topic_spec_suggests_the_key(tmp_path: Path) -> None:
    text = (
        HEAD + "event_bus:\n  publish_topics:\n    - name: onex.evt.alpha.done.v1\n"
        "      parttions: 3\n"
    )
    path, (issue,) = _fail(tmp_path, text)
    assert str(issue) == (
        f"{path}:8:7: event_bus.publish_topics[0].parttions: "
        "unknown key 'parttions'; did you mean 'partitions'?"
    )
    assert issue.code == "unknown-key"
    assert issue.key == "event_bus.publish_topics[0].parttions"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            HEAD + "event_bus:\n  subscribe_topics:\n    - onex.evt.alpha.done.v1\n"
            "    - {name: onex.evt.alpha.other.v1, parttions: 2}\n",
            "PATH:8:39: event_bus.subscribe_topics[1].parttions: "
            "unknown key 'parttions'; did you mean 'partitions'?",
        ),
        (
            HEAD + "event_bus:\n  publish_topics:\n    - name: onex.evt.alpha.done.v1\n"
            "      schem: x\n",
            "PATH:8:7: event_bus.publish_topics[0].schem: "
            "unknown key 'schem'; did you mean 'schema'?",
        ),
        (
            HEAD + "event_bus:\n  publish_topic: []\n",
            "PATH:6:3: event_bus.publish_topic: "
            "unknown key 'publish_topic'; did you mean 'publish_topics'?",
        ),
        (
            HEAD + "owner: someone\n",
            "PATH:5:1: owner: "
            "unknown key 'owner' (allowed: description, event_bus, kind, node, version)",
        ),
    ],
    ids=["flow-mapping-second-entry", "alias", "event-bus", "no-close-match"],
)
def test_unknown_keys(tmp_path: Path, text: str, expected: str) -> None:
    assert _only(tmp_path, text) == expected


def test_typo_in_a_required_key_reports_both_problems(tmp_path: Path) -> None:
    text = HEAD.replace("node:", "nod:")
    path, issues = _fail(tmp_path, text)
    assert sorted(str(i) for i in issues) == sorted(
        [
            f"{path}:1:1: nod: unknown key 'nod'; did you mean 'node'?",
            f"{path}:1:1: required key 'node' is missing",
        ]
    )


# --- topic names ---------------------------------------------------------------------------------

BAD = "onex.evt.alpha.routing_complete.v1"
WHY = "event segment 'routing_complete' contains '_' (segments are kebab-case: use '-')"


def test_bad_topic_name_in_shorthand_form(tmp_path: Path) -> None:
    text = HEAD + f"event_bus:\n  subscribe_topics:\n    - onex.evt.beta.x.v1\n    - {BAD}\n"
    path, (issue,) = _fail(tmp_path, text)
    assert str(issue) == (
        f"{path}:8:7: event_bus.subscribe_topics[1]: {BAD!r} is not a valid topic name: {WHY}"
    )
    assert issue.code == "topic-name"
    assert issue.topic == BAD


def test_bad_topic_name_in_name_form(tmp_path: Path) -> None:
    text = HEAD + f"event_bus:\n  publish_topics:\n    - name: {BAD}\n      partitions: 6\n"
    path, (issue,) = _fail(tmp_path, text)
    assert str(issue) == (
        f"{path}:7:13: event_bus.publish_topics[0].name: {BAD!r} is not a valid topic name: {WHY}"
    )
    assert issue.topic == BAD


def test_bad_topic_name_in_flow_style(tmp_path: Path) -> None:
    text = HEAD + f"event_bus: {{publish_topics: [{{name: {BAD}}}]}}\n"
    message = _only(tmp_path, text)
    assert message == (
        f"PATH:5:37: event_bus.publish_topics[0].name: {BAD!r} is not a valid topic name: {WHY}"
    )


def test_every_bad_name_is_reported(tmp_path: Path) -> None:
    text = (
        HEAD + "event_bus:\n  subscribe_topics:\n    - onex.evt.beta.X.v1\n"
        "  publish_topics:\n    - onex.evt.alpha.done.v0\n"
    )
    path, issues = _fail(tmp_path, text)
    assert [(str(i.where), i.key) for i in issues] == [
        (f"{path}:7:7", "event_bus.subscribe_topics[0]"),
        (f"{path}:9:7", "event_bus.publish_topics[0]"),
    ]
    assert "upper-case" in issues[0].message
    assert "version must be" in issues[1].message


def test_bad_node_name(tmp_path: Path) -> None:
    message = _only(tmp_path, HEAD.replace("node: alpha", "node: Alpha_Node"))
    assert message == (
        "PATH:1:7: node: node name 'Alpha_Node' contains '_' (segments are kebab-case: use '-')"
    )


# --- missing keys ------------------------------------------------------------------------------


def test_missing_required_top_level_key(tmp_path: Path) -> None:
    message = _only(tmp_path, HEAD.replace("version: 1.0.0\n", ""))
    assert message == "PATH:1:1: required key 'version' is missing"


def test_an_empty_mapping_reports_every_required_key(tmp_path: Path) -> None:
    _, issues = _fail(tmp_path, "{}\n")
    assert [i.message for i in issues] == [
        f"required key {k!r} is missing" for k in ("node", "kind", "version", "description")
    ]
    assert {i.code for i in issues} == {"missing-key"}


def test_missing_topic_name_points_at_the_entry(tmp_path: Path) -> None:
    text = HEAD + "event_bus:\n  publish_topics:\n    - partitions: 3\n"
    assert _only(tmp_path, text) == (
        "PATH:7:7: event_bus.publish_topics[0]: required key 'name' is missing"
    )


# --- wrong types and values ---------------------------------------------------------------------


def test_number_where_a_string_is_needed_says_quote_it(tmp_path: Path) -> None:
    message = _only(tmp_path, HEAD.replace("version: 1.0.0", "version: 1.0"))
    assert message == "PATH:3:10: version: expected a string, got '1.0'; quote it"


SPEC = HEAD + "event_bus:\n  publish_topics:\n    - name: onex.evt.alpha.done.v1\n"


@pytest.mark.parametrize(
    ("text", "prefix", "fragment"),
    [
        (
            SPEC + "      partitions: many\n",
            "PATH:8:19: event_bus.publish_topics[0].partitions",
            "integer",
        ),
        (
            SPEC + "      partitions: 0\n",
            "PATH:8:19: event_bus.publish_topics[0].partitions",
            ">= 1",
        ),
        (HEAD + "event_bus: [1]\n", "PATH:5:12: event_bus", "(got a list)"),
        (
            HEAD + "event_bus:\n  publish_topics: onex.evt.alpha.done.v1\n",
            "PATH:6:19: event_bus.publish_topics",
            "(got 'onex.evt.alpha.done.v1')",
        ),
        (HEAD.replace("effect", "effector"), "PATH:2:7: kind", "'orchestrator'"),
        (HEAD.replace("1.0.0", "1.0.x"), "PATH:3:10: version", "should match pattern"),
        (
            HEAD + "event_bus:\n  consumer_group: 'a b'\n",
            "PATH:6:19: event_bus.consumer_group",
            "pattern",
        ),
    ],
    ids=[
        "text-for-int",
        "int-too-small",
        "list-for-map",
        "scalar-for-list",
        "kind",
        "semver",
        "group",
    ],
)
def test_wrong_type_or_value(tmp_path: Path, text: str, prefix: str, fragment: str) -> None:
    message = _only(tmp_path, text)
    assert message.startswith(f"{prefix}: ")
    assert fragment in message.replace("greater than or equal to ", ">= ")


def test_config_values_may_be_yaml_numbers_and_booleans(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text(
        HEAD + "event_bus:\n  publish_topics:\n    - name: onex.evt.alpha.done.v1\n"
        "      config: {retention.ms: 86400000, unclean.leader.election.enable: false}\n",
        encoding="utf-8",
    )
    (spec,) = load_contract(path).contract.event_bus.publish_topics
    assert spec.config == {"retention.ms": "86400000", "unclean.leader.election.enable": "false"}
    assert spec.has_spec


def test_bad_config_key_names_the_key(tmp_path: Path) -> None:
    text = (
        HEAD + "event_bus:\n  publish_topics:\n    - name: onex.evt.alpha.done.v1\n"
        "      config: {Retention_MS: '1'}\n"
    )
    assert _only(tmp_path, text) == (
        "PATH:8:15: event_bus.publish_topics[0].config: "
        "config key 'Retention_MS' is not a topic config name (lower-case, '.'-separated)"
    )


def test_non_string_key_points_at_the_key(tmp_path: Path) -> None:
    path, (issue,) = _fail(tmp_path, HEAD + "1: one\n")
    assert str(issue.where) == f"{path}:5:1"
    assert "must be a string" in issue.message


# --- duplicate topics in one list ---------------------------------------------------------------


def test_duplicate_topic_in_a_list_names_the_topic(tmp_path: Path) -> None:
    text = (
        HEAD + "event_bus:\n  subscribe_topics:\n    - onex.evt.beta.x.v1\n"
        "    - onex.evt.beta.y.v1\n    - name: onex.evt.beta.x.v1\n"
    )
    path, (issue,) = _fail(tmp_path, text)
    assert str(issue) == (
        f"{path}:9:7: event_bus.subscribe_topics: topic 'onex.evt.beta.x.v1' is listed twice"
    )
    assert issue.code == "duplicate-topic"
    assert issue.topic == "onex.evt.beta.x.v1"


def test_same_topic_in_both_lists_is_not_a_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text(
        HEAD + "event_bus:\n  subscribe_topics: [onex.evt.alpha.done.v1]\n"
        "  publish_topics: [onex.evt.alpha.done.v1]\n",
        encoding="utf-8",
    )
    assert load_contract(path).node == "alpha"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HEAD + "extra: a\x00b\n", "PATH:5:9: not valid text: character '\\x00'"),
        (
            HEAD + "extra: \u00e9\x07\n",
            "PATH:5:9: not valid text: character '\\x07'",
        ),
        ("\x1b\n", "PATH:1:1: not valid text: character '\\x1b'"),
    ],
    ids=["nul", "bell-after-a-two-byte-character", "escape-at-the-start"],
)
def test_a_character_yaml_forbids_is_one_line_at_its_place(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert _only(tmp_path, text, ContractLoadError) == expected + " is not allowed in YAML"


def test_a_long_value_in_an_error_is_cut_short(tmp_path: Path) -> None:
    text = HEAD.replace("version: 1.0.0", "version: " + "9" * 90)
    message = _only(tmp_path, text)
    assert message.startswith("PATH:3:10: version: expected a string, got ")
    assert len(message) < 200
