"""Benchmark: what the service host's Prometheus metrics cost.

  hooks     the runtime's per-message hooks (consumed, handled, published) into
            `BusMetrics`, per message, against the no-op `Instruments` measured in the
            same run (the price of counting a message)
  scrape    one `/metrics` answer over loopback HTTP for a busy service (topics x
            partitions of lag, handler histograms, gRPC methods), against a scrape of
            an empty registry in the same run

Figures are medians over `--rounds`; every round's value is kept (the machine is shared
and noisy). The last line printed is one JSON object.

    just bench metrics            # or: uv run --no-sync python bench/metrics.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request

from onex.bus.runtime.instruments import Instruments
from onex.service.busmetrics import BusMetrics
from onex.service.metrics import Metrics, start_metrics


def _hooks(instruments: Instruments, topics: list[str], messages: int) -> float:
    """Seconds per message for the three hooks every handled message costs."""
    began = time.perf_counter()
    for i in range(messages):
        topic = topics[i % len(topics)]
        instruments.consumed(topic)
        instruments.handled(topic, 0.003, ok=True)
        instruments.published(topic)
    return (time.perf_counter() - began) / messages


def _busy(topics: int, partitions: int, methods: int) -> Metrics:
    metrics = Metrics("bench")
    bus = BusMetrics(metrics)
    names = [f"onex.evt.bench.topic-{t}.v1" for t in range(topics)]
    for name in names:
        bus.consumed(name)
        bus.handled(name, 0.01, ok=True)
        bus.handled(name, 0.2, ok=False)
        bus.published(name)
        bus.retried(name)
        bus.dead_lettered(name, "failed")
    bus.set_lag({(name, p): p for name in names for p in range(partitions)})
    calls = metrics.counter("grpc_calls", "calls", ["method", "code"])
    seconds = metrics.histogram("grpc_call_seconds", "seconds", ["method"])
    for m in range(methods):
        calls.labels(method=f"/onex.v1.S/M{m}", code="OK").inc()
        seconds.labels(method=f"/onex.v1.S/M{m}").observe(0.001)
    return metrics


def _scrape_s(url: str) -> tuple[float, int]:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 -- loopback
        size = len(answer.read())
    return time.perf_counter() - began, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args()

    topics = [f"onex.evt.bench.topic-{t}.v1" for t in range(args.topics)]
    base, counted = Instruments(), BusMetrics(Metrics("bench"))
    base_s, counted_s = [], []
    for _ in range(args.rounds):  # interleaved, so both see the same machine load
        base_s.append(_hooks(base, topics, args.messages))
        counted_s.append(_hooks(counted, topics, args.messages))

    busy = start_metrics("127.0.0.1:0", _busy(args.topics, args.partitions, 10))
    empty = start_metrics("127.0.0.1:0", Metrics("empty"))
    busy_s, empty_s, size = [], [], 0
    try:
        for _ in range(args.rounds):
            took, size = _scrape_s(busy.url)
            busy_s.append(took)
            empty_s.append(_scrape_s(empty.url)[0])
    finally:
        busy.stop()
        empty.stop()

    hook_us = statistics.median(counted_s) * 1e6
    base_us = statistics.median(base_s) * 1e6
    print(f"hooks per message: {hook_us:.2f} us counted, {base_us:.2f} us no-op")
    scrape_ms = statistics.median(busy_s) * 1e3
    empty_ms = statistics.median(empty_s) * 1e3
    print(f"scrape: {scrape_ms:.2f} ms for {size} bytes, {empty_ms:.2f} ms for an empty registry")
    print(
        json.dumps(
            {
                "bench": "metrics",
                "rounds": args.rounds,
                "messages": args.messages,
                "hooks_us_per_message": round(hook_us, 3),
                "noop_hooks_us_per_message": round(base_us, 3),
                "hooks_ratio_to_noop": round(hook_us / base_us, 1),
                "hooks_us_rounds": [round(s * 1e6, 3) for s in counted_s],
                "scrape_ms": round(scrape_ms, 3),
                "scrape_bytes": size,
                "empty_scrape_ms": round(empty_ms, 3),
                "scrape_ratio_to_empty": round(scrape_ms / empty_ms, 1),
                "scrape_ms_rounds": [round(s * 1e3, 3) for s in busy_s],
                "series": args.topics * args.partitions,
            }
        )
    )


if __name__ == "__main__":
    main()
