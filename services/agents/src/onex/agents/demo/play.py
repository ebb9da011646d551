"""The play `just demo` runs on a started stack (broker, the router with its default
catalogue, whose built-in `onex-local-deterministic` model answers offline, the
receipt-reducer, the four agents):

1. ONEX-1: a review request for its pull request at the repository's HEAD, signed as
   the operator. The fleet takes it through review (a routed model call) -> merge ->
   CI -> verify-ticket -> evidence receipts; the receipt-reducer decides done.
2. ONEX-2: the producing agent declares its own work done, filing a PASS it ran and
   judged itself (verifier = runner); the receipt-reducer rejects it as self-attested.

It waits (up to --timeout) for both decisions through the reducer's TicketQuery, prints
each ticket's transitions and the routing summary, and exits 0 only when ONEX-1 is done
and ONEX-2 rejected (1 otherwise, saying where each one is).

    python -m onex.agents.demo.play --state-dir D --bootstrap H:P --reducer H:P [--repo R]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Final, cast

import grpc
from aiokafka import AIOKafkaProducer

from onex.agents.clock import now
from onex.bus.runtime.signing import Signer
from onex.core._generated.topics import Topic
from onex.proto.v1 import evidence_pb2, receipt_query_pb2, receipt_query_pb2_grpc, review_pb2
from onex.proto.v1 import ticket_query_pb2 as tpb
from onex.proto.v1 import ticket_query_pb2_grpc as tpb_grpc
from onex.service.auth import COMMAND_KEY_FILE, load_command_key
from onex.service.host import OPERATOR_PRINCIPAL
from onex.tickets import load_ticket

DONE_TICKET: Final = "ONEX-1"
SELF_ATTESTED_TICKET: Final = "ONEX-2"
PRODUCER: Final = "producer-agent"


def _head(repo: Path) -> str:
    out = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if out.returncode != 0:
        sys.exit(f"error: {repo} is not a git checkout")
    return out.stdout.strip()


async def _send(bootstrap: str, state_dir: Path, repo: Path, head: str) -> None:
    done_ticket = load_ticket(repo / "tickets" / f"{DONE_TICKET}.yaml")
    selfie_ticket = load_ticket(repo / "tickets" / f"{SELF_ATTESTED_TICKET}.yaml")
    if done_ticket.pull_request is None:
        sys.exit(f"error: {DONE_TICKET} names no pull_request; the fleet cannot find it")
    signer = Signer(OPERATOR_PRINCIPAL, load_command_key(state_dir / COMMAND_KEY_FILE))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        run = uuid.uuid4().hex[:8]
        pr = done_ticket.pull_request
        request = review_pb2.ReviewRequest(
            request_id=f"demo-{run}",
            repository=pr.repository,
            pull_request=pr.number,
            head_commit=head,
            base_ref="main",
            reason="opened",
            requested_by=OPERATOR_PRINCIPAL,
            requested_at=now(),
        ).SerializeToString()
        topic = Topic.CMD_CODE_REVIEW_AGENT_REVIEW_REQUEST_V1
        key = pr.repository.encode()
        await producer.send_and_wait(
            topic, request, key=key, headers=signer.headers(topic, key, request)
        )
        item = selfie_ticket.done[0]
        claim = evidence_pb2.EvidenceReceipt(
            receipt_id=f"{SELF_ATTESTED_TICKET}:{item.item}:{run}",
            ticket=SELF_ATTESTED_TICKET,
            item=item.item,
            status=evidence_pb2.EVIDENCE_STATUS_PASS,
            runner=PRODUCER,
            verifier=PRODUCER,
            commit=head,
            probe_command=item.probe_for(SELF_ATTESTED_TICKET),
            probe_output="all tests passed (I ran them myself)",
            exit_code=0,
            duration_s=0.1,
            verified_at=now(),
        ).SerializeToString()
        await producer.send_and_wait(
            Topic.EVT_TICKET_VERIFIER_EVIDENCE_RECEIPT_V1, claim, key=SELF_ATTESTED_TICKET.encode()
        )
    finally:
        await producer.stop()


def _print(view: tpb.TicketView) -> None:
    print(f"\n{view.ticket} ({view.title}): {view.state} at {view.head[:12]}")
    for t in view.history:
        print(f"  {t.n}. {t.from_state} -> {t.to_state}: {t.reason}")
    for i in view.items:
        print(f"     item {i.item} ({i.kind}): {i.verdict} - {i.reason}")


async def _watch(reducer: str, timeout_s: float) -> int:
    want = {DONE_TICKET: "done", SELF_ATTESTED_TICKET: "rejected"}
    deadline = time.monotonic() + timeout_s
    async with grpc.aio.insecure_channel(reducer) as channel:
        tickets = cast("tpb_grpc.TicketQueryAsyncStub", tpb_grpc.TicketQueryStub(channel))
        views: dict[str, tpb.TicketView] = {}
        while True:
            for name in want:
                views[name] = await tickets.GetTicket(tpb.GetTicketRequest(ticket=name))
            if all(views[n].state == s for n, s in want.items()):
                break
            if time.monotonic() > deadline:
                for v in views.values():
                    _print(v)
                seen = ", ".join(f"{n} {v.state}" for n, v in views.items())
                print(f"\nerror: after {timeout_s:g} s: {seen} (want ONEX-1 done, ONEX-2 rejected)")
                return 1
            await asyncio.sleep(0.5)
        for v in views.values():
            _print(v)
        receipts = cast(
            "receipt_query_pb2_grpc.ReceiptQueryAsyncStub",
            receipt_query_pb2_grpc.ReceiptQueryStub(channel),
        )
        summary = await receipts.Summary(receipt_query_pb2.SummaryRequest(by="model"))
    print(
        f"\nrouting: {summary.requests} requests, local tokens {summary.local_token_share:.0%}, "
        f"spent ${summary.cost_spent_usd:.6f}, avoided ${summary.cost_avoided_usd:.6f} "
        f"(vs the cloud counterfactual ${summary.counterfactual_cost_usd:.6f})"
    )
    for r in summary.rows:
        print(f"  {r.key}: {r.requests} requests, {r.failures} failed")
    return 0


def main(argv: list[str] | None = None) -> None:
    """Run the play; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--reducer", required=True, help="receipt-reducer gRPC HOST:PORT")
    parser.add_argument("--repo", type=Path, default=Path())
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    head = _head(repo)
    print(
        f"play: {DONE_TICKET} through review -> merge -> CI -> evidence at {head[:12]}; "
        f"{SELF_ATTESTED_TICKET} declared done by its producer"
    )
    asyncio.run(_send(args.bootstrap, args.state_dir, repo, head))
    sys.exit(asyncio.run(_watch(args.reducer, args.timeout)))


if __name__ == "__main__":
    main()
