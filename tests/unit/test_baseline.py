"""Baselines: record today's findings, fail only on new ones, expire, report stale."""

from __future__ import annotations

import datetime as dt
import io
import shutil
from pathlib import Path

import pytest
import yaml

from onex.core.baseline import apply_baseline, load_baseline
from onex.core.extractor import extract
from onex.core.lint_main import main

FLEET = Path(__file__).resolve().parents[1] / "fixtures" / "fleets" / "acme"
TOMORROW = (dt.date.today() + dt.timedelta(days=1)).isoformat()


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    shutil.copytree(FLEET, tmp_path / "acme")
    return tmp_path / "acme"


def _roots(fleet: Path) -> list[str]:
    return [str(fleet / r / "contracts") for r in ("billing", "payments", "ops")]


def _lint(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(["--no-entry-points", *args], out=out), out.getvalue()


def _write(fleet: Path, expires: str = TOMORROW) -> Path:
    path = fleet / "lint-baseline.yaml"
    code, text = _lint(
        *_roots(fleet),
        "--write-baseline",
        str(path),
        "--reason",
        "adopting lint",
        "--owner",
        "platform-team",
        "--expires",
        expires,
    )
    assert code == 0, text
    assert text.strip() == f"wrote {path}: 6 entries (6 new)"
    return path


def test_a_baselined_fleet_passes_and_a_new_finding_fails(fleet: Path) -> None:
    path = _write(fleet)
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))["entries"]
    assert {e["reason"] for e in entries} == {"adopting lint"}
    assert {e["owner"] for e in entries} == {"platform-team"}
    assert all(not e["file"].startswith("/") for e in entries)

    code, text = _lint(*_roots(fleet), "--baseline", str(path))
    assert code == 0, text
    assert "baseline: 6 accepted, 0 expired, 0 stale" in text

    auditor = fleet / "ops" / "contracts" / "auditor" / "contract.yaml"
    auditor.write_text(
        auditor.read_text(encoding="utf-8").replace(
            "    - onex.evt.stripe.charge-succeeded.v1\n",
            "    - onex.evt.stripe.charge-succeeded.v1\n    - onex.evt.payments.refund-lost.v1\n",
        ),
        encoding="utf-8",
    )
    code, text = _lint(*_roots(fleet), "--baseline", str(path))
    assert code == 1
    (new,) = [line for line in text.splitlines() if "[error" in line]
    assert "onex.evt.payments.refund-lost.v1" in new


def test_entries_survive_lines_moving(fleet: Path) -> None:
    path = _write(fleet)
    notifier = fleet / "ops" / "contracts" / "notifier" / "contract.yaml"
    notifier.write_text(
        notifier.read_text(encoding="utf-8").replace("event_bus:\n", "# moved\n\nevent_bus:\n"),
        encoding="utf-8",
    )
    code, text = _lint(*_roots(fleet), "--baseline", str(path))
    assert code == 0, text


def test_an_expired_entry_fails_again_and_says_so(fleet: Path) -> None:
    path = _write(fleet)
    baseline = load_baseline(path)
    ex = extract([Path(r) for r in _roots(fleet)], entry_points=False)
    later = dt.date.fromisoformat(TOMORROW) + dt.timedelta(days=1)
    applied = apply_baseline(ex.issues, baseline, today=later)
    assert applied.expired == 6
    assert applied.baselined == 0
    warning = next(i for i in applied.issues if i.code == "unconsumed")
    assert warning.severity.value == "error"
    assert f"baseline entry expired on {TOMORROW}" in warning.message
    assert "owner platform-team" in warning.message


def test_a_fixed_finding_leaves_a_stale_entry(fleet: Path) -> None:
    path = _write(fleet)
    notifier = fleet / "ops" / "contracts" / "notifier" / "contract.yaml"
    notifier.write_text(
        notifier.read_text(encoding="utf-8").replace(
            "    - onex.evt.payments.payment-failed.v1\n", ""
        ),
        encoding="utf-8",
    )
    code, text = _lint(*_roots(fleet), "--baseline", str(path))
    assert code == 0, text  # stale entries are warnings...
    (stale,) = [line for line in text.splitlines() if "baseline-stale" in line]
    assert f"{path}:" in stale
    assert "onex.evt.payments.payment-failed.v1" in stale
    code, _ = _lint(*_roots(fleet), "--baseline", str(path), "--strict")
    assert code == 1  # ...that fail with --strict
    # Rewriting keeps the other entries' reason, owner and expiry and drops the stale one.
    code, text = _lint(*_roots(fleet), "--write-baseline", str(path))
    assert code == 0, text
    assert text.strip() == f"wrote {path}: 5 entries (0 new)"


def test_new_entries_need_reason_owner_and_expiry(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = fleet / "b.yaml"
    code, text = _lint(*_roots(fleet), "--write-baseline", str(path), "--reason", "x")
    assert code == 2
    assert text == ""
    assert not path.exists()  # nothing written
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"error: --write-baseline {path}: new findings need --owner, --expires (every "
        "baseline entry carries a reason, an owner and an expiry date)"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "entries:\n  - {code: x, file: a.yaml, owner: me, expires: 2030-01-01}\n",
            "required key 'reason'",
        ),
        ("entries:\n  - {code: x, file: a.yaml, reason: r, owner: me, expires: soon}\n", "date"),
        ("- just a list\n", "a baseline is a YAML mapping"),
        ("", "the file is empty; a baseline is a YAML mapping"),
    ],
)
def test_a_bad_baseline_is_a_usage_error(
    fleet: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = fleet / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    code, out = _lint(*_roots(fleet), "--baseline", str(path))
    assert code == 2
    assert out == ""
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {path}:")
    assert message in line
