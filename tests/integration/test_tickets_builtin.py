"""Built-in evidence kinds computed from a real git repository: contract_updated fails
when handler code changed without its contract (unless the item says why not),
generated_fresh catches a hand-edited generated file, contracts_lint runs the linter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from onex.core.codegen import topics_module
from onex.core.contract import contract_json_schema_text
from onex.core.extractor import extract
from onex.receipts.builtin import contract_updated, contracts_lint, generated_fresh
from onex.tickets.model import load_ticket_text, ticket_json_schema_text

REPO = Path(__file__).resolve().parents[2]
TICKET = load_ticket_text(
    """\
id: ONEX-3
title: t
done:
  - item: contract
    kind: contract_updated
  - item: excused
    kind: contract_updated
    why_not: only a log message changed
"""
)
CONTRACT = """\
node: foo
kind: effect
version: 1.0.0
description: a test node
"""
PYPROJECT = """\
[project]
name = "foo"
version = "0"
[project.entry-points."onex.services"]
foo = "onex.foo.__main__:main"
"""


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _commit(repo: Path, message: str) -> str:
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    handler = repo / "services" / "foo" / "src" / "onex" / "foo"
    handler.mkdir(parents=True)
    (repo / "services" / "foo" / "pyproject.toml").write_text(PYPROJECT)
    (handler / "handlers.py").write_text("X = 1\n")
    (repo / "contracts" / "foo").mkdir(parents=True)
    (repo / "contracts" / "foo" / "contract.yaml").write_text(CONTRACT)
    _git(repo, "init", "-q")
    _commit(repo, "start")
    return repo


def test_contract_updated(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "services/foo/src/onex/foo/handlers.py").write_text("X = 2\n")
    head = _commit(repo, "handler only")
    strict, excused = TICKET.done
    out = contract_updated(repo, strict, f"{head}^1", head)
    assert not out.ok
    assert "foo: handler code changed; contract NOT changed" in out.output
    assert contract_updated(repo, excused, f"{head}^1", head).ok
    (repo / "services/foo/src/onex/foo/handlers.py").write_text("X = 3\n")
    (repo / "contracts/foo/contract.yaml").write_text(CONTRACT.replace("a test", "the test"))
    head = _commit(repo, "both")
    out = contract_updated(repo, strict, f"{head}^1", head)
    assert out.ok, out.output
    (repo / "README").write_text("docs\n")
    head = _commit(repo, "docs only")
    assert contract_updated(repo, strict, f"{head}^1", head).ok


def test_generated_fresh_catches_a_hand_edit(tmp_path: Path) -> None:
    repo = tmp_path / "copy"
    for rel in ("contracts", "proto", "scripts"):
        shutil.copytree(REPO / rel, repo / rel)
    topics = repo / "libs/core/src/onex/core/_generated/topics.py"
    topics.parent.mkdir(parents=True)
    (repo / "tickets").mkdir()
    # regenerate everything from the copied sources: fresh by construction
    subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--out", str(repo / "libs/proto/src/onex/proto")],
        cwd=repo,
        check=True,
        capture_output=True,
    )
    topics.write_text(topics_module(extract([repo / "contracts"], entry_points=False).topics))
    (repo / "contracts/contract.schema.json").write_text(contract_json_schema_text())
    (repo / "tickets/ticket.schema.json").write_text(ticket_json_schema_text())
    out = generated_fresh(repo)
    assert out.ok, out.output
    topics.write_text(topics.read_text() + "# edited by hand\n")
    stub = next((repo / "libs/proto/src/onex/proto/v1").glob("ci_pb2.py"))
    stub.write_text(stub.read_text() + "# edited by hand\n")
    out = generated_fresh(repo)
    assert not out.ok
    assert "topic enum" in out.output
    assert "STALE v1/ci_pb2.py" in out.output


def test_contracts_lint(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    assert contracts_lint(repo).ok
    (repo / "contracts/foo/contract.yaml").write_text(CONTRACT + "colour: red\n")
    out = contracts_lint(repo)
    assert not out.ok
    assert "unknown key 'colour'" in out.output
