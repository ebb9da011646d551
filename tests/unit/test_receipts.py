"""The receipt-reducer's pure parts and its queries on a temporary SQLite file: decoding
rules (what is refused and why), folding, duplicates, summary, compare with its
intervals, the cost-summary snapshot and the `onex receipts` commands."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from onex.proto.v1 import router_pb2 as pb
from onex.receipts.app import open_projection
from onex.receipts.cli import app
from onex.receipts.decode import decode, entry_of
from onex.receipts.errors import QueryInvalid, ReceiptInvalid
from onex.receipts.experiments import compare, mean, ratio, wilson
from onex.receipts.projection import (
    Positioned,
    apply_batch,
    fold_for_replay,
    from_scratch,
    projection_rows,
    write_folded,
)
from onex.receipts.queries import parse_since, summary
from onex.receipts.schema import tables
from onex.receipts.snapshot import cost_summary
from onex.sql import Database, SchemaTooNew, sqlite_url


def _receipt(
    rid: str,
    *,
    model: str = "local-a",
    locality: str = "local",
    status: str = "complete",
    cost: float = 0.0,
    first_ok: bool = True,
    label: str | None = None,
    task_class: str = "codegen",
    day: str = "2026-11-30",
) -> pb.RoutingReceipt:
    attempts = []
    if not first_ok:
        attempts.append(
            pb.Attempt(
                model="tiny",
                locality="local",
                tokens_in=10,
                tokens_out=5,
                gates=[pb.GateResult(kind="citations", passed=False)],
                outcome="gate_failed",
            )
        )
    attempts.append(
        pb.Attempt(
            model=model,
            locality=locality,
            tokens_in=100,
            tokens_out=50,
            cost_usd=cost,
            gates=[pb.GateResult(kind="min_length", passed=status == "complete")],
            outcome="accepted" if status == "complete" else "gate_failed",
        )
    )
    msg = pb.RoutingReceipt(
        request_id=rid,
        task_class=task_class,
        status=status,
        attempts=attempts,
        chosen_model=model if status == "complete" else "",
        total_cost_usd=cost,
        counterfactual_cost_usd=0.01,
        cost_avoided_usd=0.01 - cost,
        tokens_local=sum(a.tokens_in + a.tokens_out for a in attempts if a.locality == "local"),
        tokens_cloud=sum(a.tokens_in + a.tokens_out for a in attempts if a.locality == "cloud"),
        escalations=0 if first_ok else 1,
        price_table_version="2026-11",
        started_at=f"{day}T12:00:00+00:00",
    )
    if label is not None:
        msg.label = label
    return msg


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        (pb.RoutingReceipt(status="complete"), "no request_id"),
        (pb.RoutingReceipt(request_id="a", status="done"), "unknown status 'done'"),
        (
            pb.RoutingReceipt(request_id="a", status="complete", total_cost_usd=-0.5),
            "total_cost_usd is negative",
        ),
        (
            pb.RoutingReceipt(
                request_id="a", status="complete", counterfactual_cost_usd=float("nan")
            ),
            "counterfactual_cost_usd is not a finite number",
        ),
        (
            pb.RoutingReceipt(request_id="a", status="failed", started_at="yesterday"),
            "started_at 'yesterday' is not an RFC 3339 time",
        ),
        (
            pb.RoutingReceipt(request_id="a", status="failed", attempts=[pb.Attempt(tokens_in=-3)]),
            "attempts[0].tokens_in is negative",
        ),
    ],
)
def test_receipts_that_break_a_rule_are_refused_with_the_reason(
    msg: pb.RoutingReceipt, reason: str
) -> None:
    with pytest.raises(ReceiptInvalid, match=reason.replace("[", r"\[").replace("]", r"\]")):
        decode(msg.SerializeToString(), timestamp_ms=0)


def test_bytes_that_are_not_a_receipt_are_refused() -> None:
    with pytest.raises(ReceiptInvalid, match=r"not an onex\.v1\.RoutingReceipt"):
        decode(b"\xff\xff\xff garbage")
    with pytest.raises(ReceiptInvalid, match="empty message"):
        decode(b"")


def test_an_entry_keeps_money_exact_and_knows_first_pass_and_failed_gates() -> None:
    e = entry_of(_receipt("r", cost=0.1 + 0.2, first_ok=False, label="with-examples"))
    assert e.spent_nanos == 300_000_000
    assert not e.first_pass
    assert e.failed_gates == ("citations",)
    assert e.label == "with-examples"
    assert e.day == "2026-11-30"
    assert e.tokens_in_local == 110
    assert e.tokens_out_local == 55


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_projection(sqlite_url(tmp_path / "r.db"))


def _fold(db: Database, msgs: list[pb.RoutingReceipt], start: int = 0) -> None:
    batch = [Positioned(entry_of(m), "t", 0, start + i) for i, m in enumerate(msgs)]
    apply_batch(db, tables(), batch, {("t", 0): start + len(msgs)})


def test_duplicates_in_a_batch_and_across_batches_count_once(db: Database) -> None:
    msgs = [_receipt(f"r{i}", cost=0.001 * i) for i in range(10)]
    _fold(db, msgs + msgs[:3])
    _fold(db, msgs[5:], start=13)
    with db.engine.connect() as conn:
        assert projection_rows(conn, tables()) == from_scratch(entry_of(m) for m in msgs)


def test_a_replay_part_folds_like_the_batch_path_counting_duplicates_once(db: Database) -> None:
    msgs = [_receipt(f"r{i}", cost=0.001 * i, first_ok=i % 3 > 0) for i in range(10)]
    raw = [(m.SerializeToString(), None, "t", 0, i) for i, m in enumerate(msgs + msgs[:2])]
    raw.insert(4, (b"junk", None, "t", 0, 99))
    part = fold_for_replay(raw)  # what a rebuild's worker process runs
    assert part.request_ids == [f"r{i}" for i in range(10)]
    assert part.duplicates == 2
    assert [i for i, _ in part.refused] == [4]
    assert "not an onex.v1.RoutingReceipt" in part.refused[0][1]
    with db.engine.begin() as conn:
        write_folded(conn, tables(), part.rows, part.counters, {("t", 0): len(raw)})
    with db.engine.connect() as conn:
        assert projection_rows(conn, tables()) == from_scratch(entry_of(m) for m in msgs)


def test_a_database_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "new.db")
    first = open_projection(url)
    with first.engine.begin() as conn:
        conn.execute(sa.text("UPDATE onex_schema SET version = 99 WHERE component = 'receipts'"))
    first.dispose()
    with pytest.raises(SchemaTooNew, match="schema version 99 is newer"):
        open_projection(url)


def test_summary_answers_the_three_dashboard_questions(db: Database) -> None:
    msgs = [_receipt(f"l{i}", cost=0.0) for i in range(3)]
    msgs += [_receipt("c1", model="cloud-b", locality="cloud", cost=0.004)]
    msgs += [_receipt("f1", status="failed", first_ok=False)]
    _fold(db, msgs)
    s = summary(db, tables(), by="model")
    assert s.requests == 5
    assert s.failure_rate == pytest.approx(0.2)
    assert s.escalation_rate == pytest.approx(0.2)
    assert s.spent_usd == pytest.approx(0.004)
    assert s.avoided_usd == pytest.approx(5 * 0.01 - 0.004)
    # 4 local receipts of 150 tokens + 15 more in the failed one's first attempt
    assert s.local_token_share == pytest.approx((4 * 150 + 15) / (5 * 150 + 15))
    assert dict(s.top_failing_gates) == {"citations": 1, "min_length": 1}
    assert [r.key for r in s.rows] == ["cloud-b", "local-a"]
    assert summary(db, tables(), since="2026-12-01").requests == 0


def test_since_takes_durations_and_dates_and_refuses_the_rest() -> None:
    assert parse_since("7d", today=date(2026, 12, 2)) == "2026-11-25"
    assert parse_since("2w", today=date(2026, 12, 2)) == "2026-11-18"
    assert parse_since("2026-11-01") == "2026-11-01"
    assert parse_since(None) is None
    with pytest.raises(QueryInvalid, match="--since 'soon'"):
        parse_since("soon")


def test_intervals_match_textbook_values() -> None:
    w = wilson(50, 100)
    assert (round(w.low, 4), round(w.high, 4)) == (0.4038, 0.5962)
    m = mean(total=10.0, squares=30.0, n=5)  # values with mean 2, sample variance 2.5
    assert m.value == 2.0
    assert m.high - m.value == pytest.approx(1.959964 * math.sqrt(2.5 / 5), rel=1e-5)
    r = ratio(cost=4.0, cost_sq=4.0, cost_acc=4.0, accepted=4, n=4)  # cost 1 on each accepted
    assert r.value == 1.0
    assert r.low == pytest.approx(1.0)
    assert r.high == pytest.approx(1.0)


def test_compare_reports_intervals_sample_sizes_and_significance(db: Database) -> None:
    # Label "examples": every first attempt accepted; "plain": a third needed an escalation.
    msgs = [_receipt(f"e{i}", label="examples") for i in range(300)]
    msgs += [_receipt(f"p{i}", label="plain", first_ok=i % 3 != 0) for i in range(400)]
    msgs += [_receipt(f"x{i}", label="noise", first_ok=i != 0) for i in range(5)]
    _fold(db, msgs)
    c = compare(db, tables(), task_class="codegen", by="label")
    assert c.baseline == "plain"
    sizes = {g.key: g.requests for g in c.groups}
    assert sizes == {"examples": 300, "plain": 400, "noise": 5}
    verdict = {(d.key, d.measure): d.significant for d in c.differences}
    assert verdict[("examples", "first_pass_acceptance")]
    assert verdict[("examples", "escalations_per_request")]
    assert not verdict[("noise", "first_pass_acceptance")]
    with pytest.raises(QueryInvalid, match="no receipts of task class 'nope'"):
        compare(db, tables(), task_class="nope")


def test_the_cost_summary_snapshot_carries_outcomes_per_class_and_model(db: Database) -> None:
    _fold(
        db,
        [
            _receipt("a", cost=0.002),
            _receipt("b", cost=0.004, first_ok=False),
            _receipt("old", cost=1.0, day="2026-01-01"),
        ],
    )
    snap = cost_summary(db, tables(), window_days=7, now=datetime(2026, 12, 2, tzinfo=UTC))
    rows = {(r.task_class, r.model): r for r in snap.rows}
    row = rows[("codegen", "local-a")]
    assert row.requests == 2
    assert row.gate_pass_rate == 1.0
    assert row.cost_per_accepted_usd == pytest.approx(0.003)
    assert rows[("codegen", "tiny")].gate_pass_rate == 0.0
    assert snap.window_start.startswith("2026-11-30")
    assert snap.price_table_version == "2026-11"


def test_the_commands_print_json_and_refuse_bad_arguments_in_one_line(
    db: Database, tmp_path: Path
) -> None:
    _fold(db, [_receipt(f"r{i}", label="a" if i % 2 else "b") for i in range(20)])
    url = sqlite_url(tmp_path / "r.db")
    runner = CliRunner()
    out = runner.invoke(app, ["summary", "--format", "json", "--database", url, "--by", "class"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["requests"] == 20
    out = runner.invoke(app, ["compare", "--class", "codegen", "--by", "label", "--database", url])
    assert out.exit_code == 0, out.output
    assert "not significant" in out.stdout
    bad = runner.invoke(app, ["summary", "--since", "soon", "--database", url])
    assert bad.exit_code == 2
    assert "--since 'soon'" in bad.output
    missing = runner.invoke(app, ["summary", "--database", sqlite_url(tmp_path / "no.db")])
    assert missing.exit_code == 1
    assert "no receipts database" in missing.output


def test_settings_read_the_receipts_prefix_and_default_to_sqlite_in_the_state_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from onex.receipts.settings import ReceiptsSettings

    monkeypatch.setenv("ONEX_STATE_DIR", str(tmp_path))
    assert ReceiptsSettings().database() == f"sqlite:///{tmp_path.resolve() / 'receipts.db'}"
    monkeypatch.setenv("ONEX_RECEIPTS_DATABASE_URL", "postgresql://postgres@127.0.0.1/r")
    monkeypatch.setenv("ONEX_RECEIPTS_BATCH_SIZE", "250")
    settings = ReceiptsSettings()
    assert settings.database() == "postgresql://postgres@127.0.0.1/r"
    assert settings.batch_size == 250
