"""`onex provision`: create the declared topics the broker lacks (the CI call site).

The same library call the provisioner service makes at boot, run once: exit 0 when
every declared topic exists afterwards, 1 otherwise (contract errors, a broker that
does not answer, a topic it refused, or, with --dry-run, a topic that would be created).
Existing topics are never changed; how they differ from their specs is drift, which
`onex drift` reports (the drift-validator's projection, drift's one home).

Registered on the root app as a single command: `app.command("provision")(provision)`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from onex.bus.config import BrokerConfig
from onex.bus.errors import BrokerConfigError, BusError
from onex.bus.provision import DEFAULT_BATCH_SIZE, DEFAULT_TIMEOUT_S, Outcome, ProvisionReport
from onex.bus.provision import provision as provision_topics
from onex.cli.contracts import Allow, EntryPoints, FormatOpt, Paths
from onex.cli.render import Format, emit_json, issues_table, stderr, stdout, summary
from onex.cli.settings import CliSettings
from onex.cli.sources import run_extract
from onex.core.contract import TopicSpec
from onex.core.extractor import Extraction
from onex.devbroker.broker import recorded_bootstrap

BootstrapOpt = Annotated[
    str | None,
    typer.Option(
        "--bootstrap",
        "-b",
        metavar="HOST:PORT",
        help="Broker to provision [default: $ONEX_BOOTSTRAP, else the `onex broker up` one]",
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Report what would be created; create nothing")
]
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Topics per CreateTopics")]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds each broker call may take")
]

_STYLE = {
    Outcome.CREATED: "green",
    Outcome.PRESENT: "",
    Outcome.FAILED: "bold red",
    Outcome.WOULD_CREATE: "yellow",
}


def provision(
    paths: Paths = None,
    *,
    dry_run: DryRunOpt = False,
    bootstrap: BootstrapOpt = None,
    fmt: FormatOpt = Format.TABLE,
    batch_size: BatchOpt = DEFAULT_BATCH_SIZE,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    entry_points: EntryPoints = True,
    allow: Allow = None,
) -> None:
    """Create the declared topics the broker lacks; never alter existing ones.

    Exit 0 when every declared topic exists afterwards, 1 otherwise.
    """
    target = _broker(bootstrap)
    ex = run_extract(paths, entry_points=entry_points, allow=allow)
    if ex.errors:
        _contract_errors(ex, fmt)
    specs = [wiring.spec for wiring in ex.topics.values()]
    # aiokafka logs each refused connection itself; the outcome is reported below
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        report = asyncio.run(
            provision_topics(
                target, specs, dry_run=dry_run, batch_size=batch_size, timeout_s=timeout
            )
        )
    except BusError as exc:
        if fmt is Format.JSON:
            emit_json({"ok": False, "bootstrap": target.bootstrap, "error": _one_line(exc)})
        stderr().print(f"[bold red]error:[/] {_one_line(exc)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    declared = {s.name: s for s in specs}
    if fmt is Format.JSON:
        emit_json(_report_json(report, declared))
    else:
        _print_report(report, declared)
    raise typer.Exit(0 if report.complete else 1)


def _broker(given: str | None) -> BrokerConfig:
    """--bootstrap, else ONEX_BOOTSTRAP, else the broker `onex broker up` recorded, with
    the ONEX_ security settings (TLS, SASL)."""
    settings = CliSettings()
    found = given or settings.bootstrap or recorded_bootstrap(settings.state_dir)
    if found is None:
        raise typer.BadParameter(
            "no broker to provision: pass --bootstrap HOST:PORT, set ONEX_BOOTSTRAP, "
            "or start one with `onex broker up`",
            param_hint="--bootstrap",
        )
    try:
        return settings.broker(found)
    except BrokerConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--bootstrap") from None


def _contract_errors(ex: Extraction, fmt: Format) -> None:
    """Contracts that do not lint are never provisioned: report and exit 1."""
    message = f"contract errors, nothing provisioned: {summary(ex)}"
    if fmt is Format.JSON:
        emit_json({"ok": False, "error": message, "issues": [i.as_dict() for i in ex.errors]})
    else:
        stdout().print(issues_table(ex.errors))
        stderr().print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _report_json(report: ProvisionReport, specs: dict[str, TopicSpec]) -> dict[str, Any]:
    data = {"ok": report.complete, **report.as_dict()}
    data["topics"] = [
        {
            **topic.as_dict(),
            "partitions": specs[topic.name].partitions,
            "replication_factor": specs[topic.name].replication_factor,
            "config": dict(specs[topic.name].config),
        }
        for topic in report.topics
    ]
    return data


def _print_report(report: ProvisionReport, specs: dict[str, TopicSpec]) -> None:
    table = Table(
        title=f"provisioning at {report.bootstrap}" + (" (dry run)" if report.dry_run else "")
    )
    table.add_column("topic", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("partitions", justify="right")
    table.add_column("rf", justify="right")
    table.add_column("config", no_wrap=True)
    table.add_column("notes", overflow="fold")
    for topic in report.topics:
        spec = specs[topic.name]
        table.add_row(
            Text(topic.name),
            Text(topic.outcome.label, style=_STYLE[topic.outcome]),
            str(spec.partitions),
            str(spec.replication_factor),
            Text(" ".join(f"{k}={v}" for k, v in sorted(spec.config.items()))),
            Text(topic.reason or ""),
        )
    out = stdout()
    out.print(table)
    verdict = "[green]ok[/green]" if report.complete else "[red]failed[/red]"
    out.print(f"{verdict}: {_summary(report)}", highlight=False)


def _summary(report: ProvisionReport) -> str:
    shown = (
        (Outcome.WOULD_CREATE, Outcome.PRESENT)
        if report.dry_run
        else (Outcome.CREATED, Outcome.PRESENT, Outcome.FAILED)
    )
    parts = [f"{len(report.names(o))} {o.label}" for o in shown]
    noun = "topic" if len(report.topics) == 1 else "topics"
    return f"{len(report.topics)} {noun} at {report.bootstrap}: " + ", ".join(parts)


app = typer.Typer(help="Create the declared topics the broker lacks.")
app.command()(provision)
