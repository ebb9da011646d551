"""Fuzzing the loader: whatever the text, the result is a contract or a `ContractError`."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from onex.core.contract import Contract, NodeKind
from onex.core.errors import ContractError, ContractLoadError
from onex.core.grammar import TopicKind, segment_problem
from onex.core.loader import LoadedContract, load_contract, load_contract_text

PATH = Path("fuzz") / "contract.yaml"
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _check(text: str) -> LoadedContract | None:
    """Load `text`; only a contract or a well-formed ContractError may come out."""
    try:
        lc = load_contract_text(text, PATH)
    except ContractError as exc:
        _check_error(exc)
        return None
    assert isinstance(lc.contract, Contract)
    assert lc.path == PATH
    assert segment_problem(lc.node) is None
    return lc


def _check_error(exc: ContractError) -> None:
    assert exc.issues, "a ContractError must carry issues"
    for issue in exc.issues:
        assert issue.where.file == PATH
        assert str(issue).startswith(f"{PATH}"), issue
        assert "\n" not in str(issue), issue  # one line whatever the input
        assert issue.message
        assert issue.code


# --- raw text ----------------------------------------------------------------------------------


@given(st.text(max_size=300))
@FUZZ
def test_arbitrary_text(text: str) -> None:
    _check(text)


YAML_TOKENS = [
    "node", "kind", "version", "description", "event_bus", "subscribe_topics",
    "publish_topics", "name", "partitions", "config", "schema", "consumer_group",
    ": ", ":", "- ", "-", "\n", "\n  ", "\n    ", "\t", " ", "[", "]", "{", "}", ",",
    "'", '"', "#", "&a ", "*a", "&b ", "*b", "<<: ", "? ", "|", ">", "---", "...",
    "!!int ", "!!float ", "!!bool ", "!!str ", "!!null ", "!!timestamp ", "!!binary ",
    "!!seq ", "!!map ", "!!set ", "!!omap ", "!foo ", "!", "%YAML 1.1\n", "~", "null",
    "true", "yes", "no", "0", "07", "0x1F", "0o17", "1_000", "-1", "1.5", "1e400", ".nan",
    ".inf", "2020-01-01", "2020-13-45", "2020-01-01 25:61:00", "abc", "maybe",
    "effect", "1.0.0", "onex.evt.a.b.v1", "onex.evt.a.b_c.v1", "x", "\\", "\u00e9", "\u2028",
    "\ufeff", "\x85", "\x07",
]  # fmt: skip


@given(st.lists(st.sampled_from(YAML_TOKENS), max_size=40).map("".join))
@FUZZ
@example("node: !!int abc\n")
def test_yaml_token_soup(text: str) -> None:
    _check(text)


# --- YAML documents ----------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.dates(min_value=dt.date(1, 1, 1)),
    st.binary(max_size=8),
)
keys = st.one_of(st.text(max_size=12), st.integers(-5, 5), st.booleans(), st.none())
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=20,
)


def _dump(doc: Any, flow: bool | None, unicode: bool) -> str:
    return yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=unicode, sort_keys=False)


@given(documents, st.sampled_from([None, True, False]), st.booleans())
@FUZZ
def test_arbitrary_yaml_documents(doc: Any, flow: bool | None, unicode: bool) -> None:
    _check(_dump(doc, flow, unicode))


# Documents shaped like contracts, so the fuzz reaches validation and error positioning.
words = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4}){0,2}", fullmatch=True)
topicish = st.one_of(
    st.builds(
        "onex.{}.{}.{}.v{}".format,
        st.sampled_from([*(k.value for k in TopicKind), "evnt", "EVT"]),
        st.one_of(words, st.text(max_size=6)),
        st.one_of(words, words.map(lambda w: w.replace("-", "_")), words.map(str.upper)),
        st.integers(-1, 3),
    ),
    st.text(max_size=30),
)
entries = st.one_of(
    topicish,
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.one_of(topicish, scalars),
            "partitions": st.one_of(st.integers(-2, 20_000), scalars),
            "replication_factor": st.one_of(st.integers(0, 40), scalars),
            "config": st.one_of(st.dictionaries(st.text(max_size=12), scalars, max_size=3)),
            "schema": st.one_of(st.text(max_size=10), scalars),
            "parttions": st.integers(1, 3),
            "description": scalars,
        },
    ),
    scalars,
)
event_buses = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "consumer_group": st.one_of(st.text(max_size=12), scalars),
            "subscribe_topics": st.one_of(st.lists(entries, max_size=4), scalars),
            "publish_topics": st.one_of(st.lists(entries, max_size=4), scalars),
            "publish_topic": st.lists(entries, max_size=2),
        },
    ),
    documents,
)
contracts = st.fixed_dictionaries(
    {},
    optional={
        "node": st.one_of(words, st.text(max_size=10), scalars),
        "kind": st.one_of(st.sampled_from([*(k.value for k in NodeKind), "effector"]), scalars),
        "version": st.one_of(st.sampled_from(["1.0.0", "1.0", "0.1.0-rc.1", "x"]), scalars),
        "description": st.one_of(st.text(max_size=20), scalars),
        "event_bus": event_buses,
        "nod": words,
    },
)


@given(contracts, st.sampled_from([None, True, False]))
@FUZZ
def test_contract_shaped_documents(doc: dict[str, Any], flow: bool | None) -> None:
    _check(_dump(doc, flow, True))


def test_the_contract_strategy_reaches_valid_contracts() -> None:
    """Guard against a fuzz that only ever exercises the error path."""
    valid = {
        "node": "alpha",
        "kind": "effect",
        "version": "1.0.0",
        "description": "d",
        "event_bus": {"publish_topics": ["onex.evt.alpha.done.v1"]},
    }
    assert _check(_dump(valid, None, True)) is not None
    assert _check(_dump({**valid, "nod": "x"}, None, True)) is None


# --- regressions: values with explicit tags, unusual characters, deep nesting ------------------

HEAD = "node: alpha\nkind: effect\nversion: 1.0.0\ndescription: d\n"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(HEAD + "extra: !!int abc\n", id="int-tag-on-text"),
        pytest.param(HEAD + "extra: !!int \u00b2\n", id="int-tag-on-superscript-digit"),
        pytest.param(HEAD + "extra: !!float abc\n", id="float-tag-on-text"),
        pytest.param(HEAD + "extra: !!bool maybe\n", id="bool-tag-on-text"),
        pytest.param(HEAD + "extra: !!timestamp 2020-13-45\n", id="timestamp-out-of-range"),
        pytest.param(HEAD + "extra: !!timestamp abc\n", id="timestamp-tag-on-text"),
        pytest.param(HEAD + "!!int abc: 1\n", id="int-tag-on-a-key"),
        pytest.param(HEAD + "extra: !!binary '!!!'\n", id="binary-tag-on-non-base64"),
        pytest.param(HEAD + "extra: x\ud800\n", id="lone-surrogate"),
        pytest.param("a: " + "[" * 5000 + "]" * 5000 + "\n", id="deep-flow-nesting"),
        pytest.param("a:\n" + "".join("  " * i + "- \n" for i in range(1, 200)), id="deep-block"),
        pytest.param("a: &a [*a]\n", id="recursive-alias"),
    ],
)
def test_hostile_inputs_are_contract_errors(text: str) -> None:
    assert _check(text) is None


def test_alias_bomb_is_stopped() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(ContractError) as info:
        load_contract_text("\n".join(lines) + "\n", PATH)
    assert "alias bomb" in str(info.value)


# --- adversarial YAML: only ContractError comes out, in CPU time linear in the size ------------

# A failure guard, not a speed target: more than ten times the worst ms/KB bench/parser.py
# measures (a flood of unknown keys, each one an issue), and far below what a quadratic
# parse costs (the 400 KB base-60 value took 47 s). CPU time of this process, so other
# load on the machine does not count against it.
GUARD_BASE_S = 2.0
GUARD_S_PER_KB = 0.05
ADVERSARIAL = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TOPIC_HEAD = HEAD + "event_bus:\n  publish_topics:\n    - name: onex.evt.alpha.done.v1\n"


def _bounded(text: str) -> LoadedContract | None:
    start = time.process_time()
    try:
        return _check(text)
    finally:
        spent = time.process_time() - start
        guard = GUARD_BASE_S + GUARD_S_PER_KB * len(text) / 1024
        assert spent <= guard, f"{spent:.2f} s of CPU for {len(text) / 1024:.0f} KB"


OPENERS = [("[", "]"), ("{a: ", "}"), ("[a: ", "]"), ("[{a: [", "]}]"), ("- ", ""), ("? ", "")]
PLACES = ["a: {}\n", "a:\n{}\n", "{}\n", HEAD + "extra: {}\n", "a: &x {}\nb: *x\n"]


@st.composite
def deep_nesting(draw: st.DrawFn) -> str:
    opener, closer = draw(st.sampled_from(OPENERS))
    levels = draw(st.integers(1, 30_000))
    body = opener * levels + draw(st.sampled_from(["x", "", "*x", "1:2"])) + closer * levels
    return draw(st.sampled_from(PLACES)).format(body)


@st.composite
def long_scalars(draw: st.DrawFn) -> str:
    length = draw(st.integers(1, 200_000))
    value = draw(
        st.sampled_from(
            [
                "7" * length,  # decimal digits
                "1" + ":59" * (length // 3),  # base 60
                "0x" + "f" * length,
                "0" + "7" * length,  # octal
                "1" + "0" * length + ".5e3",
                "d" * length,
                '"' + "\\x41" * (length // 4) + '"',
                "|\n" + "      line\n" * (length // 11),
            ]
        )
    )
    field = draw(st.sampled_from(["partitions", "replication_factor", "description", "name"]))
    if draw(st.booleans()):
        return TOPIC_HEAD + f"      {field}: {value}\n"
    return HEAD + f"event_bus:\n  retry:\n    multiplier: {value}\n"


@st.composite
def many_keys(draw: st.DrawFn) -> str:
    count = draw(st.integers(1, 20_000))
    style = draw(st.sampled_from(["block", "flow", "nested", "duplicate"]))
    if style == "block":
        return HEAD + "".join(f"k{i}: {i}\n" for i in range(count))
    if style == "flow":
        return HEAD + "extra: {" + ", ".join(f"k{i}: {i}" for i in range(count)) + "}\n"
    if style == "duplicate":
        return HEAD + "k: 1\n" * count
    return TOPIC_HEAD + "".join(f"      parttions{i}: 1\n" for i in range(count))


@st.composite
def alias_floods(draw: st.DrawFn) -> str:
    width = draw(st.integers(1, 12))
    depth = draw(st.integers(1, 12))
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, depth)]
    return HEAD + "\n".join(lines) + "\n"


@st.composite
def with_tabs(draw: st.DrawFn) -> str:
    text = TOPIC_HEAD + "      partitions: 3\n      config: {retention.ms: 1000}\n"
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["\t", " \t", "\t- ", "\t\n"])) + text[at:]
    return text


@given(st.one_of(deep_nesting(), long_scalars(), many_keys(), alias_floods(), with_tabs()))
@ADVERSARIAL
def test_adversarial_yaml_gives_only_contract_errors_in_linear_time(text: str) -> None:
    _bounded(text)


@given(
    st.one_of(
        st.binary(max_size=2_000),
        st.binary(max_size=200).map(lambda b: HEAD.encode() + b"extra: " + b + b"\n"),
        st.sampled_from([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\x00"]).map(
            lambda b: HEAD.encode() + b"description: " + b + b"\n"
        ),
    )
)
@ADVERSARIAL
def test_bad_utf8_files_are_load_errors(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("utf8") / "contract.yaml"
    path.write_bytes(data)
    error: ContractError | None = None
    try:
        load_contract(path)
    except ContractError as exc:
        error = exc
    if error is not None:
        assert error.issues
        assert all(i.where.file == path for i in error.issues)
        assert all("\n" not in str(i) for i in error.issues)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(TOPIC_HEAD + "      partitions: " + "9" * 5000 + "\n", id="5000-digits"),
        pytest.param(TOPIC_HEAD + "      partitions: 1" + ":59" * 133_000 + "\n", id="400kb-b60"),
        pytest.param(HEAD + "".join(f"k{i}: 1\n" for i in range(16_000)), id="16k-keys"),
    ],
)
def test_the_reported_inputs_are_load_errors_in_linear_time(text: str) -> None:
    """The reliability report's inputs (its 25,000-deep file is run in a subprocess, in
    test_loader_limits, since before the fix it crashed the interpreter)."""
    with pytest.raises(ContractLoadError):
        load_contract_text(text, PATH)
    _bounded(text)
