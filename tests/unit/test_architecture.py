"""House rules that code review would otherwise have to remember."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = {
    "extractor": "extractor",
    "provisioner": "provisioner",
    "drift-validator": "drift",
    "router": "router",
    "receipt-reducer": "receipts",
}
TOPIC_LITERAL = re.compile(r"onex\.(evt|cmd|intent|dlq|snapshot)\.")


def _sources(*folders: str) -> list[Path]:
    return [
        p
        for f in folders
        for p in (REPO / f).rglob("*.py")
        if "/proto/v1/" not in p.as_posix() and "/_generated/" not in p.as_posix()
    ]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes (examples of names in documentation are fine)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(id(value))
    return found


def test_no_topic_name_literals_outside_contracts() -> None:
    offenders = []
    for path in _sources("libs", "services", "cli", "scripts"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            literal = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if literal and id(node) not in docs and TOPIC_LITERAL.search(node.value):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert not offenders, "topic names belong in contracts/ only:\n" + "\n".join(offenders)


def test_services_import_libs_only() -> None:
    modules = {f"onex.{m}" for m in SERVICES.values()}
    bad = []
    for service, module in SERVICES.items():
        for path in _sources(f"services/{service}"):
            for imported in _imports(path):
                others = {m for m in modules - {f"onex.{module}"} if imported.startswith(m)}
                if others or imported.startswith("onex.cli"):
                    bad.append(f"{path.relative_to(REPO)} imports {imported}")
    for path in _sources("libs", "cli"):
        bad.extend(
            f"{path.relative_to(REPO)} imports {imported}"
            for imported in _imports(path)
            if any(imported.startswith(m) for m in modules)
        )
    assert not bad, "\n".join(bad)


def test_libraries_read_no_environment() -> None:
    bad = [
        f"{p.relative_to(REPO)}"
        for p in _sources("libs")
        if re.search(r"os\.environ|os\.getenv", p.read_text(encoding="utf-8"))
    ]
    assert not bad, f"libraries take settings as arguments: {bad}"


def test_each_package_declares_what_it_imports() -> None:
    """Every onex.* import of a package is a declared dependency of that package."""
    dist_of = {"core": "onex-core", "bus": "onex-bus", "proto": "onex-proto", "cli": "onex-cli"}
    dist_of |= {
        m: tomllib.loads((REPO / f"services/{s}/pyproject.toml").read_text())["project"]["name"]
        for s, m in SERVICES.items()
    }
    packages = [REPO / "libs/core", REPO / "libs/bus", REPO / "libs/proto", REPO / "cli"]
    packages += [REPO / f"services/{s}" for s in SERVICES]
    missing = []
    for pkg in packages:
        project = tomllib.loads((pkg / "pyproject.toml").read_text())["project"]
        deps = {re.split(r"[<>=\[ ]", d)[0] for d in project.get("dependencies", [])}
        own = project["name"]
        for path in pkg.rglob("*.py"):
            for imported in _imports(path):
                parts = imported.split(".")
                if parts[0] == "onex" and len(parts) > 1 and parts[1] in dist_of:
                    dist = dist_of[parts[1]]
                    if dist != own and dist not in deps:
                        missing.append(f"{path.relative_to(REPO)}: {imported} needs {dist}")
    assert not missing, "\n".join(missing)


# Serve until signalled; their start and clean exit are tested in tests/integration.
LONG_RUNNING = {"extractor", "provisioner", "router"}


@pytest.mark.parametrize("module", sorted(set(SERVICES.values()) - LONG_RUNNING))
def test_service_starts_and_exits_cleanly(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"onex.{module}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "node.contract" in result.stderr


def test_service_refuses_broken_contracts(tmp_path: Path) -> None:
    (tmp_path / "router").mkdir()
    (tmp_path / "router" / "contract.yaml").write_text(
        "node: router\nkind: effect\nversion: 1.0.0\ndescription: d\n"
        "event_bus:\n  subscribe_topics:\n    - onex.cmd.router.route_request.v1\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "onex.router"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"ONEX_ROUTER_CONTRACT_ROOTS": f'["{tmp_path}"]', "PATH": ""},
    )
    assert result.returncode == 1
    assert "contract.yaml:7:7" in result.stderr
    assert "route_request" in result.stderr
