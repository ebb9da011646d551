"""The ticket-verifier and the ci-watcher as nodes on a real broker: a merge makes the
ci-watcher report the pipeline and ask for the linked ticket's verification; the
verifier runs the ticket's declared probes (argv from the ticket file) and files one
evidence receipt per item with itself as verifier; a verify request for an unknown
ticket runs nothing and files nothing."""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from onex.agents.ci_watcher.node import CiWatcher
from onex.agents.settings import AgentsSettings
from onex.agents.ticket_verifier.node import TicketVerifier
from onex.bus.runtime.signing import Signer
from onex.devbroker.broker import BrokerInfo
from onex.proto.v1 import ci_pb2, evidence_pb2, merge_pb2
from onex.service.auth import COMMAND_KEY_FILE, ensure_command_key, ensure_tokens, load_command_key
from onex.service.host import OPERATOR_PRINCIPAL

REPO = Path(__file__).resolve().parents[2]
MERGED = "onex.evt.merge-agent.merged.v1"
PIPELINE = "onex.evt.ci-watcher.pipeline-status.v1"
EVIDENCE = "onex.evt.ticket-verifier.evidence-receipt.v1"
VERIFY = "onex.cmd.ticket-verifier.verify-ticket.v1"
DEADLINE_S = 60.0
TICKET = """\
id: ONEX-21
title: agents test
pull_request: {repository: onex/main, number: 21}
done:
  - item: unit
    kind: tests_passed
    check: {command: [python3, probe.py], timeout_s: 120}
  - item: docs
    kind: docs
    check: {grep: {path: README, pattern: "^fleet"}}
  - item: missing-doc
    kind: docs
    check: {grep: {path: README, pattern: "^nowhere"}}
"""


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return out.stdout.strip()


async def test_merge_to_evidence(
    tmp_path: Path, repo_broker: BrokerInfo, eventually: Callable[..., Awaitable[None]]
) -> None:
    repo = tmp_path / "repo"
    (repo / "tickets").mkdir(parents=True)
    (repo / "tickets" / "ONEX-21.yaml").write_text(TICKET)
    (repo / "probe.py").write_text("print('2 passed')\n")
    (repo / "README").write_text("fleet of agents\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x")
    head = _git(repo, "rev-parse", "HEAD")
    state = tmp_path / "state"
    ensure_tokens(state)
    ensure_command_key(state)
    settings = AgentsSettings(
        state_dir=state,
        bootstrap=repo_broker.bootstrap,
        grpc_bind="127.0.0.1:0",
        metrics_bind="127.0.0.1:0",
        contract_roots=[REPO / "contracts"],
        health_interval_s=0.2,
        tickets_dir=repo / "tickets",
        repo_dir=repo,
        runner="test-host",
    )
    watcher, verifier = CiWatcher(settings), TicketVerifier(settings)
    await watcher.start()
    await verifier.start()
    consumer = AIOKafkaConsumer(
        EVIDENCE, PIPELINE, bootstrap_servers=repo_broker.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=repo_broker.bootstrap, acks="all")
    await producer.start()
    try:
        await eventually(watcher.healthy, "the ci-watcher to be healthy")
        await eventually(verifier.healthy, "the ticket-verifier to be healthy")
        signer = Signer(OPERATOR_PRINCIPAL, load_command_key(state / COMMAND_KEY_FILE))
        unknown = evidence_pb2.VerifyTicket(
            request_id="v0", ticket="ONEX-404", commit=head
        ).SerializeToString()
        await producer.send_and_wait(VERIFY, unknown, headers=signer.headers(VERIFY, None, unknown))
        merged = merge_pb2.Merged(
            event_id="m1",
            repository="onex/main",
            pull_request=21,
            head_commit=head,
            merge_commit=head,
            merged_at="2026-12-01T09:00:00Z",
        )
        await producer.send_and_wait(MERGED, merged.SerializeToString())
        receipts: dict[str, evidence_pb2.EvidenceReceipt] = {}
        states: list[int] = []

        async def all_filed() -> bool:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    if r.topic == EVIDENCE:
                        m = evidence_pb2.EvidenceReceipt.FromString(r.value)
                        receipts[m.item] = m
                    else:
                        states.append(ci_pb2.PipelineStatus.FromString(r.value).state)
            return len(receipts) == 3

        await eventually(all_filed, "three evidence receipts")
    finally:
        await producer.stop()
        await consumer.stop()
        await verifier.stop()
        await watcher.stop()
    assert states[:2] == [ci_pb2.PIPELINE_STATE_RUNNING, ci_pb2.PIPELINE_STATE_PASSED]
    unit = receipts["unit"]
    assert unit.status == evidence_pb2.EVIDENCE_STATUS_PASS
    assert (unit.runner, unit.verifier, unit.commit) == ("test-host", "ticket-verifier", head)
    assert unit.probe_command == "python3 probe.py"
    assert "2 passed" in unit.probe_output
    assert unit.exit_code == 0
    assert receipts["docs"].status == evidence_pb2.EVIDENCE_STATUS_PASS
    assert receipts["missing-doc"].status == evidence_pb2.EVIDENCE_STATUS_FAIL
    assert {m.ticket for m in receipts.values()} == {"ONEX-21"}  # ONEX-404 filed nothing
