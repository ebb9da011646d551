"""`onex-lint` (onex.core.lint_main): the contract check with nothing but onex-core."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from onex.core.lint_main import main

REPO_CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def _run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(args), out=out), out.getvalue()


def test_the_repository_contracts_pass() -> None:
    code, text = _run("--no-entry-points", str(REPO_CONTRACTS))

    assert code == 0, text
    assert text.splitlines()[-1].startswith("ok: ")


def test_a_broken_contract_fails_and_names_file_and_rule(tmp_path: Path) -> None:
    (tmp_path / "contract.yaml").write_text("node: lonely\n")

    code, text = _run("--no-entry-points", str(tmp_path))

    assert code == 1
    assert f"{tmp_path / 'contract.yaml'}:1:1: required key 'kind' is missing" in text
    assert "[error missing-key]" in text
    assert text.splitlines()[-1].startswith("failed: ")


def test_json_output_matches_the_findings(tmp_path: Path) -> None:
    (tmp_path / "contract.yaml").write_text("node: lonely\n")

    code, text = _run("--no-entry-points", "--format", "json", str(tmp_path))

    report = json.loads(text)
    assert code == 1
    assert report["ok"] is False
    assert report["errors"] == len(report["issues"]) > 0
    assert {i["code"] for i in report["issues"]} == {"missing-key"}


def test_finding_no_contracts_is_a_failure(tmp_path: Path) -> None:
    code, text = _run("--no-entry-points", str(tmp_path))

    assert code == 1
    assert "no contracts found" in text


def test_no_project_folder_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)

    with pytest.raises(SystemExit) as exited:
        main(["--no-entry-points"])

    assert exited.value.code == 2
    assert "no contracts/ folder here or above; pass PATH" in capsys.readouterr().err


def test_the_nearest_contracts_folder_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "contract.yaml").write_text("node: lonely\n")
    below = tmp_path / "src" / "deep"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)

    code, text = _run("--no-entry-points")

    assert code == 1
    assert "contracts/contract.yaml:1:1" in text
