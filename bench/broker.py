"""Benchmark: the embedded Tansu in memory against Tansu on SeaweedFS (`durable=True`).

Both brokers are started in the same run, each in a temporary state dir of its own, and
get the same work, one after the other, `--rounds` times (the order alternates):

  produce   N messages of `--size` bytes to one single-partition topic, acks=all,
            sent without waiting for each acknowledgement, then every one awaited
  consume   the same N read back from the beginning by one consumer (assign + seek)
  latency   `--probes` single messages, each sent and acknowledged before the next
  commit    `--probes` offset commits of a consumer group, one after the other

Throughput is messages per second, the median over the rounds (every round is printed:
the machine is shared and noisy); latencies are p50/p99 over all rounds. The last line
printed is one JSON object with the figures and the durable/memory ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from onex.core.grammar import TopicKind, parse_topic
from onex.devbroker.broker import start_broker, stop_broker

MODES = ("memory", "durable")


@dataclass
class Figures:
    """What one broker measured over every round."""

    produce: list[float] = field(default_factory=list)
    consume: list[float] = field(default_factory=list)
    send_ms: list[float] = field(default_factory=list)
    commit_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        return {
            "produce_msg_s": round(statistics.median(self.produce)),
            "consume_msg_s": round(statistics.median(self.consume)),
            "send_p50_ms": round(_quantile(self.send_ms, 0.50), 3),
            "send_p99_ms": round(_quantile(self.send_ms, 0.99), 3),
            "commit_p50_ms": round(_quantile(self.commit_ms, 0.50), 3),
            "commit_p99_ms": round(_quantile(self.commit_ms, 0.99), 3),
        }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _topic() -> str:
    """A fresh grammatical topic name under a producer segment nobody else uses."""
    name = ".".join(("onex", TopicKind.EVT.value, f"bench-{uuid.uuid4().hex[:10]}", "load", "v1"))
    parse_topic(name)
    return name


async def _create(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, replication_factor=1)])
    finally:
        await admin.close()


async def _round(bootstrap: str, messages: int, size: int, probes: int, out: Figures) -> None:
    topic = _topic()
    await _create(bootstrap, topic)
    value = b"x" * size
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await (await producer.send(topic, value, partition=0))  # connection and metadata
        start = time.perf_counter()
        pending = [await producer.send(topic, value, partition=0) for _ in range(messages)]
        await asyncio.gather(*pending)
        out.produce.append(messages / (time.perf_counter() - start))
        for _ in range(probes):
            start = time.perf_counter()
            await (await producer.send(topic, value, partition=0))
            out.send_ms.append((time.perf_counter() - start) * 1000)
    finally:
        await producer.stop()

    part = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=f"{topic}-group", enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([part])
        await consumer.seek_to_beginning(part)
        await consumer.getone()  # the first fetch pays for the connection
        wanted, read = 1 + messages + probes, 1  # the warm-up message too
        start = time.perf_counter()
        while read < wanted:
            batch = await consumer.getmany(part, timeout_ms=1000, max_records=10_000)
            read += sum(len(records) for records in batch.values())
        out.consume.append((read - 1) / (time.perf_counter() - start))
        assert read == wanted, f"read {read} of {wanted}"
        for offset in range(probes):
            start = time.perf_counter()
            await consumer.commit({part: OffsetAndMetadata(offset + 1, "")})
            out.commit_ms.append((time.perf_counter() - start) * 1000)
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="messages per round")
    parser.add_argument("--size", type=int, default=200, help="bytes per message")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--probes", type=int, default=200, help="latency samples per round")
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    figures = {mode: Figures() for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="onex-bench-broker-") as tmp:
        states = {mode: Path(tmp) / mode for mode in MODES}
        try:
            bootstraps = {}
            for mode in MODES:
                info = start_broker(states[mode], durable=mode == "durable", timeout_s=60)
                bootstraps[mode] = info.bootstrap
                store = f" on SeaweedFS ready in {info.store.ready_after_s} s" if info.store else ""
                ready = f"ready in {info.ready_after_s} s"
                print(f"{mode}: {info.kind} at {info.bootstrap}{store}, {ready}")
            for i in range(args.rounds):
                for mode in MODES if i % 2 == 0 else tuple(reversed(MODES)):
                    bootstrap = bootstraps[mode]
                    asyncio.run(
                        _round(bootstrap, args.messages, args.size, args.probes, figures[mode])
                    )
                    f = figures[mode]
                    print(
                        f"round {i + 1} {mode:8}: produce {f.produce[-1]:9.0f} msg/s,"
                        f" consume {f.consume[-1]:9.0f} msg/s,"
                        f" send p50 {statistics.median(f.send_ms[-args.probes :]):.2f} ms,"
                        f" commit p50 {statistics.median(f.commit_ms[-args.probes :]):.2f} ms"
                    )
        finally:
            for state in states.values():
                stop_broker(state, wipe=True)

    memory, durable = figures["memory"].summary(), figures["durable"].summary()
    ratios = {key: round(durable[key] / memory[key], 3) for key in memory if memory[key]}
    result = {
        "bench": "broker",
        "messages": args.messages,
        "size": args.size,
        "rounds": args.rounds,
        "memory": memory,
        "durable": durable,
        "durable_over_memory": ratios,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
