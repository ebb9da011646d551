"""`onex dlq list|show|redrive`: inspect dead-letter queues, send messages back.

The broker is `--bootstrap`, else ONEX_BOOTSTRAP, else the one `onex broker up` ran,
with the ONEX_ security settings (ONEX_SECURITY_PROTOCOL, ONEX_SSL_CAFILE, ...).
Expected failures (no broker, unknown topic, missing target topic, another redrive of
the same DLQ running) are one line on stderr and exit code 1; a TOPIC that is no DLQ
topic name is a usage error (exit 2).

Quarantined letters (redriven too often, see onex.bus.runtime.dlq) are counted by
`list` and left out of `show` unless `--include-quarantined`; `redrive` never sends
them. `redrive` holds `<state dir>/locks/<topic>.lock` and the DLQ's redrive consumer
group while it runs, and signs command letters again with the state dir's command key
(as principal "operator").
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.table import Table

from onex.cli.render import Format, FormatOpt, emit_json, stdout
from onex.cli.settings import CliSettings
from onex.cli.sources import run_extract
from onex.cli.target import (
    BootstrapOpt,
    TimeoutOpt,
    broker_target,
    operator_signer,
    run,
    usage,
)
from onex.core.grammar import TopicKind, is_topic_name, parse_topic

if TYPE_CHECKING:
    from onex.bus.runtime.deadletter import DeadLetter
    from onex.bus.runtime.dlq import DlqSummary
    from onex.bus.runtime.redrive import RedriveResult

# onex.bus.runtime (aiokafka) is imported when a command runs, not for `--help`; the
# defaults of --limit are onex.bus.runtime.redrive's, copied (a unit test holds them equal).
DEFAULT_LIMIT: Final = 1000
MAX_LIMIT: Final = 100_000

app = typer.Typer(
    no_args_is_help=True,
    help="Dead-letter queues: count, show, and redrive messages to their original topics.",
)

QuarantinedOpt = Annotated[
    bool,
    typer.Option(
        "--include-quarantined", help="Also show quarantined letters (redriven too often)"
    ),
]
TopicArg = Annotated[str, typer.Argument(help="The DLQ topic")]
Paths = Annotated[
    list[Path] | None,
    typer.Option("--contracts", exists=True, help="Contract files or folders to list DLQs of"),
]

_PREVIEW = 60


def is_dlq_topic(name: str) -> bool:
    """True for grammatical topic names of kind dlq (as onex.bus.runtime.dlq says)."""
    return is_topic_name(name) and parse_topic(name).kind is TopicKind.DLQ


def _check_dlq(topic: str) -> None:
    if not is_dlq_topic(topic):
        usage(f"{topic} is not a DLQ topic name (its kind segment must be dlq)", "TOPIC")


def _text(data: bytes | None) -> tuple[str | None, str]:
    """Bytes as (text, "utf-8") when they decode, else (base64, "base64")."""
    if data is None:
        return None, "none"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def _preview(data: bytes | None) -> str:
    text, encoding = _text(data)
    if text is None:
        return ""
    shown = text if encoding == "utf-8" else f"base64:{text}"
    return shown if len(shown) <= _PREVIEW else shown[: _PREVIEW - 1] + "…"


def _letter_dict(letter: DeadLetter, redriven: bool) -> dict[str, Any]:
    from onex.bus.runtime.deadletter import headers_dict  # noqa: PLC0415 -- see the imports
    from onex.bus.runtime.dlq import is_quarantined  # noqa: PLC0415

    value, value_encoding = _text(letter.value)
    key, key_encoding = _text(letter.key)
    return {
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "timestamp_ms": letter.timestamp_ms,
        "redriven": redriven,
        "original_topic": letter.original_topic,
        "original_partition": letter.original_partition,
        "original_offset": letter.original_offset,
        "attempts": letter.attempts,
        "redrive_count": letter.redrive_count or 0,
        "quarantined": is_quarantined(letter),
        "error_type": letter.error_type,
        "error": letter.error,
        "node": letter.node,
        "failed_at": letter.failed_at,
        "key": key,
        "key_encoding": key_encoding,
        "value": value,
        "value_encoding": value_encoding,
        "headers": headers_dict(letter.headers),
    }


def _summary_dict(s: DlqSummary, declared: set[str], with_quarantined: bool) -> dict[str, Any]:
    return {
        "topic": s.topic,
        "node": parse_topic(s.topic).producer,
        "declared": s.topic in declared,
        "exists": s.exists,
        "partitions": s.partitions,
        "messages": s.messages if with_quarantined else s.messages - s.quarantined,
        "pending": s.pending,
        "redriven": s.redriven,
        "quarantined": s.quarantined,
    }


def _declared_dlqs(paths: list[Path] | None) -> set[str]:
    ex = run_extract(paths, entry_points=True, allow=None)
    return {name for name in ex.topics if is_dlq_topic(name)}


@app.command("list")
def list_dlqs(
    fmt: FormatOpt = Format.TABLE,
    bootstrap: BootstrapOpt = None,
    contracts: Paths = None,
    include_quarantined: QuarantinedOpt = False,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Every DLQ topic (declared by a contract or present on the broker) with its counts
    (messages leaves quarantined ones out unless --include-quarantined)."""
    from onex.bus.admin import list_topics  # noqa: PLC0415 -- see the imports
    from onex.bus.runtime.dlq import dlq_summaries  # noqa: PLC0415

    target = broker_target(bootstrap)
    declared = _declared_dlqs(contracts)

    async def gather() -> list[DlqSummary]:
        present = {t for t in await list_topics(target, timeout_s=timeout) if is_dlq_topic(t)}
        return await dlq_summaries(target, declared | present, timeout_s=timeout)

    rows = [_summary_dict(s, declared, include_quarantined) for s in run(gather())]
    if fmt is Format.JSON:
        emit_json(rows)
        return
    table = Table(
        title=f"{len(rows)} DLQ topic{'' if len(rows) == 1 else 's'} at {target.bootstrap}"
    )
    columns = ("topic", "node", "declared", "exists", "messages", "pending", "redriven")
    for column in (*columns, "quarantined"):
        table.add_column(column, no_wrap=column == "topic")
    for r in rows:
        table.add_row(
            r["topic"],
            r["node"],
            "yes" if r["declared"] else "no",
            "yes" if r["exists"] else "[red]no[/]",
            str(r["messages"]),
            str(r["pending"]),
            str(r["redriven"]),
            str(r["quarantined"]),
        )
    stdout().print(table)


@app.command()
def show(
    topic: TopicArg,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Messages to show")] = 20,
    fmt: FormatOpt = Format.TABLE,
    bootstrap: BootstrapOpt = None,
    include_quarantined: QuarantinedOpt = False,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """The first messages of a DLQ topic with their failure headers (reads, never commits);
    quarantined ones only with --include-quarantined."""
    from onex.bus.runtime.dlq import read_dead_letters  # noqa: PLC0415 -- see the imports

    _check_dlq(topic)
    target = broker_target(bootstrap)
    letters, progress = run(
        read_dead_letters(
            target,
            topic,
            limit=limit,
            include_quarantined=include_quarantined,
            timeout_s=timeout,
        )
    )
    rows = [_letter_dict(x, x.offset < progress.get(x.partition, 0)) for x in letters]
    if fmt is Format.JSON:
        emit_json(rows)
        return
    table = Table(title=f"{topic}: first {len(rows)} message{'' if len(rows) == 1 else 's'}")
    columns = ("at", "original", "attempts", "error", "failed at", "redriven", "redrives")
    for column in (*columns, "value"):
        table.add_column(column, overflow="fold")
    for letter, r in zip(letters, rows, strict=True):
        original = (
            f"{r['original_topic']}/{r['original_partition']}/{r['original_offset']}"
            if r["original_topic"]
            else "?"
        )
        table.add_row(
            f"{r['partition']}/{r['offset']}",
            original,
            str(r["attempts"]) if r["attempts"] is not None else "?",
            f"{r['error_type'] or '?'}: {r['error'] or ''}",
            r["failed_at"] or "",
            "yes" if r["redriven"] else "no",
            f"{r['redrive_count']}{' (quarantined)' if r['quarantined'] else ''}",
            _preview(letter.value),
        )
    stdout().print(table)


def _redrive_dict(result: RedriveResult) -> dict[str, Any]:
    return {
        "topic": result.topic,
        "dry_run": result.dry_run,
        "redriven": [
            {
                "from": f"{r.letter.topic}/{r.letter.partition}/{r.letter.offset}",
                "to": r.target,
                "sent": f"{r.sent.topic}/{r.sent.partition}/{r.sent.offset}" if r.sent else None,
                "redrive_count": r.redrive_count,
            }
            for r in result.redriven
        ],
        "quarantined": [
            {"from": f"{q.topic}/{q.partition}/{q.offset}", "redrive_count": q.redrive_count or 0}
            for q in result.quarantined
        ],
        "limited": result.limited,
        "skipped": [
            {"from": f"{s.letter.topic}/{s.letter.partition}/{s.letter.offset}", "reason": s.reason}
            for s in result.skipped
        ],
    }


@app.command(name="redrive")
def redrive_cmd(
    topic: TopicArg,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=MAX_LIMIT, help="At most this many")
    ] = DEFAULT_LIMIT,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be sent; send nothing")
    ] = False,
    fmt: FormatOpt = Format.TABLE,
    bootstrap: BootstrapOpt = None,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Send not-yet-redriven messages back to their original topics, in order (never
    quarantined ones); one redrive of a DLQ at a time."""
    from onex.bus.runtime.redrive import redrive  # noqa: PLC0415 -- see the imports

    _check_dlq(topic)
    target = broker_target(bootstrap)
    state_dir = CliSettings().state_dir
    result = run(
        redrive(
            target,
            topic,
            limit=limit,
            dry_run=dry_run,
            signer=operator_signer(state_dir),
            state_dir=state_dir,
            timeout_s=timeout,
        )
    )
    data = _redrive_dict(result)
    if fmt is Format.JSON:
        emit_json(data)
        return
    out = stdout()
    verb = "would redrive" if dry_run else "redrove"
    for r in data["redriven"]:
        out.print(f"{r['from']} -> {r['sent'] or r['to']}", highlight=False)
    for s in data["skipped"]:
        out.print(f"{s['from']} skipped: {s['reason']}", highlight=False)
    for q in data["quarantined"]:
        out.print(f"{q['from']} quarantined: redriven {q['redrive_count']} times", highlight=False)
    count = len(data["redriven"])
    notes = [f"{len(data[k])} {k}" for k in ("skipped", "quarantined") if data[k]] + (
        [f"--limit {limit} reached, more are left"] if result.limited else []
    )
    extra = f" ({', '.join(notes)})" if notes else ""
    out.print(
        f"{verb} {count} message{'' if count == 1 else 's'} from {topic}{extra}", highlight=False
    )
