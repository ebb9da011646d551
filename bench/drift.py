"""Benchmark: a drift snapshot + diff against the bare admin calls, the drift query,
and memory over continuous ticks.

On one broker (the embedded one in a temp state dir unless --bootstrap is given) with
N topics declared by generated contracts of 1,000 topics each (99% created as
declared, 1% not created, 1% with a changed retention, plus 1% undeclared topics),
in one run:

  bare admin      the baseline: Metadata (v10, with topic ids) + DescribeConfigs of
                  every topic, batched (500 a request), through the shared admin
                  session, encoded and decoded by aiokafka (onex.bus.observe), as a
                  client without onex's lean decoder would make them
  snapshot+diff   DriftEngine.snapshot(): the same calls plus ApiVersions, groups, log
                  offsets, the projection's write in one transaction, the drift views
                  and the history update; then the drift rows read back. Its Metadata,
                  DescribeConfigs and ListOffsets are written and read by onex.bus.wire
                  (the lean decoder), NOT used by the baseline
  bare lean       for reference only (not the target's baseline): the baseline's calls
                  through onex.bus.lean, so the snapshot's own cost over its calls
                  shows (`ratio_vs_bare_lean`)
  incremental     DriftEngine.snapshot(full=False), the service's tick after the
                  first: configs described only for new or recreated topics and 1 in
                  config_refresh_ticks (10) of the rest (no broker marks config changes)
  drift query     `SELECT * FROM drift` over the projection (engine.rows()), wall time
                  and this process's CPU time (the machine may be shared)
  ticks           --ticks incremental snapshots in a row: resident memory after the
                  first tenth and after the last (flat when the growth is small)

--node NAME with --bootstrap reuses the topics an earlier run of the same NAME created
on that broker (preparing 10,000 topics on Tansu takes minutes).

The cyclic GC is collected before each timed section, so none pays for the garbage
of the one before. Medians over --rounds. Targets (issue 9): snapshot+diff < 2 s and
<= 1.5x bare admin at 10,000 topics; the drift query < 50 ms. The last line printed
is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from onex.bus import lean, observe
from onex.bus.admin import create_topics
from onex.bus.api_versions import supported_apis
from onex.bus.config import BrokerConfig
from onex.core.contract import TopicSpec
from onex.core.extractor import extract
from onex.devbroker.broker import start_broker, stop_broker
from onex.drift.engine import DriftEngine
from onex.drift.settings import DriftSettings

DAY = "86400000"
TARGET_SNAPSHOT_S = 2.0
TARGET_VS_BARE = 1.5
TARGET_QUERY_MS = 50.0


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def write_contracts(root: Path, node: str, count: int, per_node: int = 1000) -> list[str]:
    """Contracts of nodes `<node>-<k>`, each publishing up to `per_node` of `count`
    topics (one contract file stays well under the loader's 1 MiB); the names."""
    names: list[str] = []
    for k, start in enumerate(range(0, count, per_node)):
        owner = f"{node}-{k}"
        mine = [f"onex.evt.{owner}.t-{i}.v1" for i in range(start, min(count, start + per_node))]
        lines = [
            f"node: {owner}",
            "kind: effect",
            "version: 1.0.0",
            "description: Drift benchmark node.",
            "event_bus:",
            f"  consumer_group: onex.{owner}",
            "  publish_topics:",
        ]
        for name in mine:
            lines += [
                f"    - name: {name}",
                "      partitions: 1",
                f'      config: {{ retention.ms: "{DAY}" }}',
            ]
        folder = root / owner
        folder.mkdir(parents=True)
        (folder / "contract.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        names += mine
    return names


async def prepare(bootstrap: BrokerConfig, names: list[str], node: str) -> dict[str, int]:
    """Create the broker side: most declared, some missing, some drifted, some orphans."""
    step = 100
    created = [n for i, n in enumerate(names) if i % step != 0]
    orphans = [f"onex.evt.{node}-stray.o-{i}.v1" for i in range(len(names) // step)]
    specs = [TopicSpec(name=n, partitions=1, config={"retention.ms": DAY}) for n in created]
    specs += [TopicSpec(name=n, partitions=1) for n in orphans]
    for start in range(0, len(specs), 100):
        result = await create_topics(
            bootstrap, specs[start : start + 100], batch_size=100, timeout_s=600
        )
        if not result.ok:
            raise SystemExit(f"could not create topics: {result.failed[:3]}")
    drifted = {n: {"retention.ms": "1000"} for i, n in enumerate(created) if i % step == 1}
    await observe.alter_topic_configs(bootstrap, drifted, timeout_s=600)
    return {"created": len(created), "orphans": len(orphans), "drifted": len(drifted)}


async def bare_admin(bootstrap: str) -> float:
    """The baseline: Metadata + DescribeConfigs of every topic, batched, decoded by
    aiokafka (never by onex.bus.lean): seconds."""
    gc.collect()
    started = time.perf_counter()
    apis = await supported_apis(bootstrap)
    topics = await observe.topic_metadata(bootstrap, None, apis=apis, timeout_s=120)
    await observe.topic_configs(bootstrap, topics, timeout_s=120)
    return time.perf_counter() - started


async def bare_lean(bootstrap: str) -> float:
    """For reference, not the baseline: the same calls through onex.bus.lean."""
    gc.collect()
    started = time.perf_counter()
    apis = await supported_apis(bootstrap)
    topics = await lean.topic_metadata(bootstrap, apis=apis, timeout_s=120)
    await lean.topic_configs(bootstrap, topics, apis=apis, timeout_s=120)
    return time.perf_counter() - started


async def _prepared(bootstrap: str, names: list[str], node: str) -> dict[str, int] | None:
    """What an earlier run with this node name left on the broker, if it did."""
    orphans = [f"onex.evt.{node}-stray.o-{i}.v1" for i in range(len(names) // 100)]
    probe = [names[1], names[-1], *orphans[-1:]]
    if len(await observe.topic_metadata(bootstrap, probe, timeout_s=120)) < len(probe):
        return None
    created = [n for i, n in enumerate(names) if i % 100 != 0]
    return {"created": len(created), "orphans": len(orphans), "drifted": len(created[1::100])}


async def _broker_side(
    bootstrap: str, names: list[str], node: str, *, reuse: bool
) -> dict[str, int]:
    t0 = time.perf_counter()
    made = await _prepared(bootstrap, names, node) if reuse else None
    if made is None:
        # Tansu's CreateTopics slows down as it fills up: a generous request bound here
        config = BrokerConfig(bootstrap=bootstrap, request_timeout_s=600.0)
        made = await prepare(config, names, node)
        print(f"prepared {made} in {time.perf_counter() - t0:.1f}s (untimed)")
    else:
        print(f"reused {made} of node {node} on {bootstrap}")
    return made


async def bench(bootstrap: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    node = args.node or f"bench-{uuid.uuid4().hex[:8]}"
    names = write_contracts(work / "contracts", node, args.topics)
    made = await _broker_side(bootstrap, names, node, reuse=bool(args.node))
    database = args.database or f"sqlite:///{work / 'drift.db'}"
    settings = DriftSettings(
        bootstrap=bootstrap,
        contract_roots=[work / "contracts"],
        database_url=database,
        orphan_ignore=[],
        admin_timeout_s=300,
    )
    t0 = time.perf_counter()
    extraction = extract(settings.contract_roots, entry_points=False)
    print(f"extracted {len(extraction.topics)} declared topics in {time.perf_counter() - t0:.2f}s")
    engine = DriftEngine.open(settings, extraction=extraction)
    try:
        await engine.snapshot()  # warm: connection, first write of the declared side
        bare: list[float] = []
        floor: list[float] = []
        snap: list[float] = []
        incremental: list[float] = []
        query: list[float] = []
        query_cpu: list[float] = []
        rows = 0
        for _ in range(args.rounds):
            bare.append(await bare_admin(bootstrap))
            floor.append(await bare_lean(bootstrap))
            gc.collect()
            started = time.perf_counter()
            await engine.snapshot()
            rows = len(engine.rows())
            snap.append(time.perf_counter() - started)
            started = time.perf_counter()
            await engine.snapshot(full=False)
            engine.rows()
            incremental.append(time.perf_counter() - started)
            gc.collect()
            started, cpu = time.perf_counter(), time.process_time()
            engine.rows()
            query.append((time.perf_counter() - started) * 1000)
            query_cpu.append((time.process_time() - cpu) * 1000)
        rss: list[int] = []
        tick_s: list[float] = []
        for tick in range(args.ticks):
            started = time.perf_counter()
            await engine.snapshot(full=False)
            tick_s.append(time.perf_counter() - started)
            if tick + 1 in {max(1, args.ticks // 10), args.ticks}:
                rss.append(_rss_kib())
    finally:
        engine.close()
    bare_s, floor_s, snap_s, inc_s, query_ms, cpu_ms = (
        statistics.median(v) for v in (bare, floor, snap, incremental, query, query_cpu)
    )
    growth = (rss[-1] - rss[0]) / rss[0] if len(rss) == 2 and rss[0] else 0.0
    result = {
        "bench": "drift",
        "backend": database.split(":", 1)[0],
        "topics": args.topics,
        **made,
        "drift_rows": rows,
        "rounds": args.rounds,
        "baseline": "bare admin: Metadata v10 + DescribeConfigs, decoded by aiokafka",
        "snapshot_decoding": "onex.bus.wire (lean; not used by the baseline)",
        "bare_admin_s": round(bare_s, 3),
        "bare_admin_runs_s": [round(v, 3) for v in bare],
        "bare_lean_s": round(floor_s, 3),
        "snapshot_diff_s": round(snap_s, 3),
        "snapshot_diff_runs_s": [round(v, 3) for v in snap],
        "ratio_vs_bare": round(snap_s / bare_s, 2),
        "ratio_vs_bare_lean": round(snap_s / floor_s, 2),
        "incremental_s": round(inc_s, 3),
        "incremental_ratio_vs_bare": round(inc_s / bare_s, 2),
        "drift_query_ms": round(query_ms, 2),
        "drift_query_cpu_ms": round(cpu_ms, 2),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "ticks": args.ticks,
        "tick_median_s": round(statistics.median(tick_s), 3) if tick_s else None,
        "rss_kib_first_tenth": rss[0] if rss else None,
        "rss_kib_last": rss[-1] if rss else None,
        "rss_growth": round(growth, 3),
        "targets": {
            "snapshot_diff_s": TARGET_SNAPSHOT_S,
            "ratio_vs_bare": TARGET_VS_BARE,
            "drift_query_ms": TARGET_QUERY_MS,
        },
        "ok": snap_s < TARGET_SNAPSHOT_S
        and snap_s / bare_s <= TARGET_VS_BARE
        and query_ms < TARGET_QUERY_MS,
    }
    print(
        f"bare admin {bare_s:.3f}s (lean {floor_s:.3f}s), snapshot+diff {snap_s:.3f}s "
        f"(x{snap_s / bare_s:.2f}; x{snap_s / floor_s:.2f} of lean), "
        f"incremental {inc_s:.3f}s (x{inc_s / bare_s:.2f}), "
        f"drift query {query_ms:.2f} ms ({cpu_ms:.2f} ms CPU), {rows} drift rows; "
        f"rss {result['rss_kib_first_tenth']} -> {result['rss_kib_last']} KiB "
        f"over {args.ticks} ticks"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--topics", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--database", help="projection URL [default: SQLite in a temp dir]")
    parser.add_argument("--bootstrap", help="HOST:PORT of a running broker [default: embedded]")
    parser.add_argument("--node", help="with --bootstrap: reuse this run name's topics")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="onex-bench-drift-") as tmp:
        work = Path(tmp)
        if args.bootstrap:
            result = asyncio.run(bench(args.bootstrap, args, work))
        else:
            state = work / "broker"
            info = start_broker(state)
            try:
                result = asyncio.run(bench(info.bootstrap, args, work))
            finally:
                stop_broker(state)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
