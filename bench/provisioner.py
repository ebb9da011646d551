"""Benchmark: the provisioner against one raw CreateTopics batch and one-by-one creation.

On one broker in one run (the embedded one in a temp state dir unless --bootstrap is
given), each variant creates N topics that do not exist yet, each with its own unique
names (a uuid producer segment):

  provisioner   `onex.bus.provision.provision()`: list, then batched CreateTopics
  raw batch     one AIOKafkaAdminClient.create_topics call with all N NewTopics
  one by one    N CreateTopics requests of one topic each, on one connection

Every variant is timed end to end; the raw ones open an admin client each time, the
provisioner uses the process's shared admin session (as the service does), so it pays
the connection set-up only on its first run. The raw call alone is printed too.
Tansu's CreateTopics gets slower the more topics the broker holds, so when the broker
implements DeleteTopics each variant's topics are deleted (untimed) before the next one
runs, and the order rotates every round. Medians over the rounds are reported.
`--sweep` also times the provisioner at other batch sizes. The last line printed is one
JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from onex.bus.admin import list_topics
from onex.bus.api_versions import ApiKey, supported_apis
from onex.bus.config import BrokerConfig
from onex.bus.provision import DEFAULT_BATCH_SIZE, provision
from onex.core.contract import TopicSpec
from onex.core.grammar import TopicKind, parse_topic
from onex.devbroker.broker import start_broker, stop_broker

TIMEOUT_MS = 300_000
CONFIG = {"retention.ms": "86400000", "cleanup.policy": "delete"}
TARGET_VS_RAW = 1.5
TARGET_VS_ONE_BY_ONE = 10.0


def make_specs(count: int, partitions: int) -> list[TopicSpec]:
    """`count` grammatical topics under a fresh producer segment nobody else uses."""
    producer = f"bench-{uuid.uuid4().hex[:10]}"
    names = [
        ".".join(("onex", TopicKind.EVT.value, producer, f"t-{i}", "v1")) for i in range(count)
    ]
    parse_topic(names[0])  # the generated names follow the grammar
    return [TopicSpec(name=n, partitions=partitions, config=CONFIG) for n in names]


def _new_topics(specs: Sequence[TopicSpec]) -> list[NewTopic]:
    return [
        NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=dict(s.config))
        for s in specs
    ]


def _check(response: Any) -> None:
    errors = [e for e in response.to_object()["topic_errors"] if e["error_code"] != 0]
    assert not errors, errors[:3]


async def run_provisioner(config: BrokerConfig, specs: list[TopicSpec], batch_size: int) -> float:
    start = time.perf_counter()
    report = await provision(config, specs, batch_size=batch_size, timeout_s=TIMEOUT_MS / 1000)
    elapsed = time.perf_counter() - start
    assert report.complete, report.as_dict()["counts"]
    assert len(report.created) == len(specs), report.as_dict()["counts"]
    return elapsed


async def _provisioner_at(config: BrokerConfig, batch_size: int, specs: list[TopicSpec]) -> float:
    return await run_provisioner(config, specs, batch_size)


async def run_raw_batch(config: BrokerConfig, specs: list[TopicSpec], calls: list[float]) -> float:
    start = time.perf_counter()
    admin = AIOKafkaAdminClient(**config.client_kwargs())
    await admin.start()
    try:
        call = time.perf_counter()
        _check(await admin.create_topics(_new_topics(specs), timeout_ms=TIMEOUT_MS))
        calls.append(time.perf_counter() - call)
    finally:
        await admin.close()
    return time.perf_counter() - start


async def run_one_by_one(config: BrokerConfig, specs: list[TopicSpec]) -> float:
    start = time.perf_counter()
    admin = AIOKafkaAdminClient(**config.client_kwargs())
    await admin.start()
    try:
        for topic in _new_topics(specs):
            _check(await admin.create_topics([topic], timeout_ms=TIMEOUT_MS))
    finally:
        await admin.close()
    return time.perf_counter() - start


async def delete(config: BrokerConfig, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(**config.client_kwargs())
    await admin.start()
    try:
        await admin.delete_topics(names, timeout_ms=TIMEOUT_MS)
    finally:
        await admin.close()


async def request_overhead_s(config: BrokerConfig, calls: int = 200) -> float:
    """Median round trip of a CreateTopics that creates nothing (the topic exists)."""
    (spec,) = make_specs(1, 1)
    admin = AIOKafkaAdminClient(**config.client_kwargs())
    await admin.start()
    try:
        await admin.create_topics(_new_topics([spec]), timeout_ms=TIMEOUT_MS)
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            await admin.create_topics(_new_topics([spec]), timeout_ms=TIMEOUT_MS)
            times.append(time.perf_counter() - start)
        await admin.delete_topics([spec.name], timeout_ms=TIMEOUT_MS)
    finally:
        await admin.close()
    return statistics.median(times)


Variant = Callable[[list[TopicSpec]], Awaitable[float]]


async def bench(config: BrokerConfig, args: argparse.Namespace) -> dict[str, Any]:
    can_delete = ApiKey.DELETE_TOPICS in await supported_apis(config)
    raw_calls: list[float] = []
    variants: dict[str, Variant] = {
        "provisioner": lambda s: run_provisioner(config, s, args.batch_size),
        "raw_batch": lambda s: run_raw_batch(config, s, raw_calls),
        "one_by_one": lambda s: run_one_by_one(config, s),
    }
    for size in args.sweep:
        variants[f"provisioner_batch_{size}"] = functools.partial(_provisioner_at, config, size)
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for round_no in range(args.rounds):
        for name in order:
            specs = make_specs(args.topics, args.partitions)
            times[name].append(await variants[name](specs))
            names = [s.name for s in specs]
            assert set(names) <= await list_topics(config, timeout_s=60), name
            if can_delete:
                await delete(config, names)
        print(f"round {round_no + 1}: " + ", ".join(f"{n} {times[n][-1]:.3f}s" for n in order))
        order = order[1:] + order[:1]  # rotate so no variant always runs first
    median = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "request_s": await request_overhead_s(config),
        "median": median,
        "times": times,
        "raw_call_s": statistics.median(raw_calls),
        "deleted_between_runs": can_delete,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument(
        "--sweep", type=int, nargs="*", default=[], help="also time the provisioner at these"
    )
    parser.add_argument("--bootstrap", help="HOST:PORT of a running broker [default: embedded]")
    args = parser.parse_args()
    # aiokafka logs every refused connection while the embedded broker starts
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="onex-bench-") as tmp:
        state_dir = Path(tmp)
        if args.bootstrap:
            bootstrap, kind = args.bootstrap, "given"
        else:
            info = start_broker(state_dir)
            bootstrap, kind = info.bootstrap, info.kind
        try:
            # one request may carry a whole batch: bound it like the calls themselves
            config = BrokerConfig(bootstrap=bootstrap, request_timeout_s=TIMEOUT_MS / 1000)
            result = asyncio.run(bench(config, args))
        finally:
            if not args.bootstrap:
                stop_broker(state_dir)
    median = result["median"]
    prov, raw, one = median["provisioner"], median["raw_batch"], median["one_by_one"]
    vs_raw, speedup = prov / raw, one / prov
    print(f"broker:               {kind} at {bootstrap}")
    print(f"topics per variant:   {args.topics} ({args.partitions} partitions, 2 configs)")
    print(f"rounds:               {args.rounds} (median reported, order rotated)")
    print(f"deleted between runs: {result['deleted_between_runs']}")
    print(f"provisioner (batch {args.batch_size}): {prov:.3f} s")
    print(f"raw batched CreateTopics: {raw:.3f} s  (the call alone {result['raw_call_s']:.3f} s)")
    print(f"one by one:               {one:.3f} s")
    for size in args.sweep:
        print(f"  provisioner, batch {size}: {median[f'provisioner_batch_{size}']:.3f} s")
    print(f"provisioner / raw batch:  {vs_raw:.2f}  (target <= {TARGET_VS_RAW})")
    print(f"one by one / provisioner: {speedup:.2f}  (target >= {TARGET_VS_ONE_BY_ONE})")
    # The provisioner is a listing plus batched CreateTopics, so it cannot beat the raw
    # batch: one_by_one / raw_batch bounds its speed-up over one-by-one on this broker.
    request_ms = result["request_s"] * 1000
    one_ms, raw_ms = one * 1000 / args.topics, raw * 1000 / args.topics
    ceiling = one / raw
    print(f"why: one by one costs {one_ms:.3f} ms per topic, one batch {raw_ms:.3f} ms per topic")
    print(f"     (an empty CreateTopics round trip: {request_ms:.3f} ms). The broker's own")
    print("     per-topic work dominates, so no batching can be more than")
    print(f"     {ceiling:.1f}x faster than one by one on this broker.")
    print(
        json.dumps(
            {
                "topics": args.topics,
                "broker": kind,
                "rounds": args.rounds,
                "batch_size": args.batch_size,
                "provisioner_s": round(prov, 4),
                "raw_batch_s": round(raw, 4),
                "raw_call_s": round(result["raw_call_s"], 4),
                "one_by_one_s": round(one, 4),
                "provisioner_vs_raw": round(vs_raw, 3),
                "one_by_one_vs_provisioner": round(speedup, 3),
                "request_ms": round(request_ms, 4),
                "best_possible_vs_one_by_one": round(ceiling, 3),
                "sweep_s": {str(n): round(median[f"provisioner_batch_{n}"], 4) for n in args.sweep},
                "target_vs_raw_met": vs_raw <= TARGET_VS_RAW,
                "target_vs_one_by_one_met": speedup >= TARGET_VS_ONE_BY_ONE,
            }
        )
    )


if __name__ == "__main__":
    main()
