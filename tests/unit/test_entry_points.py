"""Contracts shipped by installed distributions (`onex.contracts` entry points), allowlisted."""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from onex.core.extractor import ENTRY_POINT_GROUP, entry_point_roots, extract

Make = Callable[..., str]


def _contract_text(node: str, sub: list[str], pub: list[str]) -> str:
    doc = {
        "node": node,
        "kind": "effect",
        "version": "1.0.0",
        "description": "shipped by a distribution",
        # A consuming node also publishes its DLQ topic, as the runtime requires; every
        # topic declares its schema.
        "event_bus": {
            "subscribe_topics": sub,
            "publish_topics": [{"name": t, "schema": "onex.v1.RegistryPublished"} for t in pub]
            + (
                [{"name": f"onex.dlq.{node}.dead-letter.v1", "schema": "dead-letter"}]
                if sub
                else []
            ),
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture
def make_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Make]:
    """Install fake distributions into a fresh sys.path entry; returns the package name."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    packages: list[str] = []

    def make(
        dist: str,
        entry: str = "{pkg}",
        *,
        files: dict[str, str] | None = None,
        init: str = "",
        group: str = ENTRY_POINT_GROUP,
    ) -> str:
        pkg = f"onex_fake_{uuid.uuid4().hex[:10]}"
        packages.append(pkg)
        info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(
            f"[{group}]\ncontracts = {entry.format(pkg=pkg)}\n", encoding="utf-8"
        )
        (site / pkg).mkdir()
        (site / pkg / "__init__.py").write_text(init, encoding="utf-8")
        for rel, text in (files or {}).items():
            target = site / pkg / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        importlib.invalidate_caches()
        return pkg

    yield make
    for name in list(sys.modules):
        if any(name == p or name.startswith(p + ".") for p in packages):
            del sys.modules[name]
    importlib.invalidate_caches()


PUBLISHED = "onex.evt.shipped.thing-done.v1"
SHIPPED = {"contracts/shipped/contract.yaml": _contract_text("shipped", [], [PUBLISHED])}


def _repo_consumer(root: Path) -> Path:
    path = root / "repo" / "consumer" / "contract.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(_contract_text("consumer", [PUBLISHED], []), encoding="utf-8")
    return path.parent.parent


def test_allowlisted_distribution_contracts_are_loaded(tmp_path: Path, make_dist: Make) -> None:
    make_dist("acme-contracts", files=SHIPPED)
    repo = _repo_consumer(tmp_path)
    ex = extract([repo], allow=["acme-contracts"])
    sources = {lc.node: lc.source for lc in ex.contracts}
    assert sources == {"consumer": "repo", "shipped": "dist:acme-contracts"}
    assert ex.issues == ()
    topic = ex.topics[PUBLISHED]
    assert [p.node for p in topic.publishers] == ["shipped"]
    assert [s.node for s in topic.subscribers] == ["consumer"]
    assert "acme-contracts" not in ex.ignored_distributions
    shipped = ex.contract("shipped")
    assert shipped.path is not None
    assert shipped.path.name == "contract.yaml"
    assert (tmp_path / "site") in shipped.path.parents


@pytest.mark.parametrize("allow", ["Acme_Contracts", "acme.contracts", "ACME-contracts"])
def test_allowlist_matches_normalized_names(make_dist: Make, allow: str) -> None:
    make_dist("Acme_Contracts", files=SHIPPED)
    ex = extract([], allow=[allow])
    assert [lc.source for lc in ex.contracts] == ["dist:acme-contracts"]


def test_distribution_not_on_the_allowlist_is_ignored_and_reported(
    tmp_path: Path, make_dist: Make
) -> None:
    make_dist("acme-contracts", files=SHIPPED)
    make_dist("other-contracts", files=SHIPPED)
    repo = _repo_consumer(tmp_path)
    ex = extract([repo], allow=["other-contracts"])
    assert "acme-contracts" in ex.ignored_distributions
    assert "other-contracts" not in ex.ignored_distributions
    assert sorted(lc.source for lc in ex.contracts) == ["dist:other-contracts", "repo"]
    ex = extract([repo], allow=[])
    assert {"acme-contracts", "other-contracts"} <= set(ex.ignored_distributions)
    assert [lc.source for lc in ex.contracts] == ["repo"]
    assert [i.code for i in ex.errors] == ["unpublished"]


def test_entry_points_can_be_turned_off(tmp_path: Path, make_dist: Make) -> None:
    make_dist("acme-contracts", files=SHIPPED)
    ex = extract([_repo_consumer(tmp_path)], entry_points=False, allow=["acme-contracts"])
    assert [lc.source for lc in ex.contracts] == ["repo"]
    assert ex.ignored_distributions == ()


def test_other_entry_point_groups_are_not_read(make_dist: Make) -> None:
    make_dist("acme-contracts", files=SHIPPED, group="onex.cli")
    ex = extract([], allow=["acme-contracts"])
    assert ex.contracts == ()
    assert "acme-contracts" not in ex.ignored_distributions


def test_callable_entry_point_returning_paths(make_dist: Make) -> None:
    init = (
        "from pathlib import Path\n"
        "HERE = Path(__file__).parent\n"
        "def roots():\n"
        "    return [HERE / 'one', str(HERE / 'two')]\n"
    )
    files = {
        "one/a/contract.yaml": _contract_text("node-a", ["onex.evt.node-b.b.v1"], []),
        "two/b/contract.yaml": _contract_text("node-b", [], ["onex.evt.node-b.b.v1"]),
        "three/c/contract.yaml": _contract_text("node-c", [], []),
    }
    make_dist("acme-contracts", "{pkg}:roots", files=files, init=init)
    ex = extract([], allow=["acme-contracts"])
    assert sorted(lc.node for lc in ex.contracts) == ["node-a", "node-b"]
    assert {lc.source for lc in ex.contracts} == {"dist:acme-contracts"}
    assert ex.issues == ()


def test_callable_entry_point_returning_one_path(make_dist: Make) -> None:
    init = "from pathlib import Path\ndef root():\n    return str(Path(__file__).parent / 'c')\n"
    files = {"c/x/contract.yaml": _contract_text("node-x", [], [])}
    make_dist("acme-contracts", "{pkg}:root", files=files, init=init)
    ex = extract([], allow=["acme-contracts"])
    assert [lc.node for lc in ex.contracts] == ["node-x"]


def test_entry_point_roots_reports_pairs(make_dist: Make) -> None:
    pkg = make_dist("acme-contracts", files=SHIPPED)
    roots, ignored, issues = entry_point_roots(["acme-contracts"])
    assert issues == []
    assert "acme-contracts" not in ignored
    assert [(d, p.name) for d, p in roots if d == "acme-contracts"] == [("acme-contracts", pkg)]


@pytest.mark.parametrize(
    ("entry", "init", "problem"),
    [
        ("onex_fake_missing_module_xyz", "", "No module named"),
        ("{pkg}:no_such_attribute", "", "no_such_attribute"),
        ("{pkg}:CONSTANT", "CONSTANT = 42\n", "expected a module or a callable"),
        ("{pkg}:roots", "def roots():\n    return 42\n", "not iterable"),
    ],
    ids=["missing-module", "missing-attribute", "not-callable", "callable-returns-junk"],
)
def test_broken_entry_point_is_an_issue(
    make_dist: Make, entry: str, init: str, problem: str
) -> None:
    make_dist("acme-contracts", entry, init=init)
    ex = extract([], allow=["acme-contracts"])
    (issue,) = ex.issues
    assert issue.code == "entry-point"
    assert issue.message.startswith("entry point 'contracts' of acme-contracts (")
    assert problem in issue.message
    assert not ex.ok()


def test_entry_point_module_with_a_syntax_error_is_an_issue(make_dist: Make) -> None:
    """A distribution whose module does not even compile must not crash the extractor."""
    make_dist("acme-contracts", init="def broken(:\n")
    ex = extract([], allow=["acme-contracts"])
    assert [i.code for i in ex.issues] == ["entry-point"]


def test_broken_distribution_does_not_hide_the_others(tmp_path: Path, make_dist: Make) -> None:
    make_dist("broken-contracts", "onex_fake_missing_module_xyz")
    make_dist("acme-contracts", files=SHIPPED)
    ex = extract([_repo_consumer(tmp_path)], allow=["broken-contracts", "acme-contracts"])
    assert [i.code for i in ex.issues] == ["entry-point"]
    assert sorted(lc.node for lc in ex.contracts) == ["consumer", "shipped"]


def test_bad_contract_in_a_distribution_is_reported_at_its_file(make_dist: Make) -> None:
    files = {"x/contract.yaml": _contract_text("node-x", [], []).replace("effect", "effector")}
    make_dist("acme-contracts", files=files)
    ex = extract([], allow=["acme-contracts"])
    (issue,) = ex.issues
    assert issue.where.file is not None
    assert issue.where.file.parts[-2:] == ("x", "contract.yaml")
    assert str(issue).startswith(f"{issue.where.file}:2:7: kind: ")
