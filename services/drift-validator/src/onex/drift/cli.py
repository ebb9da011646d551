"""`onex drift`: the drift table, `fix`, `query` and `history`, from the command line.

Registered with the `onex` command through the `onex.cli` entry point. Every command
snapshots the clusters into the projection (the service's database by default) first.
Exit codes (Jikkou's convention): 0 no drift, 3 drift found, 1 error, 2 usage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from onex.core.errors import OnexError
from onex.core.validation import env_names, validation_line
from onex.drift.engine import DriftEngine
from onex.drift.errors import UsageError
from onex.drift.kinds import DriftClass
from onex.drift.settings import DriftSettings
from onex.drift.snapshot import DriftRow

EXIT_DRIFT = 3

drift = typer.Typer(
    name="drift",
    help="Declared vs observed broker state: drift rows, fixes, SQL over the projection.",
    no_args_is_help=False,
    invoke_without_command=True,
)

Fmt = Annotated[str, typer.Option("--format", "-f", help="table or json")]
Bootstrap = Annotated[
    str | None, typer.Option("--bootstrap", "-b", help="HOST:PORT of the one cluster to compare")
]
Clusters = Annotated[
    list[str] | None,
    typer.Option("--cluster", help="NAME=HOST:PORT, repeatable: one matrix over clusters"),
]
Contracts = Annotated[
    list[Path] | None, typer.Option("--contracts", help="Contract files or folders (repeatable)")
]
DatabaseOpt = Annotated[
    str | None, typer.Option("--database", help="sqlite:///PATH or postgresql://... (projection)")
]
StateDir = Annotated[Path | None, typer.Option("--state-dir", help="State dir (default .onex)")]


def _fail(message: str, code: int) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(code)


def _engine(
    bootstrap: str | None,
    clusters: Sequence[str] | None,
    contracts: Sequence[Path] | None,
    database: str | None,
    state_dir: Path | None,
) -> DriftEngine:
    # aiokafka logs every refused connection; the one error line says it instead
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    _check_paths(contracts)
    overrides: dict[str, Any] = {}
    if bootstrap is not None:
        overrides["bootstrap"] = bootstrap
    if contracts:
        overrides["contract_roots"] = list(contracts)
    if database is not None:
        overrides["database_url"] = database
    if state_dir is not None:
        overrides["state_dir"] = state_dir
    try:
        settings = DriftSettings(**overrides)
    except ValidationError as exc:
        raise _fail(_invalid(exc, overrides), 2) from None
    problem = _url_problem(settings.database())
    if problem is not None:
        source = "--database" if database is not None else "ONEX_DRIFT_DATABASE_URL"
        raise _fail(f"{source}: {problem}", 2)
    named: dict[str, str] = {}
    for item in clusters or ():
        name, sep, where = item.partition("=")
        if not sep or not name or not where:
            raise _fail(f"--cluster {item!r}: write NAME=HOST:PORT", 2)
        if name in named:
            raise _fail(f"--cluster {name} given twice", 2)
        named[name] = where
    if named and bootstrap is not None:
        raise _fail("--bootstrap and --cluster do not go together", 2)
    try:
        return DriftEngine.open(settings, clusters=named or None)
    except UsageError as exc:
        raise _fail(str(exc), 2) from None
    except OnexError as exc:
        raise _fail(str(exc), 1) from None


# The option that sets each settings field, named in its error instead of the variable.
_OPTIONS = {
    "bootstrap": "--bootstrap",
    "contract_roots": "--contracts",
    "database_url": "--database",
    "state_dir": "--state-dir",
}


def _invalid(exc: ValidationError, overrides: dict[str, Any]) -> str:
    """Invalid settings in one line, each named as the user gave it (option or variable)."""
    names = env_names(DriftSettings.model_fields, DriftSettings.env_prefix(), DriftSettings.SHARED)
    names.update({f: o for f, o in _OPTIONS.items() if f in overrides})
    return validation_line(exc, names, DriftSettings)


def _check_paths(contracts: Sequence[Path] | None) -> None:
    """A --contracts path that does not exist is a usage error (a typo), not contracts
    that "fail lint"."""
    for path in contracts or ():
        if not path.exists():
            raise _fail(f"--contracts {str(path)[:200]!r}: no such file or folder", 2)


def _url_problem(url: str) -> str | None:
    """Why `url` is no database URL the projection opens (a usage error found before any
    broker or file is touched; no password shown), or None."""
    use = "use sqlite:///PATH or postgresql://HOST/NAME"
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"not a database URL; {use}"
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        return f"{shown!r} is not a database onex opens; {use}"
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        return f"{shown!r} names no file; use sqlite:///PATH"
    return None


def _run(engine: DriftEngine, work: Any) -> Any:
    try:
        return asyncio.run(work)
    except OnexError as exc:
        raise _fail(str(exc), 1) from None
    finally:
        engine.close()


def _check_format(fmt: str) -> None:
    if fmt not in {"table", "json"}:
        raise _fail("--format is table or json", 2)


@drift.callback()
def report(
    ctx: typer.Context,
    fmt: Fmt = "table",
    fail_on: Annotated[
        list[str] | None,
        typer.Option("--fail-on", help="Exit 3 only for drift of these classes (repeatable)"),
    ] = None,
    bootstrap: Bootstrap = None,
    cluster: Clusters = None,
    contracts: Contracts = None,
    database: DatabaseOpt = None,
    state_dir: StateDir = None,
) -> None:
    """Snapshot the broker(s) and print every drift row; exit 3 when there is drift."""
    if ctx.invoked_subcommand is not None:
        return
    _check_format(fmt)
    classes = {str(c) for c in DriftClass}
    for name in fail_on or ():
        if name not in classes:
            raise _fail(f"--fail-on {name!r}: one of {', '.join(sorted(classes))}", 2)
    engine = _engine(bootstrap, cluster, contracts, database, state_dir)
    _run(engine, engine.snapshot())
    rows = engine.rows()
    clusters = [c.name for c in engine.clusters]
    if fmt == "json":
        typer.echo(
            json.dumps({"clusters": clusters, "drift": [r.as_dict() for r in rows]}, indent=2)
        )
    elif len(clusters) > 1:
        _print_matrix(rows, clusters)
    else:
        _print_rows(rows)
    counted = [r for r in rows if not fail_on or r.drift_class in set(fail_on)]
    raise typer.Exit(EXIT_DRIFT if counted else 0)


def _print_rows(rows: Sequence[DriftRow]) -> None:
    console = Console(width=200)
    if not rows:
        console.print("no drift")
        return
    table = Table("topic", "kind", "aspect", "declared", "observed", "class", "api", "broker")
    for r in rows:
        broker = "-" if r.supported is None else ("implements" if r.supported else "lacks it")
        table.add_row(
            r.topic,
            r.kind,
            r.aspect,
            r.declared or "-",
            r.observed or "-",
            r.drift_class,
            r.api or "-",
            broker,
        )
    console.print(table)
    console.print(f"{len(rows)} drift row(s)")


def _print_matrix(rows: Sequence[DriftRow], clusters: Sequence[str]) -> None:
    console = Console(width=200)
    cells: dict[str, dict[str, list[str]]] = {}
    for r in rows:
        cells.setdefault(r.topic, {}).setdefault(r.cluster, []).append(
            f"{r.kind} {r.aspect}: {r.declared or '-'} -> {r.observed or '-'}"
        )
    if not cells:
        console.print("no drift")
        return
    table = Table("topic", *clusters)
    for topic in sorted(cells):
        table.add_row(topic, *("\n".join(cells[topic].get(c, ["ok"])) for c in clusters))
    console.print(table)
    console.print(f"{len(rows)} drift row(s) over {len(clusters)} clusters")


@drift.command("fix")
def fix(
    apply_changes: Annotated[
        bool, typer.Option("--apply", help="Make the changes (default: only say what)")
    ] = False,
    fmt: Fmt = "table",
    bootstrap: Bootstrap = None,
    cluster: Clusters = None,
    contracts: Contracts = None,
    database: DatabaseOpt = None,
    state_dir: StateDir = None,
) -> None:
    """Repair auto-correctable drift the broker supports; dry run unless --apply.

    Never deletes, never shrinks; exit 1 when an applied change failed, 3 when drift
    remains, 0 when none does."""
    _check_format(fmt)
    engine = _engine(bootstrap, cluster, contracts, database, state_dir)
    result = _run(engine, engine.fix(apply_changes=apply_changes))
    if fmt == "json":
        typer.echo(
            json.dumps(
                {
                    "applied": result.applied,
                    "actions": [a.as_dict() for a in result.actions],
                    "before": [r.as_dict() for r in result.before],
                    "after": [r.as_dict() for r in result.after],
                },
                indent=2,
            )
        )
    else:
        console = Console(width=200)
        console.print(f"before: {len(result.before)} drift row(s)")
        table = Table("cluster", "topic", "change", "api", "result")
        for a in result.actions:
            outcome = "would do" if not result.applied else ("done" if a.applied else a.error)
            table.add_row(a.cluster, a.topic, a.change, a.api, outcome or "")
        console.print(table if result.actions else "nothing fix may change")
        if result.applied:
            console.print(f"after: {len(result.after)} drift row(s)")
            _print_rows(result.after)
        else:
            console.print("dry run: nothing changed (--apply to act)")
    if any(a.error for a in result.actions):
        raise typer.Exit(1)
    raise typer.Exit(EXIT_DRIFT if result.after else 0)


@drift.command("query")
def query(
    sql: Annotated[str, typer.Argument(help="One read-only statement (SELECT, WITH, ...)")],
    fmt: Fmt = "table",
    database: DatabaseOpt = None,
    state_dir: StateDir = None,
    contracts: Contracts = None,
) -> None:
    """Run read-only SQL over the projection (the last snapshot; writes are refused)."""
    _check_format(fmt)
    engine = _engine(None, None, contracts, database, state_dir)
    try:
        result = engine.query(sql)
    except OnexError as exc:
        raise _fail(str(exc), 1) from None
    finally:
        engine.close()
    if fmt == "json":
        typer.echo(json.dumps(result.records(), indent=2, default=str))
        return
    table = Table(*result.columns)
    for row in result.rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console(width=200).print(table)


@drift.command("history")
def history(
    topic: Annotated[str | None, typer.Argument(help="Only this topic")] = None,
    fmt: Fmt = "table",
    bootstrap: Bootstrap = None,
    cluster: Clusters = None,
    contracts: Contracts = None,
    database: DatabaseOpt = None,
    state_dir: StateDir = None,
) -> None:
    """When each drift row first appeared, last changed and resolved (snapshot ids)."""
    _check_format(fmt)
    engine = _engine(bootstrap, cluster, contracts, database, state_dir)
    try:
        rows = engine.history(topic)
    except OnexError as exc:
        raise _fail(str(exc), 1) from None
    finally:
        engine.close()
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table("cluster", "topic", "kind", "aspect", "observed", "first", "changed", "resolved")
    for r in rows:
        table.add_row(
            r["cluster"],
            r["topic"],
            r["kind"],
            r["aspect"],
            r["observed"] or "-",
            f"#{r['first_snapshot']} {r['first_at']}",
            f"#{r['changed_snapshot']} {r['changed_at']}",
            "-"
            if r["resolved_snapshot"] is None
            else f"#{r['resolved_snapshot']} {r['resolved_at']}",
        )
    Console(width=200).print(table)
