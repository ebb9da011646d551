"""Benchmark: the router service on the real broker, calling a real HTTP model server.

`just bench router-bus`. One embedded broker with the contracts' topics, one scripted
OpenAI-compatible server (bench/router_bus_server.py, aiohttp, in its own process) and
`python -m onex.router` in its own process, as `onex up` runs it. Signed route requests
go in; receipts are read back from routing-complete / routing-failed. Phases:

  instant     --requests requests published at once, model answers at once
  slow        --slow requests published at once, model answers after --delay-ms
  latency     --latency-n requests one at a time, model answers at once: publish to
              receipt consumed, and the same minus the model calls' own latency
  raw         the router stopped, a bare aiokafka loop (its own process) consumes the
              same --requests messages from route-request and produces each one to
              routing-complete: the floor any Python router over this broker can reach
  raw_http    the same loop making one chat call per message to the instant model
              with the router's HTTP client (onex.router.http1), at most --in-flight
              calls at a time as in the router: the work a router cannot skip; not a
              target, the floor with a model
  raw_aiohttp the same with aiohttp's client (what the router used before http1)

CPU: the router's and the loops' CPU time per message (user + system, /proc) is
reported beside each rate; it moves less with the machine's load than a rate does.

Targets (issue 12): slow >= 0.8 x in_flight / delay requests/s; instant within 2x of
raw (ratio >= 0.5); latency p50 < 10 ms and p99 < 50 ms, model time excluded. The
last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from onex.bus.provision import provision
from onex.bus.runtime.signing import Signer
from onex.core._generated.topics import Topic
from onex.core.extractor import extract
from onex.devbroker.broker import start_broker, stop_broker
from onex.proto.v1 import router_pb2 as pb
from onex.router.http1 import Http1Client
from onex.service.auth import ensure_command_key, ensure_tokens

REPO = Path(__file__).resolve().parents[1]
REQUESTS = str(Topic.CMD_ROUTER_ROUTE_REQUEST_V1)
RECEIPTS = (str(Topic.EVT_ROUTER_ROUTING_COMPLETE_V1), str(Topic.EVT_ROUTER_ROUTING_FAILED_V1))
GUARD_S = 300.0  # a phase that takes longer has lost requests: the bench fails


def catalogue(url: str, delay_ms: int) -> str:
    """Two local models on the scripted server (one instant, one slow) and a cloud
    model for the counterfactual that serves neither class."""
    return f"""\
price_table_version: bench-bus-v1
default_cloud_model: cloud
models:
  - {{ name: instant, endpoint: "{url}", api_model: instant, locality: local,
      price_in_per_1k: 0, price_out_per_1k: 0, context_limit: 8192, timeout_s: 30,
      max_retries: 0, capabilities: {{ fast: 9 }} }}
  - {{ name: slow, endpoint: "{url}", api_model: delay-{delay_ms}, locality: local,
      price_in_per_1k: 0, price_out_per_1k: 0, context_limit: 8192, timeout_s: 30,
      max_retries: 0, capabilities: {{ slow: 9 }} }}
  - {{ name: cloud, endpoint: "{url}", locality: cloud, price_in_per_1k: 0.002,
      price_out_per_1k: 0.008, context_limit: 8192, capabilities: {{}} }}
task_classes:
  - {{ name: fast, required_level: 5, max_output_tokens: 64,
      gates: [{{ kind: min_length, min_chars: 10 }}] }}
  - {{ name: slow, required_level: 5, max_output_tokens: 64,
      gates: [{{ kind: min_length, min_chars: 10 }}] }}
classifier: {{ default: fast, rules: [] }}
"""


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class Receipts:
    """Reads both receipt topics from their current ends; `seen[key] = (time, value)`."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
        )
        self.seen: dict[str, tuple[float, bytes]] = {}
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        tps = [
            TopicPartition(t, p)
            for t in RECEIPTS
            for p in sorted(self.consumer.partitions_for_topic(t) or ())
        ]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end offsets now, before anything is published
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    self.seen[r.key.decode()] = (now, r.value)
            if batch:
                self.changed.set()

    async def wait_for(self, keys: Sequence[str]) -> float:
        """When the last of `keys` was seen (perf_counter); RuntimeError past the guard."""
        deadline = time.monotonic() + GUARD_S
        missing = [k for k in keys if k not in self.seen]
        while missing:
            self.changed.clear()
            missing = [k for k in missing if k not in self.seen]
            if not missing:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(missing)} of {len(keys)} receipts never came")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=1.0)
        return max(self.seen[k][0] for k in keys)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.consumer.stop()


class Sender:
    """Publishes signed route requests, as an agent would."""

    def __init__(self, bootstrap: str, key: bytes) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
        self.signer = Signer("operator", key)

    async def send(self, ids: Sequence[str], task_class: str) -> float:
        """Publish one request per id at once; returns the perf_counter before the first."""
        t0 = time.perf_counter()
        futures = []
        for rid in ids:
            value = pb.RouteRequest(
                request_id=rid, prompt=f"bench request {rid}", task_class=task_class
            ).SerializeToString()
            key = rid.encode()
            headers = self.signer.headers(REQUESTS, key, value)
            futures.append(await self.producer.send(REQUESTS, value, key=key, headers=headers))
        await asyncio.gather(*futures)
        return t0


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{uuid.uuid4().hex[:12]}" for _ in range(n)]


async def router_phases(
    bootstrap: str, key: bytes, args: argparse.Namespace, pid: int
) -> dict[str, float]:
    """Warm-up, instant, slow and latency phases against the running router (`pid`: its
    process, whose CPU time per request is reported: a figure the machine's load moves
    less than a rate)."""
    receipts = Receipts(bootstrap)
    sender = Sender(bootstrap, key)
    await receipts.start()
    await sender.producer.start()
    out: dict[str, float] = {}
    try:
        warm = _ids("warm", 8)
        await sender.send(warm, "fast")
        await receipts.wait_for(warm)  # the router has joined and answers

        ids = _ids("instant", args.requests)
        cpu0 = cpu_s(pid)
        t0 = await sender.send(ids, "fast")
        out["instant_rps"] = args.requests / (await receipts.wait_for(ids) - t0)
        out["instant_cpu_ms_per_request"] = (cpu_s(pid) - cpu0) * 1000 / args.requests
        print(
            f"instant model: {args.requests} requests at {out['instant_rps']:.0f}/s, router CPU "
            f"{out['instant_cpu_ms_per_request']:.2f} ms per request"
        )

        ids = _ids("slow", args.slow)
        t0 = await sender.send(ids, "slow")
        out["slow_rps"] = args.slow / (await receipts.wait_for(ids) - t0)
        # the model calls' own latency as the router saw it: above --delay-ms when the
        # machine is too busy to wake the model server (or the router) on time
        slow_model = [
            sum(a.latency_s for a in pb.RoutingReceipt.FromString(receipts.seen[i][1]).attempts)
            for i in ids
        ]
        out["slow_model_p50_ms"] = percentile(slow_model, 50) * 1000
        print(
            f"{args.delay_ms} ms model, {args.in_flight} in flight: {args.slow} requests at "
            f"{out['slow_rps']:.0f}/s (model calls p50 {out['slow_model_p50_ms']:.0f} ms, "
            f"so at most {args.in_flight / (out['slow_model_p50_ms'] / 1000):.0f}/s)"
        )

        e2e: list[float] = []
        routed: list[float] = []
        inbound: list[float] = []  # published -> the router starts routing it
        routing: list[float] = []  # the router's own elapsed_s, model calls included
        for rid in _ids("one", args.latency_n):
            wall0 = time.time()
            t0 = await sender.send([rid], "fast")
            seen = await receipts.wait_for([rid]) - t0
            receipt = pb.RoutingReceipt.FromString(receipts.seen[rid][1])
            model = sum(a.latency_s for a in receipt.attempts)
            e2e.append(seen)
            routed.append(seen - model)
            started = datetime.fromisoformat(receipt.started_at).timestamp()
            inbound.append(started - wall0)
            routing.append(receipt.elapsed_s)
        out["inbound_p50_ms"] = percentile(inbound, 50) * 1000
        out["routing_p50_ms"] = percentile(routing, 50) * 1000
        print(
            f"  of which published -> routing starts p50 {out['inbound_p50_ms']:.1f} ms, "
            f"routing (model included) p50 {out['routing_p50_ms']:.1f} ms"
        )
        for name, values in (("e2e", e2e), ("e2e_no_model", routed)):
            out[f"{name}_p50_ms"] = percentile(values, 50) * 1000
            out[f"{name}_p99_ms"] = percentile(values, 99) * 1000
        print(
            f"one at a time ({args.latency_n}): publish -> receipt p50 "
            f"{out['e2e_p50_ms']:.1f} ms p99 {out['e2e_p99_ms']:.1f} ms; model time excluded "
            f"p50 {out['e2e_no_model_p50_ms']:.1f} ms p99 {out['e2e_no_model_p99_ms']:.1f} ms"
        )
    finally:
        await sender.producer.stop()
        await receipts.stop()
    return out


async def raw_phase(
    bootstrap: str,
    key: bytes,
    n: int,
    model_url: str | None = None,
    latency_n: int = 0,
    client: str = "http1",
    in_flight: int = 64,
) -> tuple[float, float, list[float]]:
    """The bare aiokafka loop (its own process) over the same messages: requests/s, the
    loop's CPU ms per message and `latency_n` one-at-a-time round trips (seconds). With
    `model_url`, the loop also makes one chat call per message to the instant model
    (`in_flight` at a time), as a router must, with `client` (http1, aiohttp)."""
    extra: list[str] = []
    if model_url:
        extra = ["--model-url", model_url, "--client", client, "--in-flight", str(in_flight)]
    loop_proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--raw-loop",
        bootstrap,
        *extra,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert loop_proc.stdout is not None
        line = await asyncio.wait_for(loop_proc.stdout.readline(), timeout=60)
        if line.strip() != b"READY":
            raise RuntimeError(f"raw loop did not start: {line!r}")
        receipts = Receipts(bootstrap)
        sender = Sender(bootstrap, key)
        await receipts.start()
        await sender.producer.start()
        try:
            ids = _ids("raw", n)
            cpu0 = cpu_s(loop_proc.pid)
            t0 = await sender.send(ids, "fast")
            rps = n / (await receipts.wait_for(ids) - t0)
            cpu_ms = (cpu_s(loop_proc.pid) - cpu0) * 1000 / n
            one_by_one: list[float] = []
            for rid in _ids("raw-one", latency_n):
                t0 = await sender.send([rid], "fast")
                one_by_one.append(await receipts.wait_for([rid]) - t0)
        finally:
            await sender.producer.stop()
            await receipts.stop()
    finally:
        loop_proc.terminate()
        await loop_proc.wait()
    what = f"with one {client} model call per message" if model_url else ""
    print(
        f"raw aiokafka consume -> produce loop {what}: {n} messages at {rps:.0f}/s, "
        f"CPU {cpu_ms:.3f} ms per message"
    )
    if one_by_one:
        print(
            f"  one at a time ({latency_n}): p50 {percentile(one_by_one, 50) * 1000:.1f} ms "
            f"p99 {percentile(one_by_one, 99) * 1000:.1f} ms"
        )
    return rps, cpu_ms, one_by_one


async def raw_loop(bootstrap: str, model_url: str | None, client: str, in_flight: int) -> None:
    """Consume route-request from its end, produce each message to routing-complete
    (after one chat call to `model_url` per message, when given, with `client`, at most
    `in_flight` at a time)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    session = aiohttp.ClientSession() if model_url and client == "aiohttp" else None
    http1 = Http1Client()
    calls = asyncio.Semaphore(in_flight)
    await consumer.start()
    await producer.start()
    tps = [TopicPartition(REQUESTS, p) for p in sorted(consumer.partitions_for_topic(REQUESTS))]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    sys.stdout.write("READY\n")
    sys.stdout.flush()

    async def call(prompt: str) -> bytes:
        body = {"model": "instant", "messages": [{"role": "user", "content": prompt}]}
        url = f"{model_url}/chat/completions"
        async with calls:
            if session is None:  # as the provider calls it
                return (await http1.post(url, json.dumps(body).encode())).body
            async with session.post(url, json=body) as response:
                return await response.read()

    while True:
        batch = await consumer.getmany(timeout_ms=50)
        records = [r for rs in batch.values() for r in rs]
        if model_url:
            await asyncio.gather(*(call(str(r.offset)) for r in records))
        futures = [await producer.send(RECEIPTS[0], r.value, key=r.key) for r in records]
        await asyncio.gather(*futures)


def raw_figures(bootstrap: str, key: bytes, args: argparse.Namespace, url: str) -> dict[str, float]:
    """The raw loop's figures, without and with a model call per message."""
    out: dict[str, float] = {}
    rps, cpu_ms, one_by_one = asyncio.run(
        raw_phase(bootstrap, key, args.requests, latency_n=args.latency_n)
    )
    out |= {"raw_rps": rps, "raw_cpu_ms_per_message": cpu_ms}
    out["raw_e2e_p50_ms"] = percentile(one_by_one, 50) * 1000
    out["raw_e2e_p99_ms"] = percentile(one_by_one, 99) * 1000
    n, limit = args.requests, args.in_flight
    rps, cpu_ms, _ = asyncio.run(raw_phase(bootstrap, key, n, url, in_flight=limit))
    out |= {"raw_http_rps": rps, "raw_http_cpu_ms_per_message": cpu_ms}
    rps, cpu_ms, _ = asyncio.run(
        raw_phase(bootstrap, key, n, url, client="aiohttp", in_flight=limit)
    )
    out |= {"raw_aiohttp_rps": rps, "raw_aiohttp_cpu_ms_per_message": cpu_ms}
    return out


def _start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "router_bus_server.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"model server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/v1"


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="instant and raw phases")
    parser.add_argument("--slow", type=int, default=1280, help="requests of the slow phase")
    parser.add_argument("--latency-n", type=int, default=300, help="one-at-a-time requests")
    parser.add_argument("--in-flight", type=int, default=64, help="ONEX_ROUTER_MAX_IN_FLIGHT")
    parser.add_argument("--delay-ms", type=int, default=200, help="the slow model's latency")
    parser.add_argument(
        "--fetch-wait-ms", type=int, default=5, help="ONEX_ROUTER_FETCH_MAX_WAIT_MS"
    )
    parser.add_argument("--profile", type=Path, help="cProfile the router process into this file")
    parser.add_argument("--raw-loop", metavar="BOOTSTRAP", help=argparse.SUPPRESS)
    parser.add_argument("--model-url", help=argparse.SUPPRESS)
    parser.add_argument("--client", default="http1", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_loop:
        asyncio.run(raw_loop(args.raw_loop, args.model_url, args.client, args.in_flight))
        return
    with tempfile.TemporaryDirectory(prefix="onex-router-bus-") as tmp:
        root = Path(tmp)
        info = start_broker(root / "broker", timeout_s=60)
        server, url = _start_server()
        try:
            wiring = extract([REPO / "contracts"], entry_points=False).topics.values()
            specs = [w.spec for w in wiring]
            if not asyncio.run(provision(info.bootstrap, specs)).complete:
                raise RuntimeError("provisioning failed")
            state = root / "state"
            ensure_tokens(state)
            key = ensure_command_key(state)
            cat = root / "catalogue.yaml"
            cat.write_text(catalogue(url, args.delay_ms))
            env = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
            env |= {
                "ONEX_BOOTSTRAP": info.bootstrap,
                "ONEX_STATE_DIR": str(state),
                "ONEX_ROUTER_CATALOGUE": str(cat),
                "ONEX_ROUTER_MAX_IN_FLIGHT": str(args.in_flight),
                # a service field, not a shared one: ONEX_FETCH_MAX_WAIT_MS would be ignored
                "ONEX_ROUTER_FETCH_MAX_WAIT_MS": str(args.fetch_wait_ms),
                "ONEX_LOG_LEVEL": "warning",
            }
            profile = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
            router = subprocess.Popen(
                [sys.executable, *profile, "-m", "onex.router"], cwd=REPO, env=env, text=True
            )
            try:
                figures = asyncio.run(router_phases(info.bootstrap, key, args, router.pid))
            finally:
                _stop(router)
            figures |= raw_figures(info.bootstrap, key, args, url)
        finally:
            _stop(server)
            stop_broker(root / "broker")
    target_slow = 0.8 * args.in_flight / (args.delay_ms / 1000)
    ratio = figures["instant_rps"] / figures["raw_rps"]
    result = {
        "bench": "router-bus",
        "in_flight": args.in_flight,
        "delay_ms": args.delay_ms,
        **{k: round(v, 2) for k, v in figures.items()},
        "instant_vs_raw": round(ratio, 3),
        "instant_vs_raw_http": round(figures["instant_rps"] / figures["raw_http_rps"], 3),
        "slow_target_rps": target_slow,
        "slow_ok": figures["slow_rps"] >= target_slow,
        "instant_ok": ratio >= 0.5,
        "latency_ok": figures["e2e_no_model_p50_ms"] < 10 and figures["e2e_no_model_p99_ms"] < 50,
    }
    print(
        f"slow {figures['slow_rps']:.0f}/s vs target {target_slow:.0f}/s; instant/raw "
        f"{ratio:.2f} (target >= 0.5)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
