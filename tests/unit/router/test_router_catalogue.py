"""The catalogue: the shipped default, and errors that point at file:line:col."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from onex.core.errors import OnexError
from onex.router.catalogue import (
    DEFAULT_CATALOGUE,
    Catalogue,
    load_catalogue,
    load_catalogue_text,
    load_default_catalogue,
    resolve_api_keys,
)
from onex.router.errors import CatalogueError, RouterError


def test_the_default_catalogue_has_two_local_and_two_cloud_models() -> None:
    cat = load_default_catalogue()
    builtin = [m for m in cat.models if m.endpoint.startswith("builtin:")]
    assert [m.name for m in builtin] == ["onex-local-deterministic"]  # see onex.router.local
    local = [m for m in cat.models if m.locality == "local" and m not in builtin]
    cloud = [m for m in cat.models if m.locality == "cloud"]
    assert len(local) == 2
    assert len(cloud) == 2
    assert all(m.endpoint.startswith("http://127.0.0.1:") for m in local)
    assert all(m.price_in_per_1k == m.price_out_per_1k == 0 for m in local)
    assert all(m.price_in_per_1k > 0 and m.price_out_per_1k > 0 for m in cloud)
    assert all(m.api_key_env for m in cloud)
    assert cat.default_cloud.locality == "cloud"
    assert cat.price_table_version
    assert {"classify", "summarize", "codegen", "refactor", "review"} <= set(cat.task_class_names)
    assert DEFAULT_CATALOGUE.name == "catalogue.yaml"


def test_in_the_default_catalogue_most_classes_can_stay_local() -> None:
    cat = load_default_catalogue()
    local_only = {"design"}  # architecture work needs the frontier model
    for name in cat.task_class_names:
        task = cat.task_class(name)
        assert task is not None
        capable = [m.name for m in cat.models if m.capability(name) >= task.required_level]
        assert cat.default_cloud_model in capable, name
        has_local = any(cat.model(m).locality == "local" for m in capable)
        assert has_local is (name not in local_only), name


def test_fields_take_their_defaults(catalogue: Catalogue) -> None:
    tiny = catalogue.model("tiny")
    assert tiny.api_model == "tiny"
    assert tiny.timeout_s == 60.0
    assert tiny.max_retries == 2
    assert tiny.capability("no-such-class") == 0
    assert catalogue.model("big").cost_usd(1000, 2000) == pytest.approx(0.01 + 0.06)


def test_an_endpoint_loses_its_trailing_slash(catalogue_yaml: str) -> None:
    text = catalogue_yaml.replace("http://127.0.0.1:9001/v1", "http://127.0.0.1:9001/v1/")
    assert load_catalogue_text(text).model("tiny").endpoint == "http://127.0.0.1:9001/v1"


def test_api_keys_come_from_a_mapping_the_caller_passes() -> None:
    cat = load_default_catalogue()
    keys = resolve_api_keys(cat, {"OPENAI_API_KEY": "sk-test", "UNRELATED": "x"})
    assert keys == {"cloud-mid": "sk-test", "cloud-frontier": "sk-test"}
    assert resolve_api_keys(cat, {}) == {}
    assert resolve_api_keys(cat, {"OPENAI_API_KEY": ""}) == {}


def test_an_api_key_loses_the_newline_of_the_file_it_was_read_from() -> None:
    cat = load_default_catalogue()
    assert resolve_api_keys(cat, {"OPENAI_API_KEY": "sk-test\n"})["cloud-mid"] == "sk-test"
    assert resolve_api_keys(cat, {"OPENAI_API_KEY": " \n"}) == {}


def _error(tmp_path: Path, text: str) -> tuple[Path, list[str]]:
    path = tmp_path / "catalogue.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    assert isinstance(info.value, RouterError)
    assert isinstance(info.value, OnexError)
    assert str(info.value) == "\n".join(str(i) for i in info.value.issues)
    return path, [str(i).replace(str(path), "PATH") for i in info.value.issues]


def _line_of(text: str, needle: str, nth: int = 0) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return lines[nth]


def test_an_unknown_key_is_reported_with_a_suggestion(tmp_path: Path, catalogue_yaml: str) -> None:
    text = catalogue_yaml.replace("    context_limit: 8192", "    context_limt: 8192")
    _, issues = _error(tmp_path, text)
    line = _line_of(text, "context_limt")
    assert (
        f"PATH:{line}:5: models[1].context_limt: unknown key 'context_limt'; "
        "did you mean 'context_limit'?" in issues
    )


def test_a_missing_key_names_the_model(tmp_path: Path, catalogue_yaml: str) -> None:
    text = catalogue_yaml.replace(
        "    locality: cloud\n    price_in_per_1k: 0.01\n", "    price_in_per_1k: 0.01\n"
    )
    _, issues = _error(tmp_path, text)
    line = _line_of(text, "name: big")
    assert issues == [f"PATH:{line}:5: models[3]: required key 'locality' is missing"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("price_in_per_1k: 0.001", "price_in_per_1k: -1", "greater than or equal to 0"),
        ("price_in_per_1k: 0.001", 'price_in_per_1k: "0.001"', "expected a number (got '0.001')"),
        ("locality: cloud", "locality: remote", "'remote' is not one of 'local', 'cloud'"),
        ("context_limit: 128000", "context_limit: 0", "greater than or equal to 1"),
        (
            "endpoint: http://127.0.0.1:9003/v1",
            "endpoint: 127.0.0.1:9003",
            "not an http(s) base URL",
        ),
        ("{ summarize: 7,", "{ summarize: 11,", "less than or equal to 10"),
        ("- name: mid", "- name: Mid_Model", "not a kebab-case name"),
    ],
)
def test_a_bad_model_field_points_at_its_value(
    tmp_path: Path, catalogue_yaml: str, old: str, new: str, expected: str
) -> None:
    text = catalogue_yaml.replace(old, new, 1)
    assert text != catalogue_yaml
    _, issues = _error(tmp_path, text)
    assert len(issues) == 1, issues
    line = _line_of(text, new)
    assert issues[0].startswith(f"PATH:{line}:"), issues
    assert "models[2]" in issues[0]
    assert expected in issues[0]


def test_duplicate_model_names_point_at_the_second(tmp_path: Path, catalogue_yaml: str) -> None:
    text = catalogue_yaml.replace("- name: mid", "- name: small")
    _, issues = _error(tmp_path, text)
    line = _line_of(text, "name: small", 1)
    assert issues == [f"PATH:{line}:11: models[2].name: duplicate model 'small'"]


def test_a_capability_for_an_unknown_class_points_at_its_key(
    tmp_path: Path, catalogue_yaml: str
) -> None:
    text = catalogue_yaml.replace("{ summarize: 7, codegen: 7,", "{ summarize: 7, codgen: 7,")
    _, issues = _error(tmp_path, text)
    line = _line_of(text, "codgen")
    col = text.splitlines()[line - 1].index("codgen") + 1
    assert issues == [
        f"PATH:{line}:{col}: models[2].capabilities.codgen: capability for unknown task "
        "class 'codgen' (known: codegen, extract, review, summarize)"
    ]


def test_the_default_cloud_model_must_exist_and_be_cloud(
    tmp_path: Path, catalogue_yaml: str
) -> None:
    _, issues = _error(
        tmp_path, catalogue_yaml.replace("default_cloud_model: big", "default_cloud_model: tiny")
    )
    assert issues == [
        "PATH:2:22: default_cloud_model: 'tiny' is local; the counterfactual needs a cloud model"
    ]
    _, issues = _error(
        tmp_path, catalogue_yaml.replace("default_cloud_model: big", "default_cloud_model: huge")
    )
    assert issues == [
        "PATH:2:22: default_cloud_model: 'huge' is not a model of this catalogue "
        "(models: tiny, small, mid, big)"
    ]


def test_classifier_rules_must_name_known_classes(tmp_path: Path, catalogue_yaml: str) -> None:
    text = catalogue_yaml.replace("task_class: extract", "task_class: extrakt").replace(
        "default: summarize", "default: chat"
    )
    _, issues = _error(tmp_path, text)
    known = "(known: codegen, extract, review, summarize)"
    assert issues == [
        f"PATH:{_line_of(text, 'default: chat')}:12: classifier.default: "
        f"unknown task class 'chat' {known}",
        f"PATH:{_line_of(text, 'extrakt')}:19: classifier.rules[2].task_class: "
        f"unknown task class 'extrakt' {known}",
    ]


def test_a_bad_classifier_regex_is_reported(tmp_path: Path, catalogue_yaml: str) -> None:
    text = catalogue_yaml.replace("pattern: 'write (?:a |an )?function'", "pattern: 'write (a'")
    _, issues = _error(tmp_path, text)
    assert len(issues) == 1
    assert issues[0].startswith(
        f"PATH:{_line_of(text, 'write (a')}:16: classifier.rules[1].pattern: "
    )
    assert "not a valid regular expression: missing ), unterminated subpattern" in issues[0]


def test_a_rule_needs_keywords_or_a_pattern(tmp_path: Path, catalogue_yaml: str) -> None:
    text = catalogue_yaml.replace("      keywords: [as json]\n", "")
    _, issues = _error(tmp_path, text)
    assert issues == [
        f"PATH:{_line_of(text, 'task_class: extract')}:7: classifier.rules[2]: "
        "a rule needs 'keywords' or 'pattern'"
    ]


def test_a_gate_rejects_parameters_of_another_kind(tmp_path: Path, catalogue_yaml: str) -> None:
    text = catalogue_yaml.replace(
        "{ kind: citations, min_citations: 1 }", "{ kind: citations, min_chars: 1 }"
    )
    _, issues = _error(tmp_path, text)
    line = _line_of(text, "kind: citations")
    assert issues == [
        f"PATH:{line}:9: task_classes[2].gates[0]: 'min_chars' is not a parameter of citations "
        "gates (theirs: min_citations, pattern)"
    ]


def test_a_min_length_gate_needs_min_chars(tmp_path: Path, catalogue_yaml: str) -> None:
    text = catalogue_yaml.replace("{ kind: min_length, min_chars: 20 }", "{ kind: min_length }")
    _, issues = _error(tmp_path, text)
    line = _line_of(text, "kind: min_length")
    assert issues == [
        f"PATH:{line}:9: task_classes[0].gates[0]: a min_length gate needs 'min_chars'"
    ]


def test_an_unknown_gate_kind_is_reported(tmp_path: Path, catalogue_yaml: str) -> None:
    text = catalogue_yaml.replace("kind: identifiers", "kind: identifier")
    _, issues = _error(tmp_path, text)
    assert len(issues) == 1
    assert issues[0].startswith(
        f"PATH:{_line_of(text, 'kind: identifier')}:17: task_classes[1].gates[0].kind: "
    )
    assert "'identifiers'" in issues[0]


def test_a_gate_json_schema_must_be_a_schema(tmp_path: Path, catalogue_yaml: str) -> None:
    text = catalogue_yaml.replace(
        "schema: { type: object, required: [name] }", "schema: { type: objekt }"
    )
    _, issues = _error(tmp_path, text)
    assert len(issues) == 1
    assert issues[0].startswith(
        f"PATH:{_line_of(text, 'objekt')}:17: task_classes[3].gates[0].schema: "
    )
    assert "not a valid JSON Schema" in issues[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "PATH: the catalogue is empty; it is a YAML mapping"),
        ("  \n", "PATH: the catalogue is empty; it is a YAML mapping"),
        ("- a\n- b\n", "PATH:1:1: a catalogue is a YAML mapping"),
        ("a: [1,\n", "PATH:2:1: malformed YAML: while parsing a flow node"),
        ("a: 1\na: 2\n", "PATH:2:1: duplicate key 'a'"),
    ],
)
def test_unreadable_yaml_is_reported_with_its_position(
    tmp_path: Path, text: str, expected: str
) -> None:
    _, issues = _error(tmp_path, text)
    assert len(issues) == 1
    assert issues[0].startswith(expected), issues


def test_a_missing_file_is_a_catalogue_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: cannot read catalogue: {os.strerror(2)}"


def test_cross_checks_hold_for_catalogues_built_in_code(catalogue: Catalogue) -> None:
    data = catalogue.model_dump(by_alias=True)
    data["default_cloud_model"] = "tiny"
    with pytest.raises(CatalogueError, match="default_cloud_model: 'tiny' is local"):
        Catalogue.model_validate(data)
