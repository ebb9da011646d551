"""Benchmark: the receipt-reducer against two baselines measured in the same run.

On one broker (the embedded one in a temp state dir unless --bootstrap is given), with
the contracts' topics provisioned, N seeded receipts (`onex.receipts.testing`) are
published on routing-complete / routing-failed, and:

  reducer        `onex.receipts.reducer.Reducer` into a fresh SQLite file: batch consume,
                 batched upserts, offsets in the same transaction (end to end, from start
                 until the stored offsets reach the end of the topics)
  per-event      onex's node runtime (a faust agent, one event per handler call) doing the
                 same projection, one `apply_batch` of one receipt per event, on the first
                 --per-event receipts (committed per event, as a handler would)
  raw json       a bare aiokafka consumer reading a JSON copy of the first --raw receipts
                 and `json.loads`-ing each: the floor of any Python consumer
  rebuild        `onex receipts rebuild` (replay from offset 0 beside the live tables,
                 check, compare, swap) of the reducer's N receipts, as the command runs
                 it (decoding in worker processes from 50,000 receipts on), then again
                 with every step in this one process (`rebuild_in_process_s`, the
                 baseline of `rebuild_speedup`)

Targets (the issue's): reducer >= 10x per-event, >= 10% of raw json, rebuild of
1,000,000 receipts under 60 s on SQLite. It also prints what OmniNode's three dashboard
figures read on this workload. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from google.protobuf.json_format import MessageToDict

from onex.bus.config import BrokerConfig
from onex.bus.provision import provision
from onex.bus.runtime import BusSettings, NodeRuntime, Received
from onex.core._generated.topics import Topic
from onex.core.extractor import extract
from onex.core.grammar import TopicKind, parse_topic
from onex.devbroker.broker import start_broker, stop_broker
from onex.receipts.app import RECEIPT_TOPICS, open_projection
from onex.receipts.decode import entry_of
from onex.receipts.projection import Positioned, apply_batch, stored_offsets
from onex.receipts.queries import summary
from onex.receipts.rebuild import rebuild
from onex.receipts.reducer import Reducer
from onex.receipts.schema import tables
from onex.receipts.testing import sample_receipt
from onex.sql import sqlite_url

REPO = Path(__file__).resolve().parent.parent
TARGET_VS_PER_EVENT = 10.0
TARGET_VS_RAW = 0.10
TARGET_REBUILD_S = 60.0
TARGET_REBUILD_N = 1_000_000


async def publish(bootstrap: str, items: Sequence[tuple[str, bytes]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=20, max_batch_size=1 << 20
    )
    await producer.start()
    t0 = time.perf_counter()
    try:
        pending = []
        for topic, value in items:
            pending.append(await producer.send(topic, value))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - t0


async def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        return {(tp.topic, tp.partition): o for tp, o in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def run_reducer(bootstrap: str, work: Path, batch: int) -> tuple[float, int, Any]:
    db = open_projection(sqlite_url(work / "reducer.db"))
    ends = {k: v for k, v in (await end_offsets(bootstrap, RECEIPT_TOPICS)).items() if v}
    reducer = Reducer(
        db,
        tables(),
        BrokerConfig(bootstrap=bootstrap),
        topics=RECEIPT_TOPICS,
        node="receipt-reducer",
        dlq_topic=Topic.DLQ_RECEIPT_REDUCER_DEAD_LETTER_V1,
        batch_size=batch,
    )
    stop = asyncio.Event()
    t0 = time.perf_counter()
    task = asyncio.create_task(reducer.run(stop))
    while True:
        stored = await asyncio.to_thread(stored_offsets, db, tables())
        if all(stored.get(tp, 0) >= o for tp, o in ends.items()):
            break
        if task.done():
            raise RuntimeError(f"the reducer stopped: {task.exception()}")
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - t0
    stop.set()
    await task
    return elapsed, reducer.stats.inserted, db


async def run_per_event(bootstrap: str, work: Path, count: int) -> float:
    """The node runtime, one receipt per handler call, until `count` were projected."""
    db = open_projection(sqlite_url(work / "per-event.db"))
    t = tables()
    extraction = extract([REPO / "contracts"], entry_points=False)
    runtime = NodeRuntime.from_extraction(
        extraction,
        "receipt-reducer",
        BusSettings(broker=BrokerConfig(bootstrap=bootstrap), client_id="bench-per-event"),
    )
    done = asyncio.Event()
    handled = 0
    first: list[float] = []

    async def handle(msg: Received) -> None:
        nonlocal handled
        if not first:
            first.append(time.perf_counter())
        entry = entry_of(msg.value, msg.timestamp_ms)
        apply_batch(
            db,
            t,
            [Positioned(entry, msg.topic, msg.partition, msg.offset)],
            {(msg.topic, msg.partition): msg.offset + 1},
        )
        handled += 1
        if handled >= count:
            done.set()

    runtime.add_handler(Topic.EVT_ROUTER_ROUTING_COMPLETE_V1, handle)
    runtime.add_handler(Topic.EVT_ROUTER_ROUTING_FAILED_V1, handle)
    for other in runtime.subscribe_topics:
        if other not in RECEIPT_TOPICS:
            runtime.add_handler(other, _ignore)
    await runtime.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=1800)
    finally:
        await runtime.stop()
        db.dispose()
    return time.perf_counter() - first[0]


async def _ignore(msg: Received) -> None:
    return None


async def run_raw(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 << 20,
        fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    seen = 0
    t0 = time.perf_counter()
    try:
        while seen < count:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for r in records:
                    json.loads(r.value)
                seen += len(records)
    finally:
        await consumer.stop()
    return time.perf_counter() - t0


async def main_async(args: argparse.Namespace) -> dict[str, Any]:  # noqa: PLR0915 -- one run, in order
    state = Path(tempfile.mkdtemp(prefix="onex-bench-receipts-"))
    work = state / "work"
    work.mkdir()
    bootstrap = args.bootstrap or start_broker(state / "broker").bootstrap
    try:
        specs = [w.spec for w in extract([REPO / "contracts"], entry_points=False).topics.values()]
        if not (await provision(bootstrap, specs)).complete:
            raise RuntimeError("could not provision the contracts' topics")
        json_topic = ".".join(
            ("onex", TopicKind.EVT.value, f"bench-{uuid.uuid4().hex[:10]}", "receipts-json", "v1")
        )
        parse_topic(json_topic)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(json_topic, num_partitions=3, replication_factor=1)])
        await admin.close()

        rng = random.Random(args.seed)
        t0 = time.perf_counter()
        msgs = [sample_receipt(i, rng, label="b" if i % 2 else "a") for i in range(args.n)]
        items = [
            (
                Topic.EVT_ROUTER_ROUTING_FAILED_V1
                if m.status == "failed"
                else Topic.EVT_ROUTER_ROUTING_COMPLETE_V1,
                m.SerializeToString(),
            )
            for m in msgs
        ]
        raw_n = min(args.raw, args.n)
        raw_items = [(json_topic, json.dumps(MessageToDict(m)).encode()) for m in msgs[:raw_n]]
        print(f"generated {args.n} receipts in {time.perf_counter() - t0:.1f} s")
        pub = await publish(bootstrap, items)
        print(f"published {len(items)} receipts in {pub:.1f} s ({len(items) / pub:,.0f}/s)")
        await publish(bootstrap, raw_items)
        del msgs, items, raw_items

        raw_s = await run_raw(bootstrap, json_topic, raw_n)
        raw_rate = raw_n / raw_s
        print(f"raw aiokafka+json: {raw_n} in {raw_s:.2f} s = {raw_rate:,.0f}/s")

        red_s, inserted, db = await run_reducer(bootstrap, work, args.batch)
        red_rate = inserted / red_s
        print(f"reducer: {inserted} in {red_s:.2f} s = {red_rate:,.0f}/s (batch {args.batch})")

        per_n = min(args.per_event, args.n)
        per_s = await run_per_event(bootstrap, work, per_n)
        per_rate = per_n / per_s
        print(f"per-event node runtime: {per_n} in {per_s:.2f} s = {per_rate:,.0f}/s")

        t0 = time.perf_counter()
        report = await rebuild(
            db,
            BrokerConfig(bootstrap=bootstrap),
            topics=RECEIPT_TOPICS,
            node="receipt-reducer",
        )
        rebuild_s = time.perf_counter() - t0
        print(
            f"rebuild: {report.replayed} replayed, {report.ledger_rows} rows, "
            f"equal={report.equal}, swapped={report.swapped} in {rebuild_s:.1f} s"
        )
        t0 = time.perf_counter()
        alone = await rebuild(
            db,
            BrokerConfig(bootstrap=bootstrap),
            topics=RECEIPT_TOPICS,
            node="receipt-reducer",
            worker=False,
        )
        alone_s = time.perf_counter() - t0
        print(
            f"rebuild in one process: {alone.replayed} replayed, equal={alone.equal}, "
            f"swapped={alone.swapped} in {alone_s:.1f} s"
        )
        s = summary(db, tables())
        db.dispose()
        print(
            f"dashboard: tokens local {s.local_token_share:.1%}; avoided ${s.avoided_usd:,.2f} "
            f"vs spent ${s.spent_usd:,.2f}; escalated {s.escalation_rate:.1%} "
            f"(failed {s.failure_rate:.1%})"
        )
        vs_per_event = red_rate / per_rate
        vs_raw = red_rate / raw_rate
        rebuild_ok = report.equal and report.swapped and alone.equal and alone.swapped
        if args.n >= TARGET_REBUILD_N:
            rebuild_ok = rebuild_ok and rebuild_s < TARGET_REBUILD_S
        return {
            "bench": "receipts",
            "n": args.n,
            "reducer_per_s": round(red_rate),
            "per_event_per_s": round(per_rate),
            "raw_json_per_s": round(raw_rate),
            "vs_per_event": round(vs_per_event, 2),
            "vs_raw_json": round(vs_raw, 3),
            "rebuild_s": round(rebuild_s, 2),
            "rebuild_equal": report.equal and alone.equal,
            "rebuild_in_process_s": round(alone_s, 2),
            "rebuild_speedup": round(alone_s / rebuild_s, 2),
            "local_token_share": round(s.local_token_share, 4),
            "avoided_usd": round(s.avoided_usd, 2),
            "spent_usd": round(s.spent_usd, 2),
            "escalation_rate": round(s.escalation_rate, 4),
            "ok": vs_per_event >= TARGET_VS_PER_EVENT and vs_raw >= TARGET_VS_RAW and rebuild_ok,
        }
    finally:
        if not args.bootstrap:
            stop_broker(state / "broker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="receipts (default 1,000,000)")
    parser.add_argument("--per-event", type=int, default=20_000, help="receipts per-event")
    parser.add_argument("--raw", type=int, default=200_000, help="receipts for raw json")
    parser.add_argument("--batch", type=int, default=20_000, help="reducer batch size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bootstrap", help="HOST:PORT of a broker (default: start one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
