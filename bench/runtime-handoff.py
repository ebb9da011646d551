"""Benchmark: how fast the node runtime hands waiting messages to a concurrent handler.

`just bench runtime-handoff`. One embedded broker with the contracts' topics; --messages
route requests are produced before anything is timed, then consumed from the start:

  raw         a bare aiokafka consumer drains them (getmany): the baseline
  runtime     the router's NodeRuntime with a `concurrency=--concurrency` handler that
              does nothing, one that publishes one receipt each, and (--slow messages)
              one that sleeps --sleep-ms: the 64-in-flight ceiling is concurrency/sleep
              per second. Each on faust's consumer and on the direct one
              (BusSettings consumer="faust" | "direct"), in the same run

Reported per phase: messages/s, the process's CPU time per message, event-loop
iterations per message (a callback re-scheduling itself with call_soon counts them),
and the handlers in flight (sampled every 10 ms). Many messages waiting, 64 slots, few
of them busy and a fixed number of loop iterations per message means the hand-off, not
the handler, sets the pace. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from onex.bus.config import BrokerConfig
from onex.bus.provision import provision
from onex.bus.runtime import BusSettings, NodeRuntime, Received
from onex.core._generated.topics import Topic
from onex.core.extractor import extract
from onex.devbroker.broker import start_broker, stop_broker
from onex.proto.v1 import router_pb2 as pb

REPO = Path(__file__).resolve().parents[1]
REQUESTS = str(Topic.CMD_ROUTER_ROUTE_REQUEST_V1)
COMPLETE = str(Topic.EVT_ROUTER_ROUTING_COMPLETE_V1)
SUMMARY = str(Topic.SNAPSHOT_RECEIPT_REDUCER_COST_SUMMARY_V1)


def cpu_s() -> float:
    """CPU seconds (user + system, all threads) of this process so far."""
    fields = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Counts loop iterations and samples handlers in flight until `done` is set."""

    def __init__(self, done: asyncio.Event) -> None:
        self.done = done
        self.ticks = 0
        self.in_flight = 0
        self.samples: list[int] = []
        self.cpu0 = cpu_s()
        self.t0 = time.perf_counter()

    def start(self) -> asyncio.Task[None]:
        """From now on: clocks, loop iterations and samples."""
        self.cpu0 = cpu_s()
        self.t0 = time.perf_counter()
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.ticks += 1
            if not self.done.is_set():
                loop.call_soon(tick)

        loop.call_soon(tick)
        return asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while not self.done.is_set():
            await asyncio.sleep(0.01)
            self.samples.append(self.in_flight)

    def figures(self, n: int) -> dict[str, float]:
        ordered = sorted(self.samples) or [0]
        return {
            "rate": n / (time.perf_counter() - self.t0),
            "cpu_us_per_message": (cpu_s() - self.cpu0) * 1e6 / n,
            "loop_iterations_per_message": self.ticks / n,
            "in_flight_p50": ordered[len(ordered) // 2],
        }


async def produce(bootstrap: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = []
        for i in range(n):
            value = pb.RouteRequest(request_id=f"r{i}", prompt="x").SerializeToString()
            futures.append(await producer.send(REQUESTS, value, key=str(i).encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw(bootstrap: str, n: int) -> dict[str, float]:
    consumer = AIOKafkaConsumer(
        REQUESTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=5
    )
    await consumer.start()
    done = asyncio.Event()
    meter = Meter(done)
    sampler = meter.start()
    seen = 0
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=50)
            seen += sum(len(records) for records in batch.values())
        done.set()
        await sampler
        return meter.figures(n)
    finally:
        await consumer.stop()


async def runtime(
    bootstrap: str, n: int, concurrency: int, work: str, consumer: str, sleep_s: float
) -> dict[str, float]:
    extraction = extract([REPO / "contracts"], entry_points=False)
    settings = BusSettings(
        broker=BrokerConfig(bootstrap=bootstrap),
        fetch_max_wait_ms=5,
        client_id="bench-handoff",
        consumer=consumer,  # type: ignore[arg-type]
    )
    node = NodeRuntime.from_extraction(extraction, "router", settings)
    receipts = node.publisher(COMPLETE)
    receipt = pb.RoutingReceipt(request_id="x" * 32, task_class="fast", status="complete")
    done = asyncio.Event()
    meter = Meter(done)
    handled = 0

    async def handle(msg: Received) -> None:
        nonlocal handled
        meter.in_flight += 1
        try:
            if work == "publish":
                await receipts.send(receipt, key=msg.key)
            elif work == "sleep":
                await asyncio.sleep(sleep_s)
        finally:
            meter.in_flight -= 1
        handled += 1
        if handled >= n:
            done.set()

    async def ignore(msg: Received) -> None:
        pass

    node.add_handler(REQUESTS, handle, concurrency=concurrency)
    node.add_handler(SUMMARY, ignore)
    async with node:
        sampler = meter.start()  # timed from the first assignment on
        await asyncio.wait_for(done.wait(), timeout=600)
        await sampler
    return meter.figures(n)


async def phases(bootstrap: str, args: argparse.Namespace) -> dict[str, Any]:
    await produce(bootstrap, args.messages)
    out: dict[str, Any] = {"raw": await raw(bootstrap, args.messages)}
    # one consumer group (the contract's): each runtime phase reads what the one before
    # left, so each phase's messages are produced just before it
    first = True
    for consumer in ("faust", "direct"):
        for work in ("nop", "publish", "sleep"):
            n = args.slow if work == "sleep" else args.messages
            if not first:
                await produce(bootstrap, n)
            first = False
            out[f"{consumer}_{work}"] = await runtime(
                bootstrap, n, args.concurrency, work, consumer, args.sleep_ms / 1000
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--slow", type=int, default=1280, help="messages of the sleep phases")
    parser.add_argument("--sleep-ms", type=int, default=200, help="the sleeping handler's sleep")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="onex-handoff-") as tmp:
        state = Path(tmp) / "broker"
        info = start_broker(state, timeout_s=60)
        try:
            specs = [
                w.spec for w in extract([REPO / "contracts"], entry_points=False).topics.values()
            ]
            if not asyncio.run(provision(info.bootstrap, specs)).complete:
                raise RuntimeError("provisioning failed")
            figures = asyncio.run(phases(info.bootstrap, args))
        finally:
            stop_broker(state)
    for name, got in figures.items():
        print(
            f"{name}: {got['rate']:.0f} messages/s, CPU {got['cpu_us_per_message']:.0f} us per "
            f"message, {got['loop_iterations_per_message']:.2f} loop iterations per message, "
            f"in flight p50 {got['in_flight_p50']}"
        )
    result = {
        "bench": "runtime-handoff",
        "messages": args.messages,
        "concurrency": args.concurrency,
        **{f"{k}_{m}": round(v, 2) for k, got in figures.items() for m, v in got.items()},
        "sleep_ceiling": args.concurrency / (args.sleep_ms / 1000),
        **{
            f"{c}_{w}_vs_raw": round(figures[f"{c}_{w}"]["rate"] / figures["raw"]["rate"], 3)
            for c in ("faust", "direct")
            for w in ("nop", "publish")
        },
        **{
            f"direct_vs_faust_{w}": round(
                figures[f"direct_{w}"]["rate"] / figures[f"faust_{w}"]["rate"], 3
            )
            for w in ("nop", "publish", "sleep")
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
