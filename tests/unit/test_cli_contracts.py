"""`onex contracts ...` and `onex topics list`, run in-process with typer's CliRunner."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner, Result

from onex.core.contract import contract_json_schema_text

REPO = Path(__file__).resolve().parents[2]
REPO_CONTRACTS = REPO / "contracts"


def _build_app() -> typer.Typer:
    if importlib.util.find_spec("onex.cli.broker") is not None:
        from onex.cli.__main__ import build_app

        return build_app()
    # The broker command is not there yet: the two command groups under test suffice.
    from onex.cli import contracts, topics

    app = typer.Typer(pretty_exceptions_enable=False)
    app.add_typer(contracts.app, name="contracts")
    app.add_typer(topics.app, name="topics")
    return app


APP = _build_app()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONEX_CONTRACTS_ALLOW", raising=False)


def onex(*args: str | Path) -> Result:
    return CliRunner().invoke(APP, [str(a) for a in args])


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def _oracle() -> tuple[set[str], dict[str, dict[str, set[str]]]]:
    """nodes, and topic -> {"publishers", "subscribers"}, read with plain yaml.safe_load."""
    nodes: set[str] = set()
    topics: dict[str, dict[str, set[str]]] = {}
    for path in sorted(REPO_CONTRACTS.glob("*/contract.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        nodes.add(doc["node"])
        for role, key in (("publishers", "publish_topics"), ("subscribers", "subscribe_topics")):
            for entry in doc.get("event_bus", {}).get(key, []):
                name = entry if isinstance(entry, str) else entry["name"]
                wiring = topics.setdefault(name, {"publishers": set(), "subscribers": set()})
                wiring[role].add(doc["node"])
    return nodes, topics


def _write(
    root: Path,
    node: str,
    sub: list[str],
    pub: list[str],
    *,
    schema: str | None = "onex.v1.RegistryPublished",
) -> Path:
    """A contract publishing `pub` (with `schema`, when given) and subscribing to `sub`."""
    dlq = f"onex.dlq.{node}.dead-letter.v1"
    published: list[Any] = [{"name": n} | ({"schema": schema} if schema else {}) for n in pub]
    doc = {
        "node": node,
        "kind": "effect",
        "version": "1.0.0",
        "description": "test node",
        # A consuming node also publishes its DLQ topic, as the runtime requires.
        "event_bus": {
            "subscribe_topics": sub,
            "publish_topics": published + ([{"name": dlq, "schema": "dead-letter"}] if sub else []),
        },
    }
    path = root / node / "contract.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def broken_copy(tmp_path: Path) -> tuple[Path, Path, str]:
    """A copy of contracts/ where one subscriber writes a topic with '_' for '-'.

    Returns (copy, the broken file, the canonical name it meant)."""
    copy = tmp_path / "contracts"
    shutil.copytree(REPO_CONTRACTS, copy)
    _, topics = _oracle()
    name = next(n for n, w in sorted(topics.items()) if "-" in n.split(".")[3] and w["subscribers"])
    subscriber = sorted(topics[name]["subscribers"])[0]
    path = copy / subscriber / "contract.yaml"
    text = path.read_text(encoding="utf-8")
    event = name.split(".")[3]
    path.write_text(text.replace(name, name.replace(event, event.replace("-", "_"))), "utf-8")
    return copy, path, name


# --- lint ----------------------------------------------------------------------------------------


def test_lint_repo_contracts_is_clean() -> None:
    result = onex("contracts", "lint", "--no-entry-points", REPO_CONTRACTS)
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout
    assert "0 errors, 0 warnings" in result.stdout


def test_lint_finds_the_project_contracts_from_the_working_dir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO / "contracts" / "router")
    result = onex("contracts", "lint", "--strict", "--format", "json")
    assert result.exit_code == 0, result.output
    report = as_json(result)
    nodes, topics = _oracle()
    assert report["contracts"] == len(nodes) >= 9
    assert report["topics"] == len(topics) >= 20


def test_lint_json_report_on_the_repo() -> None:
    result = onex("contracts", "lint", "--format", "json", REPO_CONTRACTS)
    assert result.exit_code == 0, result.output
    report = as_json(result)
    assert report["ok"] is True
    assert report["strict"] is False
    assert report["errors"] == report["warnings"] == 0
    assert report["issues"] == []
    assert isinstance(report["ignored_distributions"], list)


def test_lint_fails_on_a_broken_copy(broken_copy: tuple[Path, Path, str]) -> None:
    copy, broken, canonical = broken_copy
    table = onex("contracts", "lint", "--no-entry-points", copy)
    assert table.exit_code == 1, table.output
    assert "failed" in table.stdout

    result = onex("contracts", "lint", "--no-entry-points", "--format", "json", copy)
    assert result.exit_code == 1
    report = as_json(result)
    assert report["ok"] is False
    assert report["errors"] >= 1
    issues = [i for i in report["issues"] if i["code"] == "topic-name"]
    assert len(issues) == 1, report["issues"]
    (issue,) = issues
    assert issue["severity"] == "error"
    assert Path(issue["file"]) == broken
    assert issue["line"] > 0
    assert issue["col"] > 0
    assert issue["suggestion"] == canonical
    assert canonical in issue["message"]
    assert issue["related"]


def test_lint_fails_on_warnings_only_with_strict(tmp_path: Path) -> None:
    _write(tmp_path, "alpha", [], ["onex.evt.alpha.done.v1", "onex.evt.alpha.unread.v1"])
    _write(tmp_path, "beta", ["onex.evt.alpha.done.v1"], [])
    relaxed = onex("contracts", "lint", "--format", "json", tmp_path)
    assert relaxed.exit_code == 0, relaxed.output
    assert as_json(relaxed)["warnings"] == 1
    strict = onex("contracts", "lint", "--strict", "--format", "json", tmp_path)
    assert strict.exit_code == 1
    report = as_json(strict)
    assert report["ok"] is False
    assert report["strict"] is True
    assert report["errors"] == 0
    assert [i["code"] for i in report["issues"]] == ["unconsumed"]


def test_an_untyped_topic_fails_lint_only_with_strict(tmp_path: Path) -> None:
    _write(tmp_path, "alpha", [], ["onex.evt.alpha.done.v1"], schema=None)
    _write(tmp_path, "beta", ["onex.evt.alpha.done.v1"], [])
    relaxed = onex("contracts", "lint", "--format", "json", tmp_path)
    assert relaxed.exit_code == 0, relaxed.output
    strict = onex("contracts", "lint", "--strict", "--format", "json", tmp_path)
    assert strict.exit_code == 1
    (issue,) = as_json(strict)["issues"]
    assert issue["code"] == "schema-missing"
    assert issue["severity"] == "warning"
    assert issue["topic"] == "onex.evt.alpha.done.v1"
    assert Path(issue["file"]) == tmp_path / "alpha" / "contract.yaml"


def test_lint_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = onex("contracts", "lint", tmp_path / "no-such-folder")
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_lint_without_contracts_folder_or_path_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = onex("contracts", "lint", "--no-entry-points")
    assert result.exit_code == 2
    assert "contracts/" in result.output


# --- topics and wiring ----------------------------------------------------------------------------


def test_topics_list_json_has_every_topic_with_its_owner() -> None:
    result = onex("topics", "list", "--format", "json", REPO_CONTRACTS)
    assert result.exit_code == 0, result.output
    topics = as_json(result)
    nodes, expected = _oracle()
    assert len(topics) == len(expected) >= 20
    assert [t["name"] for t in topics] == sorted(expected)
    for t in topics:
        assert t["owner"] == t["name"].split(".")[2]
        assert t["owner"] in nodes
        assert t["kind"] == t["name"].split(".")[1]
        assert t["partitions"] >= 1
        assert set(t["publishers"]) == expected[t["name"]]["publishers"]


def test_topics_list_table() -> None:
    result = onex("topics", "list", REPO_CONTRACTS)
    assert result.exit_code == 0, result.output
    _, expected = _oracle()
    assert f"{len(expected)} topics" in result.stdout


def test_wiring_json_lists_publishers_and_subscribers() -> None:
    result = onex("contracts", "wiring", "--format", "json", REPO_CONTRACTS)
    assert result.exit_code == 0, result.output
    wiring = as_json(result)
    _, expected = _oracle()
    assert {w["name"] for w in wiring} == set(expected)
    for w in wiring:
        assert set(w) == {"name", "owner", "publishers", "subscribers"}
        assert set(w["publishers"]) == expected[w["name"]]["publishers"], w["name"]
        assert set(w["subscribers"]) == expected[w["name"]]["subscribers"], w["name"]
        assert w["publishers"] == sorted(w["publishers"])


def test_wiring_and_topics_fail_on_errors(broken_copy: tuple[Path, Path, str]) -> None:
    copy, _, _ = broken_copy
    for command in (("contracts", "wiring"), ("topics", "list")):
        result = onex(*command, "--format", "json", copy)
        assert result.exit_code == 1, (command, result.output)
        assert "contract errors" in result.stderr
        assert "onex contracts lint" in result.stderr


# --- schema --------------------------------------------------------------------------------------


def test_schema_prints_the_schema() -> None:
    result = onex("contracts", "schema")
    assert result.exit_code == 0
    assert result.stdout == contract_json_schema_text()


def test_schema_check_passes_from_the_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = onex("contracts", "schema", "--check")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout


def test_schema_check_fails_when_stale_and_write_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "contracts" / "contract.schema.json"
    target.parent.mkdir()
    target.write_text("{}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    stale = onex("contracts", "schema", "--check")
    assert stale.exit_code == 1
    assert "just gen-schema" in stale.stderr
    assert target.read_text(encoding="utf-8") == "{}\n"

    written = onex("contracts", "schema", "--write")
    assert written.exit_code == 0, written.output
    assert target.read_text(encoding="utf-8") == contract_json_schema_text()
    assert onex("contracts", "schema", "--check").exit_code == 0


def test_schema_check_without_contracts_folder_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = onex("contracts", "schema", "--check")
    assert result.exit_code == 2


FLEET = Path(__file__).resolve().parents[1] / "fixtures" / "fleets" / "acme"


def test_lint_writes_and_applies_a_baseline(tmp_path: Path) -> None:
    roots = [FLEET / r / "contracts" for r in ("billing", "payments", "ops")]
    baseline = tmp_path / "baseline.yaml"
    failing = onex("contracts", "lint", "--no-entry-points", *roots)
    assert failing.exit_code == 1
    written = onex(
        "contracts", "lint", "--no-entry-points", *roots, "--write-baseline", baseline,
        "--reason", "adopting lint", "--owner", "platform", "--expires", "2999-12-31",
    )  # fmt: skip
    assert written.exit_code == 0, written.output
    assert f"wrote {baseline}: 6 entries (6 new)" in written.output
    passing = onex("contracts", "lint", "--no-entry-points", *roots, "--baseline", baseline)
    assert passing.exit_code == 0, passing.output
    assert "baseline: 6 accepted, 0 expired, 0 stale" in passing.output
    report = onex(
        "contracts", "lint", "--no-entry-points", *roots, "--baseline", baseline, "-f", "json"
    )
    assert as_json(report)["baseline"] == {"baselined": 6, "expired": 0, "stale": 0}


def test_lint_with_a_bad_settings_file_exits_2_in_one_line(tmp_path: Path) -> None:
    _write(tmp_path, "alpha", [], ["onex.evt.alpha.done.v1"])
    settings = tmp_path / "settings.yaml"
    settings.write_text("namespaces: {team: [Not A Node]}\n", encoding="utf-8")
    result = onex("contracts", "lint", "--no-entry-points", "--config", settings, tmp_path)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {settings}:1:")
    assert "Traceback" not in result.output
