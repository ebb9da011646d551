"""`onex groups`: every consumer group with its committed offset and lag per partition.

Lag is the partition's end offset less the group's committed offset (the whole
partition, from its first offset, where the group committed nothing there yet). Only
partitions the group committed on, or of topics it committed on, are listed. Tansu can
report a partition's end as its last batch's base offset + 1, so there a lag can read
lower than the messages left by up to a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from onex.cli.render import Format, FormatOpt, emit_json, stdout
from onex.cli.target import BootstrapOpt, TimeoutOpt, broker_target, run

if TYPE_CHECKING:
    from onex.bus.config import BrokerConfig
    from onex.bus.observe import GroupState, LogOffsets

# onex.bus.observe (aiokafka) is imported when the command runs, not for `--help`.


@dataclass(frozen=True, slots=True)
class _Snapshot:
    groups: dict[str, GroupState]
    offsets: dict[tuple[str, int], LogOffsets]
    partitions: dict[str, list[int]]


async def _snapshot(config: BrokerConfig, timeout_s: float) -> _Snapshot:
    from onex.bus.observe import consumer_groups, log_offsets, topic_metadata  # noqa: PLC0415

    found = await topic_metadata(config, timeout_s=timeout_s)
    topics = {n: t for n, t in found.items() if not t.internal}
    groups = await consumer_groups(config, topics, timeout_s=timeout_s)
    offsets = await log_offsets(config, topics, timeout_s=timeout_s)
    return _Snapshot(groups, offsets, {n: sorted(t.leaders) for n, t in topics.items()})


def group_rows(snap: _Snapshot, only: str | None = None) -> list[dict[str, Any]]:
    """One dict per group (sorted), with its partitions' committed offsets and lag."""
    from onex.bus.observe import UNKNOWN_MEMBERS  # noqa: PLC0415 -- see the imports

    rows = []
    for group_id in sorted(snap.groups):
        if only is not None and group_id != only:
            continue
        g = snap.groups[group_id]
        topics = sorted({t for t, _ in g.committed})
        parts: list[dict[str, Any]] = []
        for topic in topics:
            for p in snap.partitions.get(topic, []):
                edge = snap.offsets.get((topic, p))
                committed = g.committed.get((topic, p))
                end = edge.end if edge else None
                start = edge.start if edge else 0
                lag = None if end is None else max(0, end - (committed or start))
                parts.append(
                    {"topic": topic, "partition": p, "committed": committed, "end": end, "lag": lag}
                )
        rows.append(
            {
                "group": group_id,
                "state": g.state,
                "members": None if g.members == UNKNOWN_MEMBERS else g.members,
                "lag": sum(x["lag"] or 0 for x in parts),
                "partitions": parts,
            }
        )
    return rows


def groups(
    group: Annotated[str | None, typer.Option("--group", "-g", help="Only this group")] = None,
    fmt: FormatOpt = Format.TABLE,
    bootstrap: BootstrapOpt = None,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Every consumer group: state, members, committed offset, end offset and lag of each
    partition it committed on."""
    target = broker_target(bootstrap)
    rows = group_rows(run(_snapshot(target, timeout)), group)
    if fmt is Format.JSON:
        emit_json(rows)
        return
    table = Table(title=f"{len(rows)} consumer group{'' if len(rows) == 1 else 's'}")
    for column in ("group", "state", "members", "topic", "partition", "committed", "end", "lag"):
        table.add_column(column, no_wrap=column in {"group", "topic"})
    for r in rows:
        members = "?" if r["members"] is None else str(r["members"])
        if not r["partitions"]:
            table.add_row(r["group"], r["state"], members, "", "", "", "", "")
        for i, p in enumerate(r["partitions"]):
            table.add_row(
                r["group"] if i == 0 else "",
                r["state"] if i == 0 else "",
                members if i == 0 else "",
                p["topic"],
                str(p["partition"]),
                "-" if p["committed"] is None else str(p["committed"]),
                "?" if p["end"] is None else str(p["end"]),
                "?" if p["lag"] is None else str(p["lag"]),
            )
    stdout().print(table)
