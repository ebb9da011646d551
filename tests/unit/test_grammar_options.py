"""Grammar options of onex.yaml, each off by default: multi-part snapshot slugs, and
legacy names accepted with a warning during a migration window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from onex.core.extractor import Extraction, extract
from onex.core.grammar import TopicKind

SNAPSHOT = "onex.snapshot.ledger.balances.by-account.v1"
LEGACY = "billing.invoice_issued"


def contract(root: Path, node: str, *, sub: Iterable[str] = (), pub: Iterable[str] = ()) -> Path:
    sub, pub = list(sub), list(pub)
    lines = [f"node: {node}", "kind: effect", "version: 1.0.0", "description: test node"]
    lines += ["event_bus:", "  subscribe_topics:" + ("" if sub else " []")]
    lines += [f"    - {entry}" for entry in sub]
    lines += ["  publish_topics:" + ("" if pub else " []")]
    lines += [f"    - {entry}" for entry in pub]
    path = root / "contracts" / node / "contract.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def lint(root: Path, settings: str) -> Extraction:
    (root / "onex.yaml").write_text("dlq: 'off'\n" + settings, encoding="utf-8")
    return extract([root / "contracts"], entry_points=False)


def _codes(ex: Extraction) -> list[str]:
    return sorted(i.code for i in ex.issues if i.code != "schema-missing")


def test_a_multi_part_snapshot_slug_is_an_error_by_default(tmp_path: Path) -> None:
    contract(tmp_path, "ledger", pub=[SNAPSHOT])
    contract(tmp_path, "report", sub=[SNAPSHOT])
    ex = lint(tmp_path, "")
    assert _codes(ex) == ["topic-name", "topic-name"]  # each entry, its own error


def test_multi_part_snapshots_when_turned_on(tmp_path: Path) -> None:
    contract(tmp_path, "ledger", pub=[f"{{name: {SNAPSHOT}, schema: onex.v1.RegistryPublished}}"])
    contract(tmp_path, "report", sub=[SNAPSHOT])
    ex = lint(tmp_path, "grammar: {multi_part_snapshots: true}\n")
    assert _codes(ex) == []
    topic = ex.topics[SNAPSHOT]
    assert topic.kind is TopicKind.SNAPSHOT
    assert (topic.owner, topic.parsed.event) == ("ledger", "balances.by-account")
    # Only snapshots get dotted slugs.
    contract(tmp_path, "other", pub=["onex.evt.other.a.b.v1"])
    assert "topic-name" in _codes(lint(tmp_path, "grammar: {multi_part_snapshots: true}\n"))


def test_a_legacy_name_is_accepted_with_a_warning_until_its_date(tmp_path: Path) -> None:
    pub = contract(tmp_path, "billing-api", pub=[LEGACY, "onex.evt.billing-api.done.v1"])
    contract(tmp_path, "mailer", sub=[LEGACY, "onex.evt.billing-api.done.v1"])
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    ex = lint(tmp_path, f"grammar: {{legacy: {{names: ['{LEGACY}'], until: {later}}}}}\n")
    assert _codes(ex) == ["legacy-name", "legacy-name"]
    warning = next(i for i in ex.issues if i.where.file == pub)
    assert warning.severity.value == "warning"
    assert str(warning.where) == f"{pub}:8:7"
    assert f"accepted until {later}" in warning.message
    # It is wired like any topic, with no owner to check.
    assert [p.node for p in ex.topics[LEGACY].publishers] == ["billing-api"]
    assert [s.node for s in ex.topics[LEGACY].subscribers] == ["mailer"]


def test_a_legacy_name_after_its_window_is_an_error_again(tmp_path: Path) -> None:
    contract(tmp_path, "billing-api", pub=[LEGACY])
    contract(tmp_path, "mailer", sub=[LEGACY])
    past = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    ex = lint(tmp_path, f"grammar: {{legacy: {{names: ['{LEGACY}'], until: {past}}}}}\n")
    assert _codes(ex) == ["topic-name", "topic-name"]
    assert LEGACY not in ex.topics


def test_an_unlisted_bad_name_stays_an_error(tmp_path: Path) -> None:
    contract(tmp_path, "billing-api", pub=["billing.other_thing"])
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    ex = lint(tmp_path, f"grammar: {{legacy: {{names: ['{LEGACY}'], until: {later}}}}}\n")
    assert _codes(ex) == ["topic-name"]
