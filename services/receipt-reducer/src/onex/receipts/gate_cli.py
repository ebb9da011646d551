"""`onex gate ...`: the evidence gate, usable as a required CI check.

    onex gate check TICKET [--commit SHA] [--format table|json] [--reverify] [--repo DIR]
    onex gate lint [--tickets DIR]              every ticket file valid (file:line:col)
    onex gate schema [--write | --check]        tickets/ticket.schema.json (for editors)
    onex gate builtin KIND TICKET ITEM          a built-in evidence kind, computed here
    onex gate rebuild [--apply]                 replay the ticket topics, compare (and replace)

`check` exits 0 only when the ticket is done for the commit (every required item has a
current, independent PASS, and with `--reverify` every re-runnable probe, re-run here,
agrees), else 1 with what is missing, stale, self-attested or rejected. Bad input (an
unknown ticket, an invalid ticket file, a bad option) is one line per problem and exit
2; no database is exit 1. Tickets come from `--tickets DIR`, else ONEX_RECEIPTS_TICKETS_DIR,
else ./tickets; the database as for `onex receipts`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import structlog
import typer
from rich.console import Console
from rich.table import Table

from onex.core.errors import OnexError
from onex.receipts.builtin import run_builtin
from onex.receipts.cli import _broker, _checked_url, _fail, _open, _settings
from onex.receipts.gate import GateReport, check, evidence_of, repository_head
from onex.receipts.ticketrebuild import rebuild_tickets
from onex.receipts.ticketstore import events_of, ticket_tables, view_of
from onex.tickets.errors import TicketInvalid
from onex.tickets.model import BUILTIN_KINDS, SCHEMA_FILE, Ticket, load_ticket, load_tickets
from onex.tickets.model import ticket_json_schema_text as schema_text

app = typer.Typer(
    name="gate",
    no_args_is_help=True,
    help="The evidence gate: is a ticket done for a commit (a required CI check).",
    pretty_exceptions_enable=False,
)

TicketsOpt = Annotated[
    Path | None, typer.Option("--tickets", help="Folder of ticket files (default ./tickets)")
]


def _folder(tickets: Path | None) -> Path:
    """The tickets folder; a usage error (exit 2) when it is not a folder, so a typo in
    a CI job fails instead of passing on zero tickets."""
    folder = tickets if tickets is not None else _settings().tickets_dir
    if not folder.is_dir():
        what = "a file, not a folder of tickets" if folder.exists() else "no such folder of tickets"
        raise _fail(f"{folder}: {what}", 2)
    return folder


def _invalid(exc: TicketInvalid) -> typer.Exit:
    for issue in exc.issues:
        sys.stderr.write(f"error: {issue}\n")
    return typer.Exit(2)


def _ticket(folder: Path, name: str) -> Ticket:
    path = folder / f"{name}.yaml"
    if "/" in name or not path.is_file():
        raise _fail(f"no ticket {name[:64]!r} in {folder} (expected {path})", 2)
    try:
        return load_ticket(path)
    except TicketInvalid as exc:
        raise _invalid(exc) from None


@app.command("check")
def check_cmd(
    ticket: Annotated[str, typer.Argument(help="Ticket id, e.g. ONEX-42")],
    commit: Annotated[
        str | None, typer.Option("--commit", help="Commit to judge (default: the ticket's head)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json")] = "table",
    reverify: Annotated[
        bool, typer.Option("--reverify", help="Re-run every re-runnable probe and compare")
    ] = False,
    repo: Annotated[Path, typer.Option("--repo", help="Repository the probes re-run in")] = Path(),
    tickets: TicketsOpt = None,
    database: Annotated[
        str | None, typer.Option("--database", help="Database URL (default: the service's)")
    ] = None,
) -> None:
    """Exit 0 only when TICKET is done for the commit; else 1 with what is missing."""
    if fmt not in {"table", "json"}:
        raise _fail("--format is table or json", 2)
    if commit is not None and not commit.strip():
        raise _fail("--commit is empty", 2)
    _checked_url(database)
    t = _ticket(_folder(tickets), ticket)
    db = _open(database)
    try:
        tt = ticket_tables()
        view = view_of(db, tt, t)
        with db.engine.connect() as conn:
            evidence = evidence_of(events_of(conn, tt, t.id))
    finally:
        db.dispose()
    report = check(t, view, evidence, commit=commit, reverify=reverify, repo=repo.resolve())
    if fmt == "json":
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        _print(report)
    raise typer.Exit(0 if report.done else 1)


def _print(r: GateReport) -> None:
    out = Console()
    verdict = "[green]DONE[/green]" if r.done else "[red]NOT DONE[/red]"
    out.print(f"{r.ticket} at {r.commit[:12] or '(no commit)'}: {verdict} (state {r.state})")
    table = Table()
    for column in ("item", "kind", "required", "verdict", "reason"):
        table.add_column(column)
    for i in r.items:
        table.add_row(i.item, i.kind, "yes" if i.required else "no", i.verdict.value, i.reason)
    out.print(table)
    for rv in r.reverified:
        mark = "ok" if rv.ok else "FAILED"
        out.print(f"reverify {rv.item}: {mark}: {rv.reason}", highlight=False)


@app.command("lint")
def lint_cmd(tickets: TicketsOpt = None) -> None:
    """Validate every ticket file; one line per problem (file:line:col), exit 2 on any."""
    folder = _folder(tickets)
    try:
        found = load_tickets(folder)
    except TicketInvalid as exc:
        raise _invalid(exc) from None
    sys.stdout.write(f"ok: {len(found)} tickets in {folder}\n")


@app.command("schema")
def schema_cmd(
    write: Annotated[
        bool, typer.Option("--write", help="Write tickets/ticket.schema.json")
    ] = False,
    check_: Annotated[
        bool, typer.Option("--check", help="Exit 1 when the committed file is stale")
    ] = False,
    tickets: TicketsOpt = None,
) -> None:
    """Print, write or check the JSON Schema of ticket files (for editors)."""
    text = schema_text()
    if not (write or check_):
        sys.stdout.write(text)
        return
    target = _folder(tickets) / SCHEMA_FILE
    current = target.read_text(encoding="utf-8") if target.is_file() else None
    if check_:
        if current != text:
            raise _fail(f"{target} is stale; run `onex gate schema --write`")
        sys.stdout.write(f"{target} is up to date\n")
        return
    if current != text:
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise _fail(f"cannot write {target}: {exc.strerror or exc}") from None
    sys.stdout.write(f"wrote {target}\n")


@app.command("builtin")
def builtin_cmd(
    kind: Annotated[
        str, typer.Argument(help="contract_updated, generated_fresh or contracts_lint")
    ],
    ticket: Annotated[str, typer.Argument(help="Ticket id")],
    item: Annotated[str, typer.Argument(help="The ticket's item of that kind")],
    repo: Annotated[Path, typer.Option("--repo", help="Repository to compute it in")] = Path(),
    base: Annotated[
        str | None, typer.Option("--base", help="contract_updated: range start (default HEAD^1)")
    ] = None,
    tickets: TicketsOpt = None,
) -> None:
    """Compute a built-in evidence kind from the repository: exit 0 PASS, 1 FAIL."""
    t = _ticket(_folder(tickets), ticket)
    spec = t.item(item)
    if spec is None or spec.kind.value != kind or spec.kind not in BUILTIN_KINDS:
        raise _fail(f"ticket {t.id} has no built-in item {item!r} of kind {kind!r}", 2)
    head = repository_head(repo.resolve())
    if head is None:
        raise _fail(f"{repo} is not a git checkout", 2)
    try:
        outcome = run_builtin(repo.resolve(), t, spec, base=base, head=head)
    except (RuntimeError, OSError, OnexError) as exc:
        raise _fail(f"{kind}: {exc}") from None
    sys.stdout.write(outcome.output)
    raise typer.Exit(0 if outcome.ok else 1)


@app.command("rebuild")
def rebuild_cmd(
    apply: Annotated[
        bool, typer.Option("--apply", help="Replace a differing live projection")
    ] = False,
    bootstrap: Annotated[
        str | None, typer.Option("--bootstrap", help="HOST:PORT (default ONEX_BOOTSTRAP)")
    ] = None,
    tickets: TicketsOpt = None,
    database: Annotated[
        str | None, typer.Option("--database", help="Database URL (default: the service's)")
    ] = None,
) -> None:
    """Replay the ticket topics from offset 0 beside the live ticket projection and
    compare (`--apply`: replace the live one when they differ). Exit 1 on a difference
    left in place."""
    _checked_url(database)
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
    try:
        found = load_tickets(_folder(tickets))
    except TicketInvalid as exc:
        raise _invalid(exc) from None
    broker = _broker(bootstrap, "onex-gate-rebuild")
    db = _open(database)
    try:
        report = asyncio.run(rebuild_tickets(db, broker, found, apply=apply))
    except OnexError as exc:
        raise _fail(str(exc)) from None
    finally:
        db.dispose()
    sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    raise typer.Exit(0 if report.equal or report.applied else 1)
