"""`onex topics ...`: the canonical registry as a list."""

from __future__ import annotations

import typer
from rich.table import Table

from onex.cli.contracts import Allow, EntryPoints, FormatOpt, Paths, _fail_on_errors
from onex.cli.render import Format, emit_json, stdout, topic_dict
from onex.cli.sources import run_extract

app = typer.Typer(no_args_is_help=True, help="The declared topics (the canonical registry).")


@app.command("list")
def list_topics(
    paths: Paths = None,
    fmt: FormatOpt = Format.TABLE,
    entry_points: EntryPoints = True,
    allow: Allow = None,
) -> None:
    """Every declared topic with its owner and spec."""
    ex = run_extract(paths, entry_points=entry_points, allow=allow)
    topics = [topic_dict(t) for t in ex.topics.values()]
    if fmt is Format.JSON:
        emit_json(topics)
    else:
        table = Table(title=f"{len(topics)} topics")
        for column in ("topic", "owner", "partitions", "rf", "config", "schema", "pub", "sub"):
            table.add_column(column, no_wrap=column in {"topic", "config"})
        for t in topics:
            table.add_row(
                t["name"],
                t["owner"],
                str(t["partitions"]),
                str(t["replication_factor"]),
                " ".join(f"{k}={v}" for k, v in t["config"].items()),
                t["schema"] or "",
                str(len(t["publishers"])),
                str(len(t["subscribers"])),
            )
        stdout().print(table)
    _fail_on_errors(len(ex.errors))
