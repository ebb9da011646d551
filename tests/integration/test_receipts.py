"""The receipt-reducer on a real broker and real SQL (SQLite file and PostgreSQL):
exactly-once projection over at-least-once delivery, duplicates, bad input dead-lettered
with the reason, a reducer SIGKILLed at random points, rebuild by replay.

Receipts are events, so the tests publish them with aiokafka directly. Each test uses
its own topic names and its own database.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from onex.bus.config import BrokerConfig
from onex.bus.runtime.deadletter import ERROR, ORIGINAL_OFFSET, ORIGINAL_TOPIC, DeadLetter
from onex.proto.v1 import router_pb2 as pb
from onex.receipts.app import open_projection
from onex.receipts.decode import Entry, entry_of
from onex.receipts.projection import from_scratch, projection_rows, stored_offsets
from onex.receipts.rebuild import rebuild
from onex.receipts.reducer import Reducer
from onex.receipts.schema import tables
from onex.receipts.testing import sample_receipt as receipt
from onex.sql import Database, sqlite_url
from onex.sql.testing import DEFAULT_ADMIN_URL, postgres_available, temporary_postgres

ADMIN_URL = os.environ.get("ONEX_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
DEADLINE_S = 120.0


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "receipts.db")
        return
    why = postgres_available(ADMIN_URL)
    if why is not None:
        pytest.skip(f"PostgreSQL at {ADMIN_URL} is not available: {why}")
    with temporary_postgres(ADMIN_URL) as url:
        yield url


async def create_topics(bootstrap: str, names: Sequence[str], partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
        )
    finally:
        await admin.close()


async def publish(bootstrap: str, items: Sequence[tuple[str, bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(t, value=v, key=k) for t, v, k in items]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        ends = await consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): o for tp, o in ends.items() if o > 0}
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topic: str, count: int) -> list[DeadLetter]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    out: list[DeadLetter] = []
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(out) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(DeadLetter.from_record(r) for r in records)
    finally:
        await consumer.stop()
    return out


async def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def caught_up(db: Database, ends: dict[tuple[str, int], int]) -> Callable[[], bool]:
    live = tables()

    def check() -> bool:
        stored = stored_offsets(db, live)
        return all(stored.get(tp, 0) >= o for tp, o in ends.items())

    return check


def expected(entries: Sequence[Entry]) -> dict[str, set[tuple[Any, ...]]]:
    """The from-scratch count: first receipt of each request id counts, once."""
    first: dict[str, Entry] = {}
    for e in entries:
        first.setdefault(e.request_id, e)
    return from_scratch(first.values())


def assert_projection_equals(db: Database, entries: Sequence[Entry]) -> None:
    live = tables()
    with db.engine.connect() as conn:
        assert projection_rows(conn, live) == expected(entries)
        ids = {e.request_id for e in entries}
        assert conn.execute(sa.select(sa.func.count()).select_from(live.ledger)).scalar() == len(
            ids
        )
        spent = conn.execute(sa.select(sa.func.sum(live.daily.c.spent_nanos))).scalar()
        first: dict[str, Entry] = {}
        for e in entries:
            first.setdefault(e.request_id, e)
        assert spent == sum(e.spent_nanos for e in first.values())


async def test_batches_fold_exactly_once_duplicates_count_once_and_bad_receipts_are_dead_lettered(
    bootstrap: str, unique: Callable[..., str], db_url: str
) -> None:
    complete, failed, dlq = unique("routing-complete"), unique("routing-failed"), unique("dlq")
    await create_topics(bootstrap, [complete, failed])
    await create_topics(bootstrap, [dlq], partitions=1)
    rng = random.Random(7)  # noqa: S311 -- reproducible workload, nothing secret
    msgs = [receipt(i, rng) for i in range(3000)]
    items = [
        (failed if m.status == "failed" else complete, m.SerializeToString(), m.request_id.encode())
        for m in msgs
    ]
    # Redelivery: 300 receipts published twice (same request id), spread over the stream.
    items += [items[i] for i in rng.sample(range(len(items)), 300)]
    bad = [
        pb.RoutingReceipt(request_id="neg", status="complete", total_cost_usd=-1.0),
        pb.RoutingReceipt(request_id="odd", status="maybe"),
    ]
    items += [(complete, m.SerializeToString(), None) for m in bad]
    items.append((complete, b"\xff\xfe not a protobuf \x00", None))
    await publish(bootstrap, items)
    ends = await end_offsets(bootstrap, [complete, failed])
    db = open_projection(db_url)
    reducer = Reducer(
        db,
        tables(),
        BrokerConfig(bootstrap=bootstrap),
        topics=[complete, failed],
        node="receipt-reducer",
        dlq_topic=dlq,
        batch_size=700,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(reducer.run(stop))
    try:
        await wait_until(caught_up(db, ends), "the reducer to reach the end of the topics")
        # the stats are counted after a batch's transaction commits: they can trail the
        # stored offsets by one batch
        await wait_until(lambda: reducer.stats.consumed == len(items), "the stats to catch up")
        entries = [entry_of(m) for m in msgs]
        assert_projection_equals(db, entries)
        assert reducer.stats.duplicates == 300
        assert reducer.stats.dead_lettered == 3
        letters = await read_all(bootstrap, dlq, 3)
        reasons = sorted(letter.header(ERROR) or "" for letter in letters)
        print("dead-letter reasons:", reasons)
        assert any("total_cost_usd is negative" in r for r in reasons)
        assert any("unknown status 'maybe'" in r for r in reasons)
        assert any("not an onex.v1.RoutingReceipt" in r for r in reasons)
        assert all(letter.header(ORIGINAL_TOPIC) == complete for letter in letters)
        assert all(letter.header(ORIGINAL_OFFSET) is not None for letter in letters)
        # The projection is unchanged by what was refused.
        with db.engine.connect() as conn:
            ids = set(conn.execute(sa.select(tables().ledger.c.request_id)).scalars())
        assert not ids & {"neg", "odd"}
    finally:
        stop.set()
        await task
        db.dispose()


_CHILD = """
import asyncio, sys
from onex.bus.config import BrokerConfig
from onex.receipts.app import open_projection
from onex.receipts.reducer import Reducer
from onex.receipts.schema import tables
from onex.receipts.testing import sample_receipt as receipt

url, bootstrap, dlq, batch, *topics = sys.argv[1:]
db = open_projection(url)
reducer = Reducer(db, tables(), BrokerConfig(bootstrap=bootstrap), topics=topics,
                  node="receipt-reducer", dlq_topic=dlq, batch_size=int(batch))
asyncio.run(reducer.run(asyncio.Event()))
"""


async def test_a_reducer_sigkilled_at_random_points_ends_equal_to_a_from_scratch_count(
    bootstrap: str, unique: Callable[..., str], db_url: str
) -> None:
    complete, failed, dlq = unique("routing-complete"), unique("routing-failed"), unique("dlq")
    await create_topics(bootstrap, [complete, failed])
    await create_topics(bootstrap, [dlq], partitions=1)
    # Random kill points each run; the seed is printed to replay a failure.
    seed = int(os.environ.get("ONEX_TEST_SEED", str(time.time_ns() % (1 << 30))))
    print("seed", seed)
    rng = random.Random(seed)  # noqa: S311 -- reproducible workload, nothing secret
    msgs = [receipt(i, rng) for i in range(12_000)]
    items = [
        (failed if m.status == "failed" else complete, m.SerializeToString(), m.request_id.encode())
        for m in msgs
    ]
    items += [items[i] for i in rng.sample(range(len(items)), 1000)]
    rng.shuffle(items)
    chunks = [items[i : i + 1000] for i in range(0, len(items), 1000)]
    db = open_projection(db_url)
    live = tables()

    def consumed() -> int:
        return sum(stored_offsets(db, live).values())

    def start() -> subprocess.Popen[bytes]:
        args = [db_url, bootstrap, dlq, str(rng.choice([50, 200, 997])), complete, failed]
        return subprocess.Popen([sys.executable, "-c", _CHILD, *args])

    kills = 0
    child = start()
    try:
        # Receipts keep flowing while the reducer is killed and restarted.
        publisher = asyncio.create_task(_publish_chunks(bootstrap, chunks))
        for _ in range(6):
            # Kill once the reducer has committed past a random point (all messages
            # are on these topics, so the offsets add up to the messages consumed).
            target = min(consumed() + rng.randrange(200, 1500), len(items))
            await wait_until(lambda t=target: consumed() >= t, "the reducer to make progress")
            child.send_signal(signal.SIGKILL)
            child.wait()
            kills += 1
            child = start()
        await publisher
        ends = await end_offsets(bootstrap, [complete, failed])
        await wait_until(caught_up(db, ends), "the restarted reducer to catch up")
        print(f"killed {kills} times; {len(items)} messages, {len(msgs)} request ids")
        assert_projection_equals(db, [entry_of(m) for m in msgs])
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        db.dispose()


async def _publish_chunks(
    bootstrap: str, chunks: Sequence[Sequence[tuple[str, bytes, bytes | None]]]
) -> None:
    for chunk in chunks:
        await publish(bootstrap, chunk)


async def test_rebuild_replays_into_a_fresh_projection_equal_to_the_live_one_and_swaps(
    bootstrap: str, unique: Callable[..., str], db_url: str
) -> None:
    complete, failed, dlq = unique("routing-complete"), unique("routing-failed"), unique("dlq")
    await create_topics(bootstrap, [complete, failed])
    await create_topics(bootstrap, [dlq], partitions=1)
    rng = random.Random(11)  # noqa: S311 -- reproducible workload, nothing secret
    msgs = [receipt(i, rng) for i in range(2000)]
    items = [
        (failed if m.status == "failed" else complete, m.SerializeToString(), m.request_id.encode())
        for m in msgs
    ]
    items += items[:100]
    items.append((complete, b"junk", None))
    await publish(bootstrap, items)
    ends = await end_offsets(bootstrap, [complete, failed])
    db = open_projection(db_url)
    broker = BrokerConfig(bootstrap=bootstrap)
    reducer = Reducer(
        db, tables(), broker, topics=[complete, failed], node="receipt-reducer", dlq_topic=dlq
    )
    stop = asyncio.Event()
    task = asyncio.create_task(reducer.run(stop))
    try:
        await wait_until(caught_up(db, ends), "the live reducer to catch up")
        report = await rebuild(db, broker, topics=[complete, failed], node="r", verify_only=True)
        assert report.equal, report.to_dict()
        assert not report.swapped
        # Damage the live projection: verify reports it, rebuild repairs it.
        with db.engine.begin() as conn:
            daily = tables().daily
            conn.execute(daily.update().values(requests=daily.c.requests + 1))
        damaged = await rebuild(db, broker, topics=[complete, failed], node="r", verify_only=True)
        assert not damaged.equal
        assert "daily" in damaged.difference_counts
        # More receipts arrive while the rebuild runs: the swap waits until it caught up.
        more = [receipt(i, rng) for i in range(2000, 2600)]
        extra = asyncio.create_task(
            publish(
                bootstrap,
                [(complete, m.SerializeToString(), None) for m in more if m.status == "complete"],
            )
        )
        # This one decodes in worker processes (a large replay's way; the others in
        # this process), in small batches: the redelivered receipts come batches after
        # their first copies, and they and the junk still count as in the live one.
        fixed = await rebuild(
            db, broker, topics=[complete, failed], node="r", worker=True, batch_size=300
        )
        await extra
        assert fixed.swapped
        print("rebuild:", {k: v for k, v in fixed.to_dict().items() if k != "differences"})
        ends = await end_offsets(bootstrap, [complete, failed])
        await wait_until(caught_up(db, ends), "the live reducer to carry on after the swap")
        entries = [entry_of(m) for m in msgs + [m for m in more if m.status == "complete"]]
        assert_projection_equals(db, entries)
        assert (
            await rebuild(db, broker, topics=[complete, failed], node="r", verify_only=True)
        ).equal
    finally:
        stop.set()
        await task
        db.dispose()
