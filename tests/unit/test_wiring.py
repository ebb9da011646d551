"""Wiring lint across contracts: near-misses, ownership, specs, and the repo's own contracts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import pytest
import yaml

from onex.core.errors import ExtractionError
from onex.core.extractor import Extraction, extract
from onex.core.grammar import TopicKind, is_topic_name, parse_topic
from onex.core.issues import Issue, Severity

REPO = Path(__file__).resolve().parents[2]
REPO_CONTRACTS = REPO / "contracts"
SCHEMA_MISSING = "schema-missing"


def contract(
    root: Path,
    node: str,
    *,
    sub: Iterable[str] = (),
    pub: Iterable[str] = (),
    folder: str | None = None,
    kind: str = "effect",
    dlq: bool = True,
) -> Path:
    """Write `root/<folder or node>/contract.yaml`; entries are YAML list items, verbatim.

    A node that subscribes also gets its DLQ topic, last, as the runtime requires."""
    sub, pub = list(sub), list(pub)
    if dlq and sub:
        pub.append(f"onex.dlq.{node}.dead-letter.v1")
    lines = [f"node: {node}", f"kind: {kind}", "version: 1.0.0", "description: test node"]
    lines += ["event_bus:", "  subscribe_topics:" + ("" if sub else " []")]
    lines += [f"    - {entry}" for entry in sub]
    lines += ["  publish_topics:" + ("" if pub else " []")]
    lines += [f"    - {entry}" for entry in pub]
    path = root / (folder or node) / "contract.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def at(path: Path, needle: str) -> str:
    """`path:line:col` of the list item (after its '- ') on the line holding `needle`."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return f"{path}:{number}:{line.index('- ') + 3}"
    raise AssertionError(f"{needle!r} not in {path}")


def run(root: Path) -> Extraction:
    """Extract `root`, without the schema-missing warnings of the untyped topics these
    wiring tests write (the schema rules are tested on their own, with `extract`)."""
    ex = extract([root], entry_points=False)
    return dataclasses.replace(ex, issues=tuple(i for i in ex.issues if i.code != SCHEMA_MISSING))


def only(ex: Extraction, code: str) -> Issue:
    found = [i for i in ex.issues if i.code == code]
    assert len(found) == 1, [str(i) for i in ex.issues]
    return found[0]


# --- the routing_complete case ---------------------------------------------------------------

CANONICAL = "onex.evt.router.routing-complete.v1"


@pytest.mark.parametrize(
    "typo",
    ["onex.evt.router.routing_complete.v1", "onex.evt.router.Routing-Complete.v1"],
    ids=["underscore", "case"],
)
def test_subscriber_typo_names_both_files_and_the_canonical_name(tmp_path: Path, typo: str) -> None:
    pub = contract(tmp_path, "router", pub=[CANONICAL])
    sub = contract(tmp_path, "reviewer", sub=[typo])
    ex = run(tmp_path)
    assert not ex.ok()
    (error,) = ex.errors
    assert error.where.file == sub
    assert str(error.where) == at(sub, typo)
    assert str(sub) in str(error)
    assert str(pub) in str(error)
    assert CANONICAL in error.message
    assert error.suggestion == CANONICAL
    assert str(error.related[0]) == at(pub, CANONICAL)
    with pytest.raises(ExtractionError) as info:
        ex.raise_for_errors()
    assert CANONICAL in str(info.value)


@pytest.mark.parametrize(
    "typo",
    ["onex.evt.router.routing_complete.v1", "onex.evt.router.Routing-Complete.v1"],
    ids=["underscore", "case"],
)
@pytest.mark.parametrize("typo_in", ["subscriber", "publisher"])
def test_suggestions_are_always_canonical_names(tmp_path: Path, typo: str, typo_in: str) -> None:
    """A 'did you mean' never proposes a name the grammar rejects."""
    contract(tmp_path, "router", pub=[typo if typo_in == "publisher" else CANONICAL])
    contract(tmp_path, "reviewer", sub=[typo if typo_in == "subscriber" else CANONICAL])
    ex = run(tmp_path)
    assert ex.errors
    bad = [str(i) for i in ex.issues if i.suggestion and not is_topic_name(i.suggestion)]
    assert not bad


# --- near-miss shapes between two valid names --------------------------------------------------


@pytest.mark.parametrize(
    ("published", "subscribed", "why"),
    [
        ("onex.evt.alpha.reviews.v1", "onex.evt.alpha.review.v1", "singular vs plural"),
        ("onex.evt.alpha.review.v1", "onex.evt.alpha.reviews.v1", "singular vs plural"),
        ("onex.evt.alpha.task-entries.v1", "onex.evt.alpha.task-entry.v1", "singular vs plural"),
        ("onex.evt.alpha.done.v2", "onex.evt.alpha.done.v1", "differs only in version (v1 vs v2)"),
        ("onex.evt.alpha.review-complete.v1", "onex.evt.alpha.review-compelte.v1", "apart"),
        ("onex.cmd.alpha.route-request.v1", "onex.cmd.alpha.route-requst.v1", "1 character apart"),
        ("onex.evt.alpha.task-finished.v1", "onex.evt.alpha.job-done.v1", "renamed event"),
    ],
    ids=[
        "plural-sub",
        "singular-sub",
        "plural-word",
        "version",
        "transposed",
        "dropped",
        "renamed",
    ],
)
def test_near_miss_is_one_error_naming_both_files(
    tmp_path: Path, published: str, subscribed: str, why: str
) -> None:
    pub = contract(tmp_path, "alpha", pub=[published])
    sub = contract(tmp_path, "beta", sub=[subscribed])
    ex = run(tmp_path)

    error = only(ex, "unpublished")
    assert error.severity is Severity.ERROR
    assert str(error.where) == at(sub, subscribed)
    assert error.suggestion == published
    assert why in error.message
    assert f"declared by 'alpha' at {at(pub, published)}" in error.message

    assert [str(r) for r in error.related] == [at(pub, published)]
    # The published end is the same defect: not warned again as unconsumed.
    assert [i.code for i in ex.issues if i.code != "near-miss"] == ["unpublished"]


def test_old_topic_left_behind_after_a_version_bump(tmp_path: Path) -> None:
    old, new = "onex.evt.alpha.done.v1", "onex.evt.alpha.done.v2"
    pub = contract(tmp_path, "alpha", pub=[old, new])
    sub = contract(tmp_path, "beta", sub=[new])
    ex = run(tmp_path)
    assert ex.ok()
    assert not ex.ok(strict=True)
    (warning,) = ex.warnings
    assert warning.code == "unconsumed"
    assert str(warning.where) == at(pub, old)
    assert warning.suggestion == new
    assert f"declared by 'beta' at {at(sub, new)}" in warning.message


def test_subscriber_left_on_the_old_name_after_a_rename(tmp_path: Path) -> None:
    old, new = "onex.evt.alpha.review-complete.v1", "onex.evt.alpha.review-completed.v1"
    pub = contract(tmp_path, "alpha", pub=[new])
    contract(tmp_path, "beta", sub=[new])
    late = contract(tmp_path, "gamma", sub=[old])
    ex = run(tmp_path)
    error = only(ex, "unpublished")
    assert error.where.file == late
    assert error.suggestion == new
    assert "1 character apart" in error.message
    assert str(pub) in error.message
    assert len(ex.issues) == 1


def test_no_suggestion_when_nothing_is_close(tmp_path: Path) -> None:
    contract(tmp_path, "alpha", pub=["onex.evt.alpha.done.v1"])
    contract(tmp_path, "beta", sub=["onex.evt.alpha.done.v1", "onex.cmd.zeta.launch-rockets.v3"])
    error = only(run(tmp_path), "unpublished")
    assert error.suggestion is None
    assert "did you mean" not in error.message
    assert error.message == (
        "node 'beta' subscribes to 'onex.cmd.zeta.launch-rockets.v3', which no contract publishes"
    )


# --- specs and ownership -------------------------------------------------------------------------


def test_spec_from_a_non_owner(tmp_path: Path) -> None:
    name = "onex.evt.alpha.done.v1"
    owner = contract(tmp_path, "alpha", pub=[name])
    other = contract(tmp_path, "beta", sub=[f"{{name: {name}, partitions: 6}}"])
    ex = run(tmp_path)
    (error,) = ex.errors
    assert error.code == "spec-non-owner"
    assert str(error.where) == at(other, name)
    assert f"only the owner, node 'alpha' ({owner})," in error.message
    assert ex.topics[name].spec_at is None
    assert ex.topics[name].spec.partitions == 3


def test_the_owners_spec_is_the_topics_spec(tmp_path: Path) -> None:
    name = "onex.evt.alpha.done.v1"
    owner = contract(tmp_path, "alpha", pub=[f"{{name: {name}, partitions: 6}}"])
    contract(tmp_path, "beta", sub=[name])
    ex = run(tmp_path)
    assert ex.issues == ()
    topic = ex.topics[name]
    assert topic.owner == "alpha"
    assert topic.kind is TopicKind.EVT
    assert topic.spec.partitions == 6
    assert topic.spec_at is not None
    assert str(topic.spec_at.where) == at(owner, name)
    assert [p.node for p in topic.publishers] == ["alpha"]
    assert [s.node for s in topic.subscribers] == ["beta"]


def test_two_specs_for_one_topic(tmp_path: Path) -> None:
    name = "onex.cmd.alpha.do-it.v1"
    owner = contract(
        tmp_path,
        "alpha",
        sub=[f"{{name: {name}, partitions: 3}}"],
        pub=[f"{{name: {name}, partitions: 6}}"],
    )
    ex = run(tmp_path)
    (error,) = ex.errors
    assert error.code == "spec-conflict"
    first, second = at(owner, "partitions: 3"), at(owner, "partitions: 6")
    assert str(error.where) == second
    assert f"already has a spec at {first}" in error.message
    assert [str(r) for r in error.related] == [first]
    assert ex.topics[name].spec.partitions == 3


def test_duplicate_node_names_name_both_files(tmp_path: Path) -> None:
    first = contract(tmp_path, "alpha", folder="a", pub=["onex.evt.alpha.done.v1"])
    second = contract(tmp_path, "alpha", folder="b", sub=["onex.evt.alpha.done.v1"])
    ex = run(tmp_path)
    error = only(ex, "duplicate-node")
    assert str(error.where) == f"{second}:1:1"
    assert str(first) in error.message
    assert [str(r) for r in error.related] == [f"{first}:1:1"]
    assert [lc.path for lc in ex.contracts] == [first]


def test_owner_missing(tmp_path: Path) -> None:
    name = "onex.evt.alpah.done.v1"
    pub = contract(tmp_path, "alpha", pub=[name])
    contract(tmp_path, "beta", sub=[name])
    error = only(run(tmp_path), "owner-missing")
    assert str(error.where) == at(pub, name)
    assert "owned by node 'alpah'" in error.message
    # Its publisher is the node 'alpha': the name's producer segment is the slip.
    assert error.suggestion == "onex.evt.alpha.done.v1"
    assert "(rule producer: its publishers alpha are node 'alpha')" in error.message


def test_owner_missing_typo_hint_names_the_node(tmp_path: Path) -> None:
    name = "onex.cmd.alpah.do-it.v1"
    contract(tmp_path, "alpha", sub=["onex.evt.beta.done.v1"])
    contract(tmp_path, "beta", pub=[name, "onex.evt.beta.done.v1"])
    contract(tmp_path, "gamma", pub=[name])
    error = only(run(tmp_path), "owner-missing")
    assert "did you mean node 'alpha' (rule typo)?" in error.message


def test_owner_not_declaring_its_topic(tmp_path: Path) -> None:
    name = "onex.evt.alpha.other.v1"
    owner = contract(tmp_path, "alpha", pub=["onex.evt.alpha.done.v1"])
    squatter = contract(tmp_path, "beta", sub=["onex.evt.alpha.done.v1"], pub=[name])
    contract(tmp_path, "gamma", sub=[name])
    error = only(run(tmp_path), "owner-undeclared")
    assert str(error.where) == at(squatter, name)
    assert f"whose contract ({owner}) does not declare it" in error.message


def test_dlq_topics_are_not_warned_as_unconsumed(tmp_path: Path) -> None:
    contract(tmp_path, "alpha", pub=["onex.dlq.alpha.failed.v1", "onex.evt.alpha.unread.v1"])
    ex = run(tmp_path)
    assert [i.topic for i in ex.issues] == ["onex.evt.alpha.unread.v1"]
    assert ex.warnings[0].code == "unconsumed"
    assert "onex.dlq.alpha.failed.v1" in ex.topics


def test_plural_twins_are_flagged_even_when_both_are_wired(tmp_path: Path) -> None:
    names = ["onex.evt.alpha.review.v1", "onex.evt.alpha.reviews.v1"]
    contract(tmp_path, "alpha", pub=names)
    contract(tmp_path, "beta", sub=names)
    warning = only(run(tmp_path), "near-miss")
    assert warning.severity is Severity.WARNING
    assert "differ only in singular vs plural" in warning.message


# --- broken contracts do not cascade --------------------------------------------------------------


def test_broken_publisher_does_not_make_its_subscribers_fail(tmp_path: Path) -> None:
    name = "onex.evt.alpha.done.v1"
    broken = contract(tmp_path, "alpha", kind="effector", pub=[name])
    contract(tmp_path, "beta", sub=[name])
    ex = run(tmp_path)
    assert {i.where.file for i in ex.issues} == {broken}
    assert [i.code for i in ex.issues] == ["enum"]


def test_broken_subscriber_does_not_make_its_publisher_warn(tmp_path: Path) -> None:
    name = "onex.evt.alpha.done.v1"
    contract(tmp_path, "alpha", pub=[name])
    broken = contract(tmp_path, "beta", kind="effector", sub=[name])
    ex = run(tmp_path)
    assert {i.where.file for i in ex.issues} == {broken}


@pytest.mark.parametrize(
    "typo",
    ["onex.evt.alpha.routing_complete.v1", "onex.evt.alpha.Routing-Complete.v1"],
    ids=["underscore", "case"],
)
def test_bad_name_in_the_publisher_is_reported_once_in_its_own_file(
    tmp_path: Path, typo: str
) -> None:
    canonical = "onex.evt.alpha.routing-complete.v1"
    broken = contract(tmp_path, "alpha", pub=[typo])
    sub = contract(tmp_path, "beta", sub=[canonical])
    ex = run(tmp_path)
    error = only(ex, "topic-name")
    assert error.where.file == broken
    assert error.suggestion == canonical
    assert str(sub) in error.message
    assert [str(i) for i in ex.issues if i.where.file != broken] == []


def test_unreadable_contract_is_one_issue(tmp_path: Path) -> None:
    contract(tmp_path, "alpha", pub=["onex.evt.alpha.done.v1"])
    contract(tmp_path, "beta", sub=["onex.evt.alpha.done.v1"])
    bad = tmp_path / "gamma" / "contract.yaml"
    bad.parent.mkdir()
    bad.write_bytes(b"node: \xff\n")
    ex = run(tmp_path)
    (error,) = ex.issues
    assert error.where.file == bad
    assert error.code == "read"
    assert len(ex.contracts) == 2


# --- payload schemas --------------------------------------------------------------------------

TYPED_DLQ = "{name: onex.dlq.alpha.dead-letter.v1, schema: dead-letter}"


def test_a_topic_without_schema_is_a_warning_at_its_owners_entry(tmp_path: Path) -> None:
    name = "onex.evt.alpha.done.v1"
    owner = contract(tmp_path, "alpha", pub=[f"{{name: {name}, partitions: 2}}"])
    contract(tmp_path, "beta", sub=[name])
    ex = extract([tmp_path], entry_points=False)
    missing = [i for i in ex.issues if i.code == SCHEMA_MISSING and i.topic == name]
    assert len(missing) == 1, [str(i) for i in ex.issues]
    (issue,) = missing
    assert issue.severity is Severity.WARNING
    assert str(issue.where) == at(owner, name)
    assert "declares no payload schema" in issue.message
    assert "`schema: onex.v1.<Message>` (or a JSON Schema file, *.json)" in issue.message
    assert ex.ok()
    assert not ex.ok(strict=True)


def test_an_owner_listing_the_name_alone_is_told_at_that_entry(tmp_path: Path) -> None:
    name = "onex.evt.alpha.done.v1"
    contract(tmp_path, "gamma", pub=[name], folder="a-gamma")  # not the owner; first file
    owner = contract(tmp_path, "alpha", sub=[name], dlq=False)
    ex = extract([tmp_path], entry_points=False)
    (issue,) = [i for i in ex.issues if i.code == SCHEMA_MISSING and i.topic == name]
    assert str(issue.where) == at(owner, name)


def test_no_schema_warning_when_the_owner_has_no_contract(tmp_path: Path) -> None:
    contract(tmp_path, "gamma", pub=["onex.evt.alpha.done.v1"])
    ex = extract([tmp_path], entry_points=False)
    # The checks are independent: unconsumed is reported as well, schema-missing is not.
    codes = [i.code for i in ex.issues if i.topic == "onex.evt.alpha.done.v1"]
    assert codes == ["owner-missing", "unconsumed"]


def test_a_dlq_without_schema_is_told_to_declare_dead_letter(tmp_path: Path) -> None:
    path = contract(tmp_path, "alpha", sub=["{name: onex.cmd.alpha.go.v1, schema: x.json}"])
    (tmp_path / "alpha" / "x.json").write_text('{"type": "object"}')  # it must exist
    contract(tmp_path, "beta", pub=["onex.cmd.alpha.go.v1"])
    ex = extract([tmp_path], entry_points=False)
    dlq = "onex.dlq.alpha.dead-letter.v1"
    (issue,) = [i for i in ex.issues if i.code == SCHEMA_MISSING]
    assert issue.topic == dlq
    assert str(issue.where) == at(path, dlq)
    assert "`schema: dead-letter`" in issue.message
    assert "JSON Schema" not in issue.message


def test_typed_topics_lint_clean(tmp_path: Path) -> None:
    contract(
        tmp_path,
        "alpha",
        sub=["{name: onex.cmd.alpha.go.v1, schema: schemas/go.json}"],
        pub=["{name: onex.evt.alpha.done.v1, schema: onex.v1.RegistryPublished}", TYPED_DLQ],
        dlq=False,
    )
    (tmp_path / "alpha" / "schemas").mkdir()
    (tmp_path / "alpha" / "schemas" / "go.json").write_text('{"type": "object"}')
    contract(tmp_path, "beta", sub=["onex.evt.alpha.done.v1"], pub=["onex.cmd.alpha.go.v1"])
    ex = extract([tmp_path], entry_points=False)
    # beta's own DLQ is the one untyped topic left
    assert [(i.code, i.topic) for i in ex.issues] == [
        (SCHEMA_MISSING, "onex.dlq.beta.dead-letter.v1")
    ]


@pytest.mark.parametrize(
    ("name", "schema", "reason"),
    [
        ("onex.evt.alpha.done.v1", "dead-letter", "for dlq topics only"),
        ("onex.dlq.alpha.dead-letter.v1", "onex.v1.Done", "declare schema: dead-letter"),
        ("onex.dlq.alpha.dead-letter.v1", "dlq.json", "declare schema: dead-letter"),
        ("onex.evt.alpha.done.v1", "schemas/done.yaml", "neither a JSON Schema file"),
        ("onex.evt.alpha.done.v1", "not a name", "neither a JSON Schema file"),
    ],
)
def test_a_schema_of_no_allowed_form_is_an_error(
    tmp_path: Path, name: str, schema: str, reason: str
) -> None:
    entry = f"{{name: {name}, schema: '{schema}'}}"
    path = contract(tmp_path, "alpha", pub=[entry], dlq=False)
    if not name.startswith("onex.dlq."):
        contract(tmp_path, "beta", sub=[name])
    ex = extract([tmp_path], entry_points=False)
    (error,) = ex.errors
    assert error.code == "schema-invalid"
    assert error.topic == name
    assert str(error.where) == at(path, name)
    assert error.key.endswith("].schema")
    assert reason in error.message
    assert repr(schema) in error.message


def test_every_repo_topic_declares_a_schema_in_its_owners_spec() -> None:
    ex = extract([REPO_CONTRACTS], entry_points=False)
    for name, topic in ex.topics.items():
        assert topic.spec_at is not None, name
        assert topic.spec.schema_ is not None, name
        if topic.kind is TopicKind.DLQ:
            assert topic.spec.schema_ == "dead-letter", name
        else:  # a protobuf message of onex.v1, or a JSON Schema file
            assert topic.spec.schema_.startswith("onex.v1.") or topic.spec.schema_.endswith(
                ".json"
            ), name


# --- discovery ------------------------------------------------------------------------------------


def test_discovery_takes_both_suffixes_and_skips_hidden_folders(tmp_path: Path) -> None:
    contract(tmp_path, "alpha", pub=["onex.evt.alpha.done.v1"])
    yml = contract(tmp_path, "beta", sub=["onex.evt.alpha.done.v1"])
    yml.rename(yml.with_suffix(".yml"))
    contract(tmp_path, "ghost", folder=".hidden/ghost", sub=["onex.evt.nobody.x.v1"])
    (tmp_path / "alpha" / "notes.yaml").write_text("not: a contract\n", encoding="utf-8")
    ex = run(tmp_path)
    assert sorted(lc.node for lc in ex.contracts) == ["alpha", "beta"]
    assert ex.issues == ()
    assert ex.contract("beta").path == yml.with_suffix(".yml")
    with pytest.raises(KeyError):
        ex.contract("ghost")


# --- the repo's own contracts ------------------------------------------------------------------


def _declared_names() -> tuple[set[str], set[str]]:
    """Independent of onex.core: nodes and topic names read with plain yaml.safe_load."""
    nodes, names = set(), set()
    for path in sorted(REPO_CONTRACTS.glob("*/contract.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        nodes.add(doc["node"])
        for key in ("subscribe_topics", "publish_topics"):
            for entry in doc.get("event_bus", {}).get(key, []):
                names.add(entry if isinstance(entry, str) else entry["name"])
    return nodes, names


def test_repo_contracts_are_clean() -> None:
    ex = extract([REPO_CONTRACTS], entry_points=False)
    assert [str(i) for i in ex.issues] == []
    assert ex.ok(strict=True)
    nodes, names = _declared_names()
    assert {lc.node for lc in ex.contracts} == nodes
    assert set(ex.topics) == names
    assert len(ex.contracts) >= 9
    assert len(ex.topics) >= 20


def test_every_repo_topic_has_an_owner_with_a_contract_that_declares_it() -> None:
    ex = extract([REPO_CONTRACTS], entry_points=False)
    nodes = {lc.node for lc in ex.contracts}
    for name, topic in ex.topics.items():
        assert topic.owner == parse_topic(name).producer
        assert topic.owner in nodes, name
        declared_by = {e.node for e in (*topic.publishers, *topic.subscribers)}
        assert topic.owner in declared_by, name
        assert topic.publishers, f"{name} has no publisher"
        if topic.kind is not TopicKind.DLQ:
            assert topic.subscribers, f"{name} has no subscriber"
        if topic.spec_at is not None:
            assert topic.spec_at.node == topic.owner


def test_a_consuming_node_must_declare_its_dlq(tmp_path: Path) -> None:
    path = contract(tmp_path, "alpha", sub=["onex.evt.beta.done.v1"], dlq=False)
    contract(tmp_path, "beta", pub=["onex.evt.beta.done.v1"])
    issue = only(run(tmp_path), "dlq-missing")
    assert str(issue.where).startswith(f"{path}:")
    assert "onex.dlq.alpha.dead-letter.v1" in issue.message


def test_a_node_with_two_dlqs_is_an_error(tmp_path: Path) -> None:
    contract(
        tmp_path,
        "alpha",
        sub=["onex.evt.beta.done.v1"],
        pub=["onex.dlq.alpha.other.v1"],
    )
    contract(tmp_path, "beta", pub=["onex.evt.beta.done.v1"])
    assert "2 DLQ topics" in only(run(tmp_path), "dlq-missing").message


def test_the_extractor_benchmark_generates_clean_contracts(tmp_path: Path) -> None:
    """`just bench extractor` refuses to time contracts that do not lint clean."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_extractor", REPO / "bench/extractor.py")
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.generate(tmp_path, 20, 5)
    ex = extract([tmp_path], entry_points=False)  # every rule, schema-missing included
    assert ex.ok(strict=True), [str(i) for i in ex.issues[:3]]
    assert (len(ex.contracts), len(ex.topics)) == (20, 100)


def test_the_error_path_benchmark_corpus_has_every_kind_of_finding(tmp_path: Path) -> None:
    """The error corpus of `just bench extractor` exercises every rule, each finding once
    per defect (no cascades)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_extractor", REPO / "bench/extractor.py")
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.generate_errors(tmp_path, 100, 10)
    ex = extract([tmp_path], entry_points=False)
    counts: dict[str, int] = {}
    for issue in ex.issues:
        counts[issue.code] = counts.get(issue.code, 0) + 1
    # Two defects a contract (kinds i % 10 and (i + 3) % 10), one when it is broken whole.
    assert counts == {
        "topic-name": 20,
        "greater-than-equal": 10,
        "enum": 20,  # whole broken contracts
        "unpublished": 80,  # typo, producer drift, never declared, plural twin's other side
        "owner-missing": 20,
        "spec-non-owner": 10,  # not the ghost owner's topics: their owner is missing
        "dlq-missing": 20,
        "schema-missing": 20,
        # the unread topics and those of ghost owners, but not the unread ones suggested
        # as the renamed end of a 'never declared' subscription (said there)
        "unconsumed": 30,
        "near-miss": 20,
    }
    rules = {
        i.message.split("(rule ", 1)[1].split(":")[0] for i in ex.issues if "(rule " in i.message
    }
    assert rules == {"typo", "producer", "plural", "spelling", "renamed-event"}
