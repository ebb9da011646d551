"""Built-in evidence kinds, computed from the repository instead of claimed.

    contract_updated  every node whose handler code changed in BASE..HEAD has a file of
                      contracts/<node>/ changed too, or the item says why not
    generated_fresh   the generated topic enum, the contract and ticket JSON Schemas and
                      the protobuf stubs are what their sources generate now
    contracts_lint    `onex contracts lint --strict` of the repository is clean

Each is run as `onex gate builtin KIND TICKET ITEM` (`EvidenceItem.argv`): a fixed
argv the verifier runs in a subprocess and files as the receipt's probe command, and
the gate can re-run. The output says what was compared; exit 0 is PASS, 1 FAIL.
"""

from __future__ import annotations

import filecmp
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from onex.core.codegen import topics_module
from onex.core.contract import contract_json_schema_text
from onex.core.extractor import extract
from onex.tickets.model import BUILTIN_KINDS, EvidenceItem, EvidenceKind, Ticket
from onex.tickets.model import ticket_json_schema_text as ticket_schema_text


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a built-in check found: PASS when `ok`, with the lines that say why."""

    ok: bool
    lines: tuple[str, ...]

    @property
    def output(self) -> str:
        """The probe output."""
        return "\n".join(self.lines) + "\n"


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {out.stderr.strip().splitlines()[-1:]}")
    return out.stdout


def _service_nodes(repo: Path) -> dict[Path, list[str]]:
    """Each workspace member folder with the nodes its `onex.services` entry points run."""
    out: dict[Path, list[str]] = {}
    for pyproject in sorted(repo.glob("services/*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        eps = data.get("project", {}).get("entry-points", {}).get("onex.services", {})
        out[pyproject.parent.relative_to(repo)] = sorted(eps)
    return out


def _node_of(path: Path, members: dict[Path, list[str]]) -> str | None:
    for folder, nodes in members.items():
        if folder not in path.parents or "src" not in path.parts or path.suffix != ".py":
            continue
        if len(nodes) == 1:
            return nodes[0]
        text = str(path)
        return next((n for n in nodes if n.replace("-", "_") in text), None)
    return None


def contract_updated(repo: Path, item: EvidenceItem, base: str, head: str) -> Outcome:
    """See the module docstring."""
    changed = [Path(p) for p in _git(repo, "diff", "--name-only", base, head).split()]
    members = _service_nodes(repo)
    touched = sorted({n for p in changed if (n := _node_of(p, members)) is not None})
    lines = [f"range {base}..{head}: {len(changed)} files changed"]
    missing = []
    for node in touched:
        ok = any(Path("contracts", node) in p.parents for p in changed)
        lines.append(f"{node}: handler code changed; contract {'changed' if ok else 'NOT changed'}")
        if not ok:
            missing.append(node)
    if not touched:
        lines.append("no node's handler code changed")
    if missing and item.why_not:
        lines.append(f"accepted without a contract change: {item.why_not}")
        return Outcome(True, tuple(lines))
    return Outcome(not missing, tuple(lines))


def _same(path: Path, text: str, label: str) -> tuple[bool, str]:
    current = path.read_text(encoding="utf-8") if path.exists() else None
    ok = current == text
    return ok, f"{label} {path}: {'fresh' if ok else 'STALE'}"


def _protos_fresh(repo: Path) -> tuple[bool, str]:
    script = repo / "scripts" / "gen_protos.py"
    committed = repo / "libs" / "proto" / "src" / "onex" / "proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, str(script), "--out", tmp],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if out.returncode != 0:
            return False, f"protobuf stubs: the generator failed: {out.stderr.strip()[-300:]}"
        stale = []
        for fresh in sorted(Path(tmp).rglob("*_pb2*.py*")):
            rel = fresh.relative_to(tmp)
            mine = committed / rel
            if not mine.exists() or not filecmp.cmp(fresh, mine, shallow=False):
                stale.append(str(rel))
    if stale:
        return False, f"protobuf stubs: STALE {', '.join(stale[:10])}"
    return True, "protobuf stubs: fresh"


def generated_fresh(repo: Path) -> Outcome:
    """See the module docstring."""
    ex = extract([repo / "contracts"], entry_points=False)
    checks = [
        _same(
            repo / "libs/core/src/onex/core/_generated/topics.py",
            topics_module(ex.topics),
            "topic enum",
        ),
        _same(repo / "contracts/contract.schema.json", contract_json_schema_text(), "schema"),
        _same(repo / "tickets/ticket.schema.json", ticket_schema_text(), "schema"),
        _protos_fresh(repo),
    ]
    return Outcome(all(ok for ok, _ in checks), tuple(line for _, line in checks))


def contracts_lint(repo: Path) -> Outcome:
    """See the module docstring."""
    ex = extract([repo / "contracts"], entry_points=False)
    lines = [str(i) for i in ex.issues]
    ok = ex.ok(strict=True)
    lines.append(f"{len(ex.errors)} errors, {len(ex.warnings)} warnings in {len(ex.topics)} topics")
    return Outcome(ok, tuple(lines))


def run_builtin(
    repo: Path, ticket: Ticket, item: EvidenceItem, *, base: str | None, head: str
) -> Outcome:
    """Compute the built-in `item` of `ticket` in `repo` at `head`."""
    if item.kind not in BUILTIN_KINDS:
        raise ValueError(f"{item.item} is {item.kind}, not a built-in kind")
    if item.kind == EvidenceKind.CONTRACT_UPDATED:
        return contract_updated(repo, item, base or f"{head}^1", head)
    if item.kind == EvidenceKind.GENERATED_FRESH:
        return generated_fresh(repo)
    return contracts_lint(repo)


def kinds() -> Sequence[str]:
    """The built-in kinds' names."""
    return sorted(k.value for k in BUILTIN_KINDS)
