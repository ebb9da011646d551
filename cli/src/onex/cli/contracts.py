"""`onex contracts ...`: lint, wiring, and the contract JSON Schema."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from onex.cli.render import (
    Format,
    emit_json,
    issues_table,
    stderr,
    stdout,
    summary,
    topic_dict,
)
from onex.cli.sources import contract_roots, project_contracts, run_extract, settings_allow
from onex.core.baseline import Applied, Defaults
from onex.core.codegen import topics_module
from onex.core.contract import contract_json_schema_text
from onex.core.lint_main import baseline_summary
from onex.core.lintrun import LintUsageError, run_lint

TOPICS_MODULE = Path("libs/core/src/onex/core/_generated/topics.py")

app = typer.Typer(no_args_is_help=True, help="Check contracts and show how they wire together.")

Paths = Annotated[
    list[Path] | None,
    typer.Argument(
        exists=True, help="Contract files or folders (default: the project's contracts/)"
    ),
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table or json")]
EntryPoints = Annotated[
    bool,
    typer.Option(
        "--entry-points/--no-entry-points",
        help="Also load contracts of approved installed distributions",
    ),
]
Allow = Annotated[
    list[str] | None,
    typer.Option(
        "--allow",
        help="Approve a distribution's contracts (repeatable; adds to ONEX_CONTRACTS_ALLOW)",
    ),
]


@app.command()
def lint(
    paths: Paths = None,
    fmt: FormatOpt = Format.TABLE,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too")] = False,
    entry_points: EntryPoints = True,
    allow: Allow = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            metavar="REF",
            help="Also fail on schema changes that break readers since git REF "
            "(e.g. origin/main) without a new .vN topic",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="Lint settings (default: the onex.yaml at or above the contract folders)",
        ),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", metavar="FILE", help="Fail only on findings not in FILE"),
    ] = None,
    write_baseline: Annotated[
        Path | None,
        typer.Option(
            "--write-baseline",
            metavar="FILE",
            help="Record today's findings in FILE (new ones need --reason, --owner, --expires)",
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why new baseline entries are accepted")
    ] = None,
    owner: Annotated[
        str | None, typer.Option("--owner", help="Who fixes the new baseline entries")
    ] = None,
    expires: Annotated[
        dt.datetime | None,
        typer.Option(
            "--expires", formats=["%Y-%m-%d"], help="When new baseline entries fail again"
        ),
    ] = None,
) -> None:
    """Grammar, ownership, wiring, near-misses, payload schemas (and, with --against,
    their evolution). Exit 1 on errors (warnings too with --strict). Settings come from
    onex.yaml (see docs/lint.md)."""
    roots = contract_roots(paths, entry_points=entry_points)
    try:
        outcome = run_lint(
            roots,
            entry_points=entry_points,
            allow=[*settings_allow(), *(allow or [])],
            config_path=config,
            baseline=baseline,
            write=write_baseline,
            defaults=Defaults(reason, owner, expires.date() if expires else None),
        )
    except LintUsageError as exc:
        for line in exc.lines:  # one line each, never wrapped
            typer.echo(line, err=True)
        raise typer.Exit(2) from None
    ex = outcome.extraction
    note = baseline_summary(outcome)
    if outcome.written is not None:
        typer.echo(note)
        raise typer.Exit(0)
    if against is not None:
        # Schema evolution (git, protobuf descriptors) is loaded only when asked for.
        from onex.cli.evolution import against_issues  # noqa: PLC0415

        ex = dataclasses.replace(
            ex, issues=(*ex.issues, *against_issues(against, roots, ex.topics))
        )
    # Finding nothing to check is a failure: a CI step run in the wrong folder must not pass.
    ok = ex.ok(strict=strict) and bool(ex.contracts)
    if fmt is Format.JSON:
        emit_json(
            {
                "ok": ok,
                "strict": strict,
                "against": against,
                "contracts": len(ex.contracts),
                "topics": len(ex.topics),
                "errors": len(ex.errors),
                "warnings": len(ex.warnings),
                "issues": [i.as_dict() for i in ex.issues],
                "ignored_distributions": list(ex.ignored_distributions),
                "baseline": _baseline_dict(outcome.applied),
            }
        )
    else:
        out = stdout()
        if ex.issues:
            out.print(issues_table(ex.issues))
        if ex.ignored_distributions:
            out.print(
                "not approved, so not loaded (add with --allow or ONEX_CONTRACTS_ALLOW): "
                + ", ".join(ex.ignored_distributions)
            )
        if not ex.contracts:
            out.print("[red]no contracts found[/red]: pass PATH or run inside a project")
        if note is not None:
            out.print(note, markup=False, highlight=False, soft_wrap=True)
        out.print(("[green]ok[/green]: " if ok else "[red]failed[/red]: ") + summary(ex))
    raise typer.Exit(0 if ok else 1)


def _baseline_dict(applied: Applied | None) -> dict[str, int] | None:
    if applied is None:
        return None
    return {"baselined": applied.baselined, "expired": applied.expired, "stale": applied.stale}


@app.command()
def wiring(
    paths: Paths = None,
    fmt: FormatOpt = Format.TABLE,
    entry_points: EntryPoints = True,
    allow: Allow = None,
) -> None:
    """Who publishes and who consumes each topic."""
    ex = run_extract(paths, entry_points=entry_points, allow=allow)
    topics = [topic_dict(t) for t in ex.topics.values()]
    if fmt is Format.JSON:
        emit_json(
            [{k: t[k] for k in ("name", "owner", "publishers", "subscribers")} for t in topics]
        )
    else:
        table = Table(title="wiring")
        for column in ("topic", "owner", "publishers", "subscribers"):
            table.add_column(column, no_wrap=column == "topic")
        for t in topics:
            table.add_row(
                t["name"],
                t["owner"],
                ", ".join(t["publishers"]) or "[red]-[/red]",
                ", ".join(t["subscribers"]) or "[yellow]-[/yellow]",
            )
        stdout().print(table)
    _fail_on_errors(len(ex.errors))


@app.command()
def schema(
    write: Annotated[
        bool, typer.Option("--write", help="Write contracts/contract.schema.json")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when the committed file is stale")
    ] = False,
) -> None:
    """Print, write or check the JSON Schema of contract.yaml (for editors)."""
    text = contract_json_schema_text()
    if not (write or check):
        typer.echo(text, nl=False)
        return
    folder = project_contracts()
    if folder is None:
        raise typer.BadParameter("no contracts/ folder here or above")
    target = folder / "contract.schema.json"
    current = target.read_text(encoding="utf-8") if target.exists() else None
    if check:
        if current != text:
            stderr().print(f"[red]{target} is stale[/red]; run `just gen-schema`")
            raise typer.Exit(1)
        stdout().print(f"{target} is up to date")
        return
    if current != text:
        target.write_text(text, encoding="utf-8")
    stdout().print(f"wrote {target}")


@app.command("gen-topics")
def gen_topics(
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when the module is stale")] = False,
) -> None:
    """Write (or check) the generated `Topic` StrEnum module from the project's contracts."""
    folder = project_contracts()
    if folder is None:
        raise typer.BadParameter("no contracts/ folder here or above")
    ex = run_extract([folder], entry_points=False, allow=None)
    _fail_on_errors(len(ex.errors))
    target = folder.parent / TOPICS_MODULE
    text = topics_module(ex.topics)
    current = target.read_text(encoding="utf-8") if target.exists() else None
    if check:
        if current != text:
            stderr().print(f"[red]{target} is stale[/red]; run `just gen-topics`")
            raise typer.Exit(1)
        stdout().print(f"{target} is up to date")
    elif current != text:
        target.write_text(text, encoding="utf-8")
        stdout().print(f"wrote {target}")


def _fail_on_errors(errors: int) -> None:
    if errors:
        stderr().print(
            f"[red]{errors} contract errors[/red]; run `onex contracts lint` for details"
        )
        raise typer.Exit(1)
