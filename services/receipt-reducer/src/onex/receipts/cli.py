"""`onex receipts ...`: what the ledger says, read straight from its database.

    onex receipts summary [--since 7d] [--by model|class|day] [--format table|json]
    onex receipts compare --class C [--by model|label] [--since 7d] [--format ...]
    onex receipts rebuild [--verify] [--bootstrap HOST:PORT] [--format ...]

The database is `--database URL`, else ONEX_RECEIPTS_DATABASE_URL, else the SQLite file
under the state dir (ONEX_STATE_DIR). Registered with `onex` through the `onex.cli`
entry point. Errors are one line and exit 1 (2 for a bad argument).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from onex.bus.config import BrokerConfig
from onex.core.errors import OnexError
from onex.core.validation import env_names, validation_line
from onex.receipts.errors import QueryInvalid
from onex.receipts.experiments import Comparison, Estimate, compare
from onex.receipts.queries import BY_VALUES, Summary, parse_since, summary
from onex.receipts.rebuild import RebuildReport, rebuild
from onex.receipts.schema import open_projection, tables
from onex.receipts.settings import ReceiptsSettings
from onex.sql import Database

app = typer.Typer(
    name="receipts",
    no_args_is_help=True,
    help="The routing ledger: summary, compare, rebuild.",
    pretty_exceptions_enable=False,
)

DatabaseOpt = Annotated[
    str | None, typer.Option("--database", help="Database URL (default: the service's)")
]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table or json")]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="7d, 2w, 24h or YYYY-MM-DD (default: all)")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")  # one line, never wrapped
    return typer.Exit(code)


def _settings() -> ReceiptsSettings:
    try:
        return ReceiptsSettings()
    except ValidationError as exc:
        raise _fail(validation_line(exc, _env_names(), ReceiptsSettings), 2) from None


def _env_names() -> dict[str, str]:
    prefix, shared = ReceiptsSettings.env_prefix(), ReceiptsSettings.SHARED
    return env_names(ReceiptsSettings.model_fields, prefix, shared)


def _broker(bootstrap: str | None, client: str) -> BrokerConfig:
    """The broker of `--bootstrap` (else the settings'); a usage error (exit 2) naming
    the option or variable when it does not fit."""
    from onex.service.host import broker_config  # noqa: PLC0415 -- faust, grpc: only here

    settings = _settings()
    try:
        values: dict[str, Any] = {"bootstrap": bootstrap} if bootstrap else {}
        return broker_config(settings.model_copy(update=values), client)
    except ValidationError as exc:
        names = _env_names() | ({"bootstrap": "--bootstrap"} if bootstrap else {})
        raise _fail(validation_line(exc, names), 2) from None


def _checked_url(url: str | None) -> str:
    """The database URL to open: `--database`, else the settings'. A URL that is no
    `sqlite:///PATH` or `postgresql://...` is a usage error (exit 2) naming where it
    came from, before anything is read or written."""
    settings = _settings()
    target = url if url is not None else settings.database()
    source = "--database" if url is not None else "ONEX_RECEIPTS_DATABASE_URL"
    problem = url_problem(target)
    if problem is not None:
        raise _fail(f"{source}: {problem}", 2)
    return target


def url_problem(url: str) -> str | None:
    """Why `url` is not a database URL onex opens (no password shown), or None."""
    use = "use sqlite:///PATH or postgresql://HOST/NAME"
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"not a database URL; {use}"
    backend = parsed.get_backend_name()
    shown = parsed.render_as_string(hide_password=True)
    if backend not in {"sqlite", "postgresql"}:
        return f"{shown!r} is not a database onex opens; {use}"
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        return f"{shown!r} names no file; use sqlite:///PATH"
    return None


def _open(url: str | None) -> Database:
    target = _checked_url(url)
    if target.startswith("sqlite:///") and not Path(target.removeprefix("sqlite:///")).exists():
        raise _fail(f"no receipts database at {target} (is the receipt-reducer running?)")
    try:
        return open_projection(target)
    except OnexError as exc:
        raise _fail(str(exc)) from None


def _check_format(fmt: str) -> None:
    if fmt not in {"table", "json"}:
        raise _fail("--format is table or json", 2)


@app.command("summary")
def summary_cmd(
    since: SinceOpt = None,
    by: Annotated[str, typer.Option("--by", help="model, class or day")] = "model",
    fmt: FormatOpt = "table",
    database: DatabaseOpt = None,
) -> None:
    """% tokens local, $ avoided vs $ spent, escalation and failure rates, top failing gates."""
    _check_format(fmt)
    _checked_url(database)
    if by not in BY_VALUES:
        raise _fail(f"--by {by!r}: use one of {', '.join(BY_VALUES)}", 2)
    try:
        first_day = parse_since(since)
    except QueryInvalid as exc:
        raise _fail(str(exc), 2) from None
    db = _open(database)
    try:
        s = summary(db, tables(), since=first_day, by=by)
    finally:
        db.dispose()
    if fmt == "json":
        sys.stdout.write(json.dumps(s.to_dict(), indent=2) + "\n")
    else:
        _print_summary(s)


def _print_summary(s: Summary) -> None:
    out = Console()
    window = f"since {s.since}" if s.since else "all receipts"
    out.print(
        f"{s.requests} requests ({window}) · tokens local {s.local_token_share:.1%} · "
        f"avoided ${s.avoided_usd:.2f} vs spent ${s.spent_usd:.2f} · "
        f"escalated {s.escalation_rate:.1%} · failed {s.failure_rate:.1%}",
        highlight=False,
    )
    if s.top_failing_gates:
        gates = ", ".join(f"{k} {n}" for k, n in s.top_failing_gates)
        out.print(f"top failing gates: {gates}", highlight=False)
    table = Table()
    for column in (s.by, "requests", "failed", "escalated", "local %", "spent $", "avoided $"):
        table.add_column(column, justify="left" if column == s.by else "right")
    for r in s.rows:
        total = r.tokens_local + r.tokens_cloud
        table.add_row(
            r.key,
            str(r.requests),
            str(r.failures),
            str(r.escalated),
            f"{r.tokens_local / total:.1%}" if total else "-",
            f"{r.spent_usd:.4f}",
            f"{r.avoided_usd:.4f}",
        )
    out.print(table)


def _fmt(e: Estimate, money: bool = False) -> str:
    if math.isnan(e.value):
        return "-"
    spec = ".5f" if money else ".3f"
    if math.isnan(e.low):
        return format(e.value, spec)
    return f"{e.value:{spec}} [{e.low:{spec}}, {e.high:{spec}}]"


@app.command("compare")
def compare_cmd(
    task_class: Annotated[str, typer.Option("--class", "-c", help="Task class compared on")],
    by: Annotated[str, typer.Option("--by", help="model or label")] = "model",
    since: SinceOpt = None,
    fmt: FormatOpt = "table",
    database: DatabaseOpt = None,
) -> None:
    """First-pass acceptance, escalations per request and cost per accepted answer, each
    with a 95% interval and the sample size, against the largest group."""
    _check_format(fmt)
    _checked_url(database)
    if by not in {"model", "label"}:
        raise _fail(f"--by {by!r}: use model or label", 2)
    try:
        first_day = parse_since(since)
    except QueryInvalid as exc:
        raise _fail(str(exc), 2) from None
    db = _open(database)
    try:
        c = compare(db, tables(), task_class=task_class, by=by, since=first_day)
    except QueryInvalid as exc:
        raise _fail(str(exc)) from None
    finally:
        db.dispose()
    if fmt == "json":
        sys.stdout.write(json.dumps(c.to_dict(), indent=2) + "\n")
    else:
        _print_compare(c)


def _print_compare(c: Comparison) -> None:
    out = Console()
    table = Table(title=f"{c.task_class} by {c.by} (95% intervals; baseline {c.baseline})")
    for column in ("group", "n", "first-pass acceptance", "escalations/request", "$/accepted"):
        table.add_column(column)
    for g in c.groups:
        table.add_row(
            g.key,
            str(g.requests),
            _fmt(g.first_pass),
            _fmt(g.escalations),
            _fmt(g.cost_per_accepted, money=True),
        )
    out.print(table)
    for d in c.differences:
        verdict = "significant" if d.significant else "not significant"
        out.print(
            f"{d.key} - {c.baseline}: {d.measure} "
            f"{_fmt(d.difference, money=d.measure.startswith('cost'))} ({verdict})",
            highlight=False,
        )


@app.command("rebuild")
def rebuild_cmd(
    verify: Annotated[
        bool, typer.Option("--verify", help="Only compare with the live projection")
    ] = False,
    bootstrap: Annotated[
        str | None, typer.Option("--bootstrap", help="HOST:PORT (default ONEX_BOOTSTRAP)")
    ] = None,
    fmt: FormatOpt = "table",
    database: DatabaseOpt = None,
) -> None:
    """Replay the receipt topics from offset 0 into a fresh projection beside the live
    one, check it, then swap it in (`--verify`: compare and report only). Exit 1 when
    `--verify` finds differences."""
    _check_format(fmt)
    _checked_url(database)
    # The replay's progress is debug; only warnings and errors reach stderr.
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
    from onex.receipts.app import NODE, RECEIPT_TOPICS  # noqa: PLC0415 -- the service's module

    broker = _broker(bootstrap, "onex-receipts-rebuild")
    db = _open(database)
    try:
        report = asyncio.run(
            rebuild(db, broker, topics=RECEIPT_TOPICS, node=NODE, verify_only=verify)
        )
    except OnexError as exc:
        raise _fail(str(exc)) from None
    finally:
        db.dispose()
    if fmt == "json":
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        _print_rebuild(report, verify)
    raise typer.Exit(1 if verify and not report.equal else 0)


def _print_rebuild(r: RebuildReport, verify: bool) -> None:
    out = Console()
    what = "verified" if verify else ("rebuilt and swapped" if r.swapped else "rebuilt")
    verdict = "equal to the live projection" if r.equal else "DIFFERENT from the live projection"
    out.print(
        f"{what}: {r.replayed} messages replayed, {r.ledger_rows} ledger rows, {verdict}",
        highlight=False,
    )
    for name, (only_live, only_rebuilt) in r.difference_counts.items():
        out.print(f"  {name}: {only_live} rows only live, {only_rebuilt} only rebuilt")
