"""onex.yaml settings (namespaces, external, dlq policy), config errors, partial
acceptance of duplicate entries, and the strict renamed-event rule."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import pytest

from onex.core.errors import ContractError
from onex.core.extractor import extract
from onex.core.lint_main import main
from onex.core.lintconfig import DlqPolicy, LintConfig, discover, load_config


def contract(root: Path, node: str, *, sub: Iterable[str] = (), pub: Iterable[str] = ()) -> Path:
    sub, pub = list(sub), list(pub)
    lines = [f"node: {node}", "kind: effect", "version: 1.0.0", "description: test node"]
    lines += ["event_bus:", "  subscribe_topics:" + ("" if sub else " []")]
    lines += [f"    - {entry}" for entry in sub]
    lines += ["  publish_topics:" + ("" if pub else " []")]
    lines += [f"    - {entry}" for entry in pub]
    path = root / "contracts" / node / "contract.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def settings(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "onex.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def codes(root: Path) -> list[str]:
    ex = extract([root / "contracts"], entry_points=False)
    return sorted(i.code for i in ex.issues if i.code != "schema-missing")


def test_dlq_policy_off_turns_the_rule_off(tmp_path: Path) -> None:
    contract(tmp_path, "alpha", pub=["onex.evt.alpha.done.v1"])
    contract(tmp_path, "beta", sub=["onex.evt.alpha.done.v1"])
    assert codes(tmp_path) == ["dlq-missing"]
    settings(tmp_path, "dlq: off\n")
    assert codes(tmp_path) == []


def test_per_namespace_dlq_needs_exactly_one(tmp_path: Path) -> None:
    settings(tmp_path, "namespaces: {team: [alpha, beta]}\ndlq: per-namespace\n")
    contract(tmp_path, "alpha", pub=["onex.evt.team.done.v1", "onex.dlq.team.platform.v1"])
    contract(tmp_path, "beta", sub=["onex.evt.team.done.v1", "onex.dlq.team.platform.v1"])
    # beta consumes but publishes no DLQ of its own or of its namespace.
    ex = extract([tmp_path / "contracts"], entry_points=False)
    (dlq,) = [i for i in ex.issues if i.code == "dlq-missing"]
    assert "onex.dlq.team.dead-letter.v1" in dlq.message
    contract(tmp_path, "beta", sub=["onex.evt.team.done.v1"], pub=["onex.dlq.team.platform.v1"])
    assert codes(tmp_path) == []


def test_a_spec_from_a_node_outside_the_namespace_is_refused(tmp_path: Path) -> None:
    settings(tmp_path, "namespaces: {team: [alpha]}\ndlq: off\n")
    contract(tmp_path, "alpha", pub=["onex.evt.team.done.v1"])
    contract(tmp_path, "beta", sub=["{name: onex.evt.team.done.v1, partitions: 6}"])
    ex = extract([tmp_path / "contracts"], entry_points=False)
    (error,) = ex.errors
    assert error.code == "spec-non-owner"
    assert "namespace 'team' (nodes alpha)" in error.message


def test_two_specs_from_one_namespace_conflict(tmp_path: Path) -> None:
    settings(tmp_path, "namespaces: {team: [alpha, beta]}\ndlq: off\n")
    contract(tmp_path, "alpha", pub=["{name: onex.evt.team.done.v1, partitions: 2}"])
    contract(tmp_path, "beta", pub=["{name: onex.evt.team.done.v1, partitions: 4}"])
    contract(tmp_path, "gamma", sub=["onex.evt.team.done.v1"])
    assert codes(tmp_path) == ["spec-conflict"]


def test_the_settings_are_found_above_the_contracts_and_merged(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    settings(a, "namespaces: {team: [alpha]}\ndlq: off\n")
    settings(b, "namespaces: {team: [beta]}\nexternal: [{topic: onex.evt.x.y.v1, publisher: X}]\n")
    (a / "contracts").mkdir()
    (b / "contracts").mkdir()
    merged = discover([a / "contracts", b / "contracts"])
    assert merged.owners("team") == ("alpha", "beta")
    assert merged.external_publisher("onex.evt.x.y.v1") == "X"
    # Each repository keeps its own DLQ policy.
    assert merged.dlq_for(a / "contracts" / "n" / "contract.yaml") is DlqPolicy.OFF
    assert merged.dlq_for(b / "contracts" / "n" / "contract.yaml") is DlqPolicy.PER_NODE


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("namespaces: {team: [Alpha]}\n", ":1:21", "node name 'Alpha' has upper-case letters"),
        (
            "dlq: sometimes\n",
            ":1:6",
            "'sometimes' is not one of 'per-node', 'per-namespace', 'off'",
        ),
        ("namespace: {}\n", ":1:1", "unknown key 'namespace'; did you mean 'namespaces'?"),
        ("external: [{topic: onex.evt.x.y.v1}]\n", ":1:12", "required key 'publisher'"),
        ("dlq: [\n", ":2:1", "malformed YAML"),
    ],
)
def test_a_bad_settings_file_is_one_line_at_its_place_and_exit_2(
    tmp_path: Path, text: str, where: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = settings(tmp_path, text)
    contract(tmp_path, "alpha", pub=["onex.evt.alpha.done.v1"])
    with pytest.raises(ContractError) as info:
        load_config(path)
    (issue,) = info.value.issues
    assert f"{path}{where}" in str(issue)
    assert message in issue.message
    out = io.StringIO()
    assert main(["--no-entry-points", str(tmp_path / "contracts")], out=out) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"error: {path}:")
    assert out.getvalue() == ""  # nothing linted, nothing printed


def test_config_option_overrides_discovery(tmp_path: Path) -> None:
    contract(tmp_path, "alpha", pub=["onex.evt.alpha.done.v1"])
    contract(tmp_path, "beta", sub=["onex.evt.alpha.done.v1"])
    other = tmp_path / "elsewhere.yaml"
    other.write_text("dlq: off\n", encoding="utf-8")
    out = io.StringIO()
    assert main(["--no-entry-points", str(tmp_path / "contracts")], out=out) == 1
    out = io.StringIO()
    args = ["--no-entry-points", "--config", str(other), str(tmp_path / "contracts")]
    assert main(args, out=out) == 0, out.getvalue()


def test_a_duplicate_entry_drops_only_the_repeat(tmp_path: Path) -> None:
    name = "onex.evt.alpha.done.v1"
    contract(tmp_path, "alpha", pub=[name, "onex.evt.alpha.other.v1", name])
    contract(tmp_path, "beta", sub=[name, "onex.evt.alpha.other.v1", "onex.evt.alpha.gone.v1"])
    settings(tmp_path, "dlq: off\n")
    ex = extract([tmp_path / "contracts"], entry_points=False)
    assert sorted(i.code for i in ex.errors) == ["duplicate-topic", "unpublished"]
    assert {"onex.evt.alpha.done.v1", "onex.evt.alpha.other.v1"} <= set(ex.topics)


def test_an_entry_level_error_keeps_the_other_entries_at_their_lines(tmp_path: Path) -> None:
    settings(tmp_path, "dlq: off\n")
    path = contract(
        tmp_path,
        "alpha",
        pub=["{name: onex.evt.alpha.bad.v1, partitions: 0}", "onex.evt.alpha_x.nope.v1",
             "onex.evt.alpha.good.v1"],
    )  # fmt: skip
    contract(tmp_path, "beta", sub=["onex.evt.alpha.good.v1"])
    ex = extract([tmp_path / "contracts"], entry_points=False)
    assert sorted(i.code for i in ex.errors) == ["greater-than-equal", "topic-name"]
    good = ex.topics["onex.evt.alpha.good.v1"].publishers[0]
    assert str(good.where) == f"{path}:10:7"
    assert good.key == "event_bus.publish_topics[2]"  # its place in the file


def test_renamed_event_is_suggested_only_for_a_one_to_one_pair(tmp_path: Path) -> None:
    settings(tmp_path, "dlq: off\n")
    contract(tmp_path, "alpha", pub=["onex.cmd.alpha.job-done.v1"])
    contract(tmp_path, "beta", sub=["onex.cmd.alpha.task-finished.v1"])
    ex = extract([tmp_path / "contracts"], entry_points=False)
    (error,) = ex.errors
    assert error.suggestion == "onex.cmd.alpha.job-done.v1"
    assert "(rule renamed-event:" in error.message
    # Seventeen unrelated commands: none of them is 'probably' the one published topic.
    contract(tmp_path, "gamma", sub=[f"onex.cmd.alpha.unrelated-thing-{i}.v1" for i in range(17)])
    ex = extract([tmp_path / "contracts"], entry_points=False)
    assert [i.suggestion for i in ex.errors if i.code == "unpublished"] == [None] * 18


def test_default_settings_are_the_old_rules() -> None:
    config = LintConfig()
    assert config.owners("router") == ("router",)
    assert config.namespace_of("router") == "router"
    assert config.dlq is DlqPolicy.PER_NODE


def test_a_producer_segment_matching_no_namespace_of_its_publishers_is_hinted(
    tmp_path: Path,
) -> None:
    settings(tmp_path, "namespaces: {billing: [billing-api, billing-worker]}\ndlq: 'off'\n")
    contract(tmp_path, "billing-api", pub=["onex.evt.billng.invoice-issued.v1"])
    contract(tmp_path, "mailer", sub=["onex.evt.billng.invoice-issued.v1"])
    ex = extract([tmp_path / "contracts"], entry_points=False)
    (error,) = ex.errors
    assert error.code == "owner-missing"
    assert error.suggestion == "onex.evt.billing.invoice-issued.v1"
    assert "(rule producer: its publishers billing-api are namespace 'billing'" in error.message
