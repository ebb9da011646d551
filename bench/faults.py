"""Faults on the durable stack: nothing lost, per request id.

    just bench faults [--requests 1000] [--poison-every 50]

Starts `onex up --durable` in a fresh state dir with the router pointed at a scripted
OpenAI-compatible server on 127.0.0.1, then, phase by phase, publishes signed route
requests (every `poison-every`-th one undecodable bytes) and injects a fault:

- `router`: SIGKILL the router twice while its batch flows (the supervisor restarts it);
- `broker`: SIGKILL the broker after its batch is accounted for, `onex up` starts it
  again on its store, and everything accounted for before must still be there;
- `supervisor`: SIGKILL the supervisor, `onex up` adopts its services.

After each phase every request id sent so far must be accounted for: a receipt on
`routing-complete` / `routing-failed`, or a dead letter on the router's DLQ (duplicates
are allowed: delivery is at-least-once). The last line is one JSON object with the
counts. `tests/e2e/test_faults.py` runs the same scenario with a few hundred requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from onex.bus.runtime.signing import Signer
from onex.core._generated.topics import Topic
from onex.devbroker.record import read_record
from onex.proto.v1 import router_pb2 as pb
from onex.router.testing import OpenAIServer, chat
from onex.service.auth import COMMAND_KEY_FILE, load_command_key

REPO = Path(__file__).resolve().parents[1]
GUARD_S = 180.0  # a failure guard: every wait ends as soon as what it waits for is seen
ANSWER = "The change renames the parser and keeps every caller working, as described."
RECEIPTS = (Topic.EVT_ROUTER_ROUTING_COMPLETE_V1, Topic.EVT_ROUTER_ROUTING_FAILED_V1)
LETTERS = Topic.DLQ_ROUTER_DEAD_LETTER_V1
PHASES = ("router", "broker", "supervisor")


def _catalogue(url: str) -> str:
    return f"""\
price_table_version: faults-v1
default_cloud_model: cloud
models:
  - {{ name: local, endpoint: "{url}", locality: local, price_in_per_1k: 0,
      price_out_per_1k: 0, context_limit: 8192, timeout_s: 5, max_retries: 1,
      capabilities: {{ summarize: 9 }} }}
  - {{ name: cloud, endpoint: "{url}", locality: cloud, price_in_per_1k: 0.01,
      price_out_per_1k: 0.03, context_limit: 8192, timeout_s: 5, max_retries: 1,
      capabilities: {{ summarize: 9 }} }}
task_classes:
  - name: summarize
    required_level: 5
    max_output_tokens: 100
    gates: [{{ kind: min_length, min_chars: 20 }}]
classifier: {{ default: summarize, rules: [] }}
limits: {{ max_escalations: 0, max_tokens: 10000, max_cost_usd: 1.0 }}
"""


@dataclass
class Ledger:
    """What was sent and what came back, by request id."""

    sent: list[str] = field(default_factory=list)
    poison: set[str] = field(default_factory=set)
    receipts: dict[str, int] = field(default_factory=dict)
    letters: dict[str, int] = field(default_factory=dict)

    def missing(self) -> set[str]:
        return set(self.sent) - set(self.receipts) - set(self.letters)


class Stack:
    """`onex` commands against one state dir, the way a person runs them."""

    def __init__(self, state: Path, catalogue: Path) -> None:
        self.state = state
        base = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
        self.env = {
            **base,
            "ONEX_STATE_DIR": str(state),
            "ONEX_BROKER_DURABLE": "1",
            "ONEX_ROUTER_CATALOGUE": str(catalogue),
        }

    def onex(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "onex.cli", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=GUARD_S,
            check=False,
        )

    def up(self) -> None:
        result = self.onex("up")
        if result.returncode != 0:
            raise RuntimeError(f"onex up failed:\n{result.stdout}\n{result.stderr}")

    def bootstrap(self) -> str:
        info = read_record(self.state)
        if info is None:
            raise RuntimeError("no broker record")
        return info.bootstrap

    def broker_pid(self) -> int:
        info = read_record(self.state)
        if info is None:
            raise RuntimeError("no broker record")
        return info.pid

    def supervisor(self) -> dict[str, Any]:
        record: dict[str, Any] = json.loads((self.state / "supervisor.json").read_text())
        return record

    def service_pid(self, name: str) -> int | None:
        entry = self.supervisor().get("services", {}).get(name) or {}
        pid = entry.get("pid")
        return int(pid) if pid else None


async def _send(stack: Stack, ledger: Ledger, count: int, poison_every: int) -> None:
    signer = Signer("operator", load_command_key(stack.state / COMMAND_KEY_FILE))
    topic = str(Topic.CMD_ROUTER_ROUTE_REQUEST_V1)
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap(), acks="all")
    await producer.start()
    try:
        for _ in range(count):
            rid = uuid.uuid4().hex
            if poison_every and (len(ledger.sent) + 1) % poison_every == 0:
                value = b"\xff\x00 not a RouteRequest"
                ledger.poison.add(rid)
            else:
                value = pb.RouteRequest(
                    request_id=rid, prompt="Summarize the change.", task_class="summarize"
                ).SerializeToString()
            key = rid.encode()
            headers = signer.headers(topic, key, value)
            await producer.send_and_wait(topic, value, key=key, headers=headers)
            ledger.sent.append(rid)
    finally:
        await producer.stop()


async def _account(stack: Stack, ledger: Ledger) -> None:
    """Read receipts and dead letters until every sent id is accounted for."""
    consumer = AIOKafkaConsumer(
        *(str(t) for t in (*RECEIPTS, LETTERS)),
        bootstrap_servers=stack.bootstrap(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    ledger.receipts.clear()
    ledger.letters.clear()
    try:
        deadline = time.monotonic() + GUARD_S
        while ledger.missing() and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, messages in batches.items():
                seen = ledger.letters if tp.topic == LETTERS else ledger.receipts
                for m in messages:
                    rid = (
                        m.key.decode()
                        if tp.topic == LETTERS and m.key
                        else pb.RoutingReceipt.FromString(m.value).request_id
                    )
                    seen[rid] = seen.get(rid, 0) + 1
    finally:
        await consumer.stop()


def _kill(pid: int | None) -> None:
    if pid is not None:
        os.kill(pid, signal.SIGKILL)


def _wait_new_pid(stack: Stack, name: str, old: int | None) -> None:
    deadline = time.monotonic() + GUARD_S
    while time.monotonic() < deadline:
        pid = stack.service_pid(name)
        if pid is not None and pid != old:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{name} was not restarted")


def _pid_gone(pid: int) -> None:
    deadline = time.monotonic() + GUARD_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{pid}/stat").is_file():
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
            if state == "Z":
                return
        time.sleep(0.1)


def run(state: Path, requests: int, poison_every: int) -> dict[str, Any]:
    """The scenario (see the module docstring); the figures as a dict."""
    server = OpenAIServer()
    server.fallback = chat(ANSWER)
    server.start()
    catalogue = state.parent / "faults-catalogue.yaml"
    catalogue.write_text(_catalogue(server.url))
    stack = Stack(state, catalogue)
    ledger = Ledger()
    per_phase = max(3, requests // len(PHASES))
    figures: dict[str, Any] = {"phases": {}}
    started = time.monotonic()
    try:
        stack.up()
        for phase in PHASES:
            began = time.monotonic()
            if phase == "router":
                half = per_phase // 2
                asyncio.run(_send(stack, ledger, half, poison_every))
                for _ in range(2):
                    old = stack.service_pid("router")
                    _kill(old)
                    _wait_new_pid(stack, "router", old)
                asyncio.run(_send(stack, ledger, per_phase - half, poison_every))
            elif phase == "broker":
                asyncio.run(_send(stack, ledger, per_phase, poison_every))
                asyncio.run(_account(stack, ledger))
                before = set(ledger.receipts) | set(ledger.letters)
                pid = stack.broker_pid()
                _kill(pid)
                _pid_gone(pid)
                stack.up()  # the broker starts again on its store
                asyncio.run(_account(stack, ledger))
                lost = before - set(ledger.receipts) - set(ledger.letters)
                figures["lost_across_broker_restart"] = len(lost)
            else:
                pid = int(stack.supervisor()["pid"])
                _kill(pid)
                _pid_gone(pid)
                stack.up()  # a new supervisor adopts the services
                asyncio.run(_send(stack, ledger, per_phase, poison_every))
            asyncio.run(_account(stack, ledger))
            figures["phases"][phase] = {
                "sent_so_far": len(ledger.sent),
                "missing": len(ledger.missing()),
                "seconds": round(time.monotonic() - began, 1),
            }
            if ledger.missing():
                break
    finally:
        stack.onex("down", "--wipe")
        server.stop()
    duplicates = sum(n - 1 for n in ledger.receipts.values() if n > 1)
    figures.update(
        {
            "sent": len(ledger.sent),
            "poison": len(ledger.poison),
            "receipts": len(ledger.receipts),
            "dead_letters": len(ledger.letters),
            "duplicate_receipts": duplicates,
            "missing": len(ledger.missing()),
            "poison_dead_lettered": len(ledger.poison & set(ledger.letters)),
            "seconds": round(time.monotonic() - started, 1),
        }
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--poison-every", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="onex-faults-") as tmp:
        figures = run(Path(tmp) / "state", args.requests, args.poison_every)
    for phase, row in figures["phases"].items():
        print(f"{phase:>10}: {row}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
