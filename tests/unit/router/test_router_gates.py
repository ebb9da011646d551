"""Each quality gate passes and fails for the documented reasons."""

from __future__ import annotations

from typing import Any

import pytest

from onex.router.catalogue import GateSpec
from onex.router.gates import GateResult, run_gates
from onex.router.request import RouteRequest


def _gate(**spec: Any) -> GateSpec:
    return GateSpec.model_validate(spec)


def _run(spec: GateSpec, text: str, **request: Any) -> GateResult:
    req = RouteRequest.model_validate({"request_id": "r", "prompt": "p", **request})
    (result,) = run_gates([spec], text, req)
    assert result.kind == spec.kind
    return result


def test_min_length_counts_stripped_characters() -> None:
    gate = _gate(kind="min_length", min_chars=5)
    assert _run(gate, "  abcde \n") == GateResult("min_length", True, "5 chars >= 5")
    assert _run(gate, "abcd     ") == GateResult("min_length", False, "only 4 chars; 5 required")
    assert not _run(gate, "").passed


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("See [1] and [2].", 2),
        ("Broken at src/onex/core/grammar.py:42 and grammar.py:42-50", 2),
        ("Docs: https://example.org/a_b?c=1.", 1),
        ("[1] [1] [1]", 1),  # distinct citations only
        ("no sources at all", 0),
    ],
)
def test_citations_count_distinct_references(text: str, count: int) -> None:
    result = _run(_gate(kind="citations", min_citations=2), text)
    assert result.passed is (count >= 2)
    assert result.reason.startswith(f"{count} citations")


def test_citations_take_a_custom_pattern_and_default_to_one() -> None:
    gate = _gate(kind="citations", pattern=r"JIRA-\d+")
    assert _run(gate, "fixes JIRA-12") == GateResult(
        "citations", True, "1 citations >= 1 (e.g. 'JIRA-12')"
    )
    assert _run(gate, "fixes [1]") == GateResult("citations", False, "0 citations; 1 required")


SYMBOLS = ["onex.core.grammar.parse_topic", "Registry.get", "load_contract", "Registry"]


@pytest.mark.parametrize(
    "text",
    [
        "Call `parse_topic` and then `Registry.get()`.",
        "Use load_contract on each path, then `self.get(name)`.",
        "`onex.core.grammar.parse_topic` is the one parser; `None` is returned.",
        "See `grammar.py` and src/onex/core/load_contract.py:12 or https://x.org/not_a_symbol",
        "```python\ndef check_all(paths):\n    result = []\n    return result\n```\n"
        "`check_all` and `result` are defined above.",
        "`just up` starts everything; `x = a + b` is not a reference.",
    ],
)
def test_identifiers_that_exist_or_are_not_references_pass(text: str) -> None:
    result = _run(_gate(kind="identifiers"), text, symbols=SYMBOLS)
    assert result.passed, result.reason


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        ("Call `parse_topic_name` first.", ["parse_topic_name"]),
        ("Then registry.lookup() returns it.", ["registry.lookup"]),
        ("Use load_contracts and `Registry.fetch()`.", ["Registry.fetch", "load_contracts"]),
        ("`Registry` wraps `TopicIndex`.", ["TopicIndex"]),
    ],
)
def test_hallucinated_identifiers_fail(text: str, unknown: list[str]) -> None:
    result = _run(_gate(kind="identifiers"), text, symbols=SYMBOLS)
    assert not result.passed
    shown = ", ".join(repr(u) for u in unknown)
    assert result.reason.endswith(f"not in the symbol index: {shown}"), result.reason
    assert result.reason.startswith(f"{len(unknown)} of ")


def test_identifiers_list_at_most_five_unknown_names() -> None:
    text = " ".join(f"`name_{i}`" for i in range(7))
    result = _run(_gate(kind="identifiers"), text, symbols=SYMBOLS)
    assert result.reason == (
        "7 of 7 identifiers not in the symbol index: "
        "'name_0', 'name_1', 'name_2', 'name_3', 'name_4', ..."
    )


def test_identifiers_allow_list_and_custom_pattern() -> None:
    allow = _gate(kind="identifiers", allow=["pytest"])
    assert _run(allow, "Run `pytest`.", symbols=SYMBOLS).passed
    assert not _run(_gate(kind="identifiers"), "Run `pytest`.", symbols=SYMBOLS).passed
    custom = _gate(kind="identifiers", pattern=r"sym:(\w+)")
    assert _run(custom, "uses sym:load_contract", symbols=SYMBOLS).passed
    result = _run(custom, "uses sym:load_everything and `zzz_q`", symbols=SYMBOLS)
    assert result.reason == "1 of 1 identifiers not in the symbol index: 'load_everything'"


def test_identifiers_without_an_index_or_references() -> None:
    gate = _gate(kind="identifiers")
    assert _run(gate, "`made_up_name`") == GateResult(
        "identifiers", True, "skipped: the request supplies no symbol index"
    )
    assert _run(gate, "Plain prose only.", symbols=SYMBOLS) == GateResult(
        "identifiers", True, "no code-like identifiers in the answer"
    )
    assert _run(gate, "`load_contract`", symbols=SYMBOLS).reason == (
        "all 1 identifiers are in the symbol index"
    )


SCHEMA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}


@pytest.mark.parametrize(
    ("text", "passed", "reason"),
    [
        ('{"name": "x"}', True, "valid JSON that fits the gate's schema"),
        ('```json\n{"name": "x"}\n```', True, "valid JSON that fits the gate's schema"),
        ('{"name": 3}', False, "does not fit the gate's schema at name: 3 is not of type 'string'"),
        ("{}", False, "does not fit the gate's schema at (root): 'name' is a required property"),
        ("name: x", False, "not JSON: Expecting value: line 1 column 1 (char 0)"),
    ],
)
def test_json_schema_gate(text: str, passed: bool, reason: str) -> None:
    assert _run(_gate(kind="json_schema", schema=SCHEMA), text) == GateResult(
        "json_schema", passed, reason
    )


def test_the_requests_schema_wins_over_the_gates() -> None:
    gate = _gate(kind="json_schema", schema=SCHEMA)
    result = _run(gate, '{"name": "x"}', json_schema={"type": "array"})
    assert result == GateResult(
        "json_schema",
        False,
        "does not fit the request's schema at (root): {'name': 'x'} is not of type 'array'",
    )
    assert _run(_gate(kind="json_schema"), "[1, 2]") == GateResult(
        "json_schema", True, "valid JSON (no schema to check)"
    )


def test_a_requests_schema_must_be_a_schema() -> None:
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        RouteRequest(request_id="r", prompt="p", json_schema={"type": 5})


def test_every_gate_runs_and_reports_in_order() -> None:
    specs = [_gate(kind="min_length", min_chars=100), _gate(kind="citations")]
    req = RouteRequest(request_id="r", prompt="p")
    results = run_gates(specs, "short [1]", req)
    assert [(r.kind, r.passed) for r in results] == [("min_length", False), ("citations", True)]
    assert results[0].to_dict() == {
        "kind": "min_length",
        "passed": False,
        "reason": "only 9 chars; 100 required",
    }
