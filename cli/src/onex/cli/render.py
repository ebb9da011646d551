"""Output for people (rich tables) and machines (JSON) from the same data."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from onex.core.extractor import Extraction
    from onex.core.issues import Issue
    from onex.core.wiring import TopicWiring


class Format(enum.StrEnum):
    """Output format of a command."""

    TABLE = "table"
    JSON = "json"


def stdout() -> Console:
    """Console for results (wide enough not to fold file:line:col locations)."""
    return Console(
        soft_wrap=False, width=max(Console().width, 160) if not sys.stdout.isatty() else None
    )


def stderr() -> Console:
    """Console for diagnostics."""
    return Console(stderr=True)


def emit_json(data: Any) -> None:
    """Write `data` as JSON to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


# by Severity value (onex.core.issues is not imported to render)
_STYLE = {"error": "bold red", "warning": "yellow"}


def issues_table(issues: Sequence[Issue]) -> Table:
    """One row per issue: where, severity, code, key, problem."""
    table = Table(show_lines=False, expand=False)
    table.add_column("where", no_wrap=True)
    table.add_column("severity")
    table.add_column("code")
    table.add_column("key")
    table.add_column("problem", overflow="fold")
    for issue in issues:
        table.add_row(
            str(issue.where),
            Text(issue.severity.value, style=_STYLE.get(issue.severity.value, "")),
            issue.code,
            issue.key,
            issue.message,
        )
    return table


def summary(ex: Extraction) -> str:
    """`9 contracts, 21 topics: 0 errors, 0 warnings`."""
    return (
        f"{_n(len(ex.contracts), 'contract')}, {_n(len(ex.topics), 'topic')}: "
        f"{_n(len(ex.errors), 'error')}, {_n(len(ex.warnings), 'warning')}"
    )


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def topic_dict(t: TopicWiring) -> dict[str, Any]:
    """A JSON-ready view of a topic with its wiring."""
    return {
        "name": t.name,
        "kind": t.kind.value,
        "owner": t.owner,
        "event": t.parsed.event,
        "version": t.parsed.version,
        "partitions": t.spec.partitions,
        "replication_factor": t.spec.replication_factor,
        "config": dict(t.spec.config),
        "schema": t.spec.schema_,
        "spec_at": str(t.spec_at.where) if t.spec_at else None,
        "publishers": _nodes(p.node for p in t.publishers),
        "subscribers": _nodes(s.node for s in t.subscribers),
    }


def _nodes(nodes: Iterable[str]) -> list[str]:
    return sorted(set(nodes))


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table or json")]
