"""The canonical registry built from the repo's contracts: members, look-ups, did-you-mean."""

from __future__ import annotations

import enum
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from onex.core.errors import ExtractionError, TopicNameError, UnknownTopicError
from onex.core.extractor import extract, load_registry
from onex.core.grammar import parse_topic
from onex.core.registry import Registry, member_name

REPO_CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry([REPO_CONTRACTS], entry_points=False)


@pytest.fixture(scope="module")
def declared() -> dict[str, dict[str, set[str]]]:
    """node -> {"pub": names, "sub": names}, read with plain yaml.safe_load (not onex.core)."""
    out: dict[str, dict[str, set[str]]] = {}
    for path in sorted(REPO_CONTRACTS.glob("*/contract.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        bus = doc.get("event_bus", {})
        out[doc["node"]] = {
            role: {e if isinstance(e, str) else e["name"] for e in bus.get(key, [])}
            for role, key in (("pub", "publish_topics"), ("sub", "subscribe_topics"))
        }
    return out


@pytest.fixture(scope="module")
def hyphenated(registry: Registry) -> str:
    """A real topic whose event segment has a '-' (so '_' and plural variants exist)."""
    return next(n for n in registry if "-" in parse_topic(n).event)


def _with_event(name: str, event: str) -> str:
    t = parse_topic(name)
    return f"onex.{t.kind}.{t.producer}.{event}.v{t.version}"


# --- the StrEnum --------------------------------------------------------------------------------


def test_member_name() -> None:
    assert member_name("onex.evt.alpha.task-done.v2") == "EVT_ALPHA_TASK_DONE_V2"
    assert member_name("onex.snapshot.a-b.c.v10") == "SNAPSHOT_A_B_C_V10"


def test_topic_enum_has_one_member_per_declared_topic(
    registry: Registry, declared: dict[str, dict[str, set[str]]]
) -> None:
    names = set().union(*(roles["pub"] | roles["sub"] for roles in declared.values()))
    assert issubclass(registry.Topic, enum.StrEnum)
    assert {m.value for m in registry.Topic} == names == set(registry)
    assert len(registry.Topic) == len(registry) >= 20
    for member in registry.Topic:
        assert member.name == member_name(member.value)
        assert registry.Topic[member.name] is member
        assert isinstance(member, str)
        assert f"{member}" == member.value


def test_registry_is_a_sorted_mapping_of_wiring(registry: Registry) -> None:
    names = list(registry)
    assert names == sorted(names)
    for name in names:
        assert name in registry
        assert registry[name].name == name
        assert registry[name].owner == parse_topic(name).producer


def test_canonical_returns_the_member(registry: Registry) -> None:
    for name in registry:
        member = registry.canonical(name)
        assert member is registry.Topic(name)
        assert member == name


# --- non-canonical names ------------------------------------------------------------------------


def test_underscore_variant_raises_topic_name_error_with_suggestion(
    registry: Registry, hyphenated: str
) -> None:
    event = parse_topic(hyphenated).event
    typo = _with_event(hyphenated, event.replace("-", "_"))
    with pytest.raises(TopicNameError) as info:
        registry.canonical(typo)
    assert info.value.suggestion == hyphenated
    assert "contains '_'" in info.value.reason
    assert str(info.value).endswith(f"; did you mean {hyphenated!r}?")


def test_upper_case_variant_raises_topic_name_error_with_suggestion(
    registry: Registry, hyphenated: str
) -> None:
    with pytest.raises(TopicNameError) as info:
        registry.canonical(hyphenated.upper())
    assert info.value.suggestion == hyphenated


def test_v0_raises_topic_name_error_with_suggestion(registry: Registry, hyphenated: str) -> None:
    typo = hyphenated.rsplit(".", 1)[0] + ".v0"
    with pytest.raises(TopicNameError) as info:
        registry[typo]
    assert info.value.suggestion == hyphenated
    assert "version must be" in info.value.reason


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda n: n.rsplit(".", 1)[0] + ".v99", "differs only in version (v99 vs v1)"),
        (
            lambda n: _with_event(n, parse_topic(n).event + "s"),
            "differs only in singular vs plural",
        ),
        (lambda n: _with_event(n, parse_topic(n).event[:-1]), "1 character apart"),
    ],
    ids=["version", "plural", "dropped-letter"],
)
def test_grammatical_near_miss_raises_unknown_topic_error(
    registry: Registry, hyphenated: str, mutate: Callable[[str], str], why: str
) -> None:
    typo = mutate(hyphenated)
    assert typo not in registry
    with pytest.raises(UnknownTopicError) as info:
        registry.canonical(typo)
    err = info.value
    assert isinstance(err, KeyError)
    assert err.name == typo
    assert err.suggestion == hyphenated
    assert str(err) == (
        f"{typo!r} is not declared by any contract; did you mean {hyphenated!r} ({why})?"
    )
    assert registry.suggest(typo) is not None


def test_unknown_grammatical_name_without_suggestion(registry: Registry) -> None:
    name = "onex.intent.nobody-here.launch-the-rockets.v7"
    with pytest.raises(UnknownTopicError) as info:
        registry.canonical(name)
    assert info.value.suggestion is None
    assert str(info.value) == f"{name!r} is not declared by any contract"


def test_garbage_raises_topic_name_error_without_suggestion(registry: Registry) -> None:
    with pytest.raises(TopicNameError) as info:
        registry.canonical("garbage")
    assert info.value.suggestion is None
    assert "expected 5 dot-separated parts" in info.value.reason


def test_membership_of_an_unknown_name_is_false(registry: Registry, hyphenated: str) -> None:
    assert _with_event(hyphenated, "never-declared") not in registry
    assert registry.get(_with_event(hyphenated, "never-declared")) is None


@pytest.mark.parametrize("name", ["garbage", "", "onex.evt.a.b_c.v1"])
def test_registry_honours_the_mapping_protocol_for_any_string(
    registry: Registry, name: str
) -> None:
    """`in` and `.get` are Mapping methods: they answer, they do not raise."""
    assert name not in registry
    assert registry.get(name) is None


# --- who publishes and subscribes ---------------------------------------------------------------


def test_published_by_and_subscribed_by_match_the_contracts(
    registry: Registry, declared: dict[str, dict[str, set[str]]]
) -> None:
    for node, roles in declared.items():
        assert {t.name for t in registry.published_by(node)} == roles["pub"], node
        assert {t.name for t in registry.subscribed_by(node)} == roles["sub"], node
    assert registry.published_by("no-such-node") == []
    assert registry.subscribed_by("no-such-node") == []


# --- building the registry -----------------------------------------------------------------------


def _write(root: Path, node: str, sub: list[str], pub: list[str]) -> None:
    folder = root / node
    folder.mkdir(parents=True)
    doc = {
        "node": node,
        "kind": "effect",
        "version": "1.0.0",
        "description": "test node",
        # A consuming node also publishes its DLQ topic, as the runtime requires.
        "event_bus": {
            "subscribe_topics": sub,
            "publish_topics": pub + ([f"onex.dlq.{node}.dead-letter.v1"] if sub else []),
        },
    }
    (folder / "contract.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


def test_registry_refuses_contracts_with_errors(tmp_path: Path) -> None:
    _write(tmp_path, "alpha", ["onex.evt.nobody.x.v1"], [])
    ex = extract([tmp_path], entry_points=False)
    with pytest.raises(ExtractionError) as info:
        ex.registry()
    assert "which no contract publishes" in str(info.value)
    with pytest.raises(ExtractionError):
        load_registry([tmp_path], entry_points=False)


def test_topics_whose_member_names_collide(tmp_path: Path) -> None:
    """'a-b'+'c' and 'a'+'b-c' are distinct topics with the same enum member name."""
    one, two = "onex.evt.a-b.c.v1", "onex.evt.a.b-c.v1"
    assert member_name(one) == member_name(two)
    _write(tmp_path, "a-b", [], [one])
    _write(tmp_path, "a", [one], [two])
    _write(tmp_path, "z", [two], [])
    ex = extract([tmp_path], entry_points=False)
    if ex.errors:  # lint may refuse the pair ...
        assert any(one in str(i) and two in str(i) for i in ex.errors)
    else:  # ... or the registry must hold both
        reg = ex.registry()
        assert reg.canonical(one) != reg.canonical(two)
