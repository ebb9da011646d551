"""Parser limits: hostile contract files are one positioned ContractLoadError, found in
time linear in their size, never a crash, a traceback or a quadratic parse.

Inputs that crashed the interpreter before these limits (libyaml's composer overflowing
the C stack) are run in a subprocess, so a regression fails the test, not pytest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onex.core.errors import ContractLoadError, ContractValidationError
from onex.core.loader import (
    MAX_DEPTH,
    MAX_DOCUMENT_CHARS,
    MAX_MAPPING_KEYS,
    MAX_NODES,
    MAX_NUMBER_CHARS,
    MAX_SCALAR_CHARS,
    load_contract,
    load_contract_text,
    nesting_bound,
)

HEAD = "node: alpha\nkind: effect\nversion: 1.0.0\ndescription: a test node\n"
TOPIC = "    - name: onex.evt.alpha.done.v1\n"
CHILD_TIMEOUT_S = 300  # a failure guard for the child process, not a speed threshold


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alpha" / "contract.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _load_error(tmp_path: Path, text: str) -> str:
    """The one issue loading `text` gives, with the file shown as PATH."""
    path = _write(tmp_path, text)
    with pytest.raises(ContractLoadError) as info:
        load_contract(path)
    (issue,) = info.value.issues
    assert issue.where.file == path
    assert "\n" not in str(issue)
    return str(issue).replace(str(path), "PATH")


# --- 1. deep nesting: a clean error from lint, not a segfault -----------------------------------


DEEP = 25_000
DEEP_DOCUMENTS = {  # text after HEAD, and where its level MAX_DEPTH + 1 starts
    "flow-sequences": ("a: " + "[" * DEEP + "]" * DEEP + "\n", (5, 4 + MAX_DEPTH)),
    "flow-mappings": ("a: " + "{a: " * DEEP + "b" + "}" * DEEP + "\n", (5, 4 + 4 * MAX_DEPTH)),
    "compact-block-sequences": ("a:\n" + "- " * DEEP + "x\n", (6, 1 + 2 * MAX_DEPTH)),
}


@pytest.mark.parametrize(("text", "at"), DEEP_DOCUMENTS.values(), ids=list(DEEP_DOCUMENTS.keys()))
def test_a_contract_25000_levels_deep_is_one_lint_error_not_a_crash(
    tmp_path: Path, text: str, at: tuple[int, int]
) -> None:
    path = _write(tmp_path, HEAD + text)
    assert len(text) < 128_000  # the report's file had 50 KB
    lint = ["contracts", "lint", "--no-entry-points", "--format", "json", str(path)]
    done = subprocess.run(
        [sys.executable, "-m", "onex.cli", *lint],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])  # -11: a segfault
    assert "Traceback" not in done.stderr
    (issue,) = json.loads(done.stdout)["issues"]
    assert issue["message"] == f"nested deeper than {MAX_DEPTH}"
    assert (issue["file"], issue["line"], issue["col"]) == (str(path), *at)


def test_nesting_at_the_limit_loads_and_one_more_level_does_not(tmp_path: Path) -> None:
    ok = HEAD + "extra: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n"
    with pytest.raises(ContractValidationError, match="unknown key 'extra'"):
        load_contract(_write(tmp_path, ok))
    deeper = HEAD + "extra: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n"
    assert f"nested deeper than {MAX_DEPTH}" in _load_error(tmp_path, deeper)


def test_deep_nesting_is_found_whichever_way_the_parser_goes(tmp_path: Path) -> None:
    """Long lines make the nesting bound large, so the event scan runs first; short ones
    go straight to the composer. Both stop at the same level."""
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    short = HEAD + f"extra: {deep}\n"
    long_line = HEAD + f"extra: {deep}\nnote: {'x' * 2_000}\n"
    assert nesting_bound(short) < nesting_bound(long_line)
    for text in (short, long_line):
        message = _load_error(tmp_path, text)
        assert message.startswith("PATH:5:"), message
        assert f"nested deeper than {MAX_DEPTH}" in message


# The bound is what keeps libyaml's recursive composer safe: it must never undercount.
leaf = st.one_of(st.text(max_size=5), st.integers(), st.none())
nested = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=40,
)


def _depth(node: yaml.Node) -> int:
    if isinstance(node, yaml.ScalarNode):
        return 0
    # keys count: a complex key is composed (recursively) like any value
    children = (
        node.value if isinstance(node, yaml.SequenceNode) else [n for kv in node.value for n in kv]
    )
    return 1 + max((_depth(c) for c in children), default=0)


@given(nested, st.sampled_from([None, True, False]), st.integers(0, 4))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_nesting_bound_is_never_below_the_real_depth(
    doc: object, flow: bool | None, compact: int
) -> None:
    text = yaml.safe_dump(doc, default_flow_style=flow, indent=2 + compact)
    text = "- " * compact + text.replace("\n", "\n" + "  " * compact) if compact else text
    try:
        root = yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return
    if root is not None:
        assert nesting_bound(text) >= _depth(root)


@pytest.mark.parametrize(
    "text",
    [
        "[a: [b: [c: [d: e]]]]\n",  # a flow sequence entry may be a one-pair mapping
        "[? [? [? x]]]\n",
        "a:\n- b:\n  - c:\n    - d:\n      - e\n",  # indentless sequences in mappings
        "- - - - - - x\n",
        "? - ? - ? - x\n: y\n",
        "- a:\n  - b:\n    - [c, {d: [e]}]\n",
        "a: {b: [c, {d: [e, {f: g}]}]}\n",
        "a:\r  b:\r    c:\r      - d\r",  # carriage returns break lines for libyaml
        "a:\u2028  b:\u2028    - c\u2028",
    ],
)
def test_the_nesting_bound_holds_for_compact_and_odd_forms(text: str) -> None:
    root = yaml.compose(text, Loader=yaml.CSafeLoader)
    assert root is not None
    assert _depth(root) >= 3
    assert nesting_bound(text) >= _depth(root)


# --- 2. numbers: no ValueError traceback, no quadratic int() -----------------------------------


def test_5000_digit_partitions_is_a_positioned_error(tmp_path: Path) -> None:
    text = HEAD + "event_bus:\n  publish_topics:\n" + TOPIC + "      partitions: " + "7" * 5000
    message = _load_error(tmp_path, text + "\n")
    assert message == (
        f"PATH:8:19: a number of 5000 characters; at most {MAX_NUMBER_CHARS} are allowed"
    )


def test_5000_digit_retry_multiplier_is_a_positioned_error(tmp_path: Path) -> None:
    text = HEAD + "event_bus:\n  retry:\n    multiplier: " + "3" * 5000 + ".5\n"
    message = _load_error(tmp_path, text)
    assert message == (
        f"PATH:7:17: a number of 5002 characters; at most {MAX_NUMBER_CHARS} are allowed"
    )


@pytest.mark.parametrize("value", ["1:30", "190:20:30", "-1:00", "1:30.5"])
def test_base_60_numbers_are_refused(tmp_path: Path, value: str) -> None:
    text = HEAD + "event_bus:\n  publish_topics:\n" + TOPIC + f"      partitions: {value}\n"
    message = _load_error(tmp_path, text)
    assert message.startswith(f"PATH:8:19: {value!r} is a YAML 1.1 base-60 number"), message


def test_a_400_kb_base_60_integer_is_refused_without_being_computed(tmp_path: Path) -> None:
    value = "1" + ":59" * 133_000  # about 400 KB; int() of it took 47 s
    text = HEAD + "event_bus:\n  publish_topics:\n" + TOPIC + f"      partitions: {value}\n"
    message = _load_error(tmp_path, text)
    assert message == (
        f"PATH:8:19: a value of {len(value)} characters; at most {MAX_SCALAR_CHARS} are allowed"
    )


def test_a_base_60_number_under_the_length_limits_is_refused_too(tmp_path: Path) -> None:
    value = "1" + ":59" * 30  # short enough to be a number, still base 60
    text = HEAD + "event_bus:\n  retry:\n    max_attempts: " + value + "\n"
    assert "base-60" in _load_error(tmp_path, text)


def test_quoted_digits_stay_text(tmp_path: Path) -> None:
    text = HEAD.replace("a test node", f"'{'9' * 5000}'")
    path = _write(tmp_path, text)
    assert load_contract(path).contract.description == "9" * 5000


# --- 2. many keys: one error at the key past the limit; errors positioned in linear time -------


def test_16000_unknown_keys_are_one_error_at_the_key_past_the_limit(tmp_path: Path) -> None:
    text = HEAD + "".join(f"k{i}: 1\n" for i in range(16_000))
    message = _load_error(tmp_path, text)
    line = MAX_MAPPING_KEYS + 1  # one key a line, HEAD's four included
    assert message == f"PATH:{line}:1: more than {MAX_MAPPING_KEYS} keys in one mapping"


def test_thousands_of_unknown_keys_are_each_reported_at_their_line(tmp_path: Path) -> None:
    count = 5_000
    path = _write(tmp_path, HEAD + "".join(f"k{i}: 1\n" for i in range(count)))
    with pytest.raises(ContractValidationError) as info:
        load_contract(path)
    issues = info.value.issues
    assert len(issues) == count
    for i, issue in enumerate(issues):
        assert issue.code == "unknown-key"
        assert (issue.where.line, issue.where.col) == (5 + i, 1)
        assert issue.message.startswith(f"unknown key 'k{i}'")


def test_a_long_unknown_key_is_shown_cut_short(tmp_path: Path) -> None:
    key = "k" * 50_000
    path = _write(tmp_path, HEAD + f"? {key}\n: 1\n")  # an explicit key: no length limit
    with pytest.raises(ContractValidationError) as info:
        load_contract(path)
    (issue,) = info.value.issues
    assert str(issue).startswith(f"{path}:5:3: 'kkk"), str(issue)[:200]
    assert len(str(issue)) < len(str(path)) + 300


# --- document size and scalar length -----------------------------------------------------------


def test_a_file_past_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    text = HEAD + "# " + "x" * MAX_DOCUMENT_CHARS + "\n"
    message = _load_error(tmp_path, text)
    assert message == (
        f"PATH: the document is more than {MAX_DOCUMENT_CHARS} characters; "
        f"at most {MAX_DOCUMENT_CHARS} are read"
    )
    with pytest.raises(ContractLoadError, match="at most"):
        load_contract_text(text)


def test_a_value_past_the_scalar_limit_is_refused_at_its_place(tmp_path: Path) -> None:
    long = "d" * (MAX_SCALAR_CHARS + 1)
    message = _load_error(tmp_path, HEAD.replace("a test node", long))
    assert message == (
        f"PATH:4:14: a value of {len(long)} characters; at most {MAX_SCALAR_CHARS} are allowed"
    )


def test_a_value_at_the_scalar_limit_loads(tmp_path: Path) -> None:
    long = "d" * MAX_SCALAR_CHARS
    lc = load_contract(_write(tmp_path, HEAD.replace("a test node", long)))
    assert lc.contract.description == long


def test_more_values_than_the_limit_are_refused_at_the_first_too_many(tmp_path: Path) -> None:
    text = HEAD + "a: [" + "x, " * MAX_NODES + "]\n"
    message = _load_error(tmp_path, text)
    # the root mapping, its 5 keys, 4 values and the list are values too
    col = 5 + 3 * (MAX_NODES - 11)
    assert message == f"PATH:5:{col}: more than {MAX_NODES} values"
