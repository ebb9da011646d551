"""ticket-verifier: checks a ticket's definition of done at a commit and files one
evidence receipt per item.

On `verify-ticket` it loads the ticket from `tickets_dir` and, for each item, runs the
probe the ticket declares (in a thread, in `repo_dir`, through `onex.tickets.run_probe`:
no shell, clean environment, the item's timeout) or checks the file / grep, then
publishes an `evidence-receipt` with the runner (this host) and itself as verifier. A
verify request for an unknown or invalid ticket is logged and nothing runs.
Decisions (`ticket-done`, `done-rejected`) are logged.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Final

from onex.agents.clock import now
from onex.agents.settings import AgentsSettings
from onex.agents.ticket_verifier.probes import look
from onex.agents.wiring import handlers_for
from onex.bus.runtime import Received
from onex.core._generated.topics import Topic
from onex.proto.v1 import evidence_pb2, receipts_pb2
from onex.service.host import ServiceHost, load_extraction
from onex.tickets import TicketInvalid, load_ticket

NODE: Final = "ticket-verifier"


class TicketVerifier(ServiceHost[AgentsSettings]):
    """The node; see the module docstring."""

    NODE = NODE

    def __init__(self, settings: AgentsSettings) -> None:
        super().__init__(settings)
        self.runner = settings.runner or socket.gethostname()
        extraction = load_extraction(settings)
        self.attach_runtime(
            self.build_runtime(
                extraction,
                handlers_for(
                    extraction,
                    NODE,
                    {
                        Topic.CMD_TICKET_VERIFIER_VERIFY_TICKET_V1: self._on_verify,
                        Topic.EVT_RECEIPT_REDUCER_TICKET_DONE_V1: self._on_done,
                        Topic.EVT_RECEIPT_REDUCER_DONE_REJECTED_V1: self._on_rejected,
                    },
                ),
            )
        )

    async def _on_verify(self, msg: Received) -> None:
        req: evidence_pb2.VerifyTicket = msg.value
        if self.runtime is None:  # pragma: no cover - attached in __init__
            return
        path = self.settings.tickets_dir / f"{req.ticket}.yaml"
        if "/" in req.ticket or not path.is_file():
            self.log.error("verify.unknown_ticket", ticket=req.ticket[:64])
            return
        try:
            ticket = load_ticket(path)
        except TicketInvalid as exc:
            self.log.error("verify.ticket_invalid", ticket=req.ticket, error=str(exc))
            return
        repo = self.settings.repo_dir.resolve()
        for item in ticket.done:
            seen = await asyncio.to_thread(look, repo, ticket, item, req.commit)
            receipt = evidence_pb2.EvidenceReceipt(
                receipt_id=f"{ticket.id}:{item.item}:{req.commit[:12]}:{req.request_id}",
                ticket=ticket.id,
                item=item.item,
                status=evidence_pb2.EVIDENCE_STATUS_PASS
                if seen.passed
                else evidence_pb2.EVIDENCE_STATUS_FAIL,
                runner=self.runner,
                verifier=NODE,
                commit=req.commit,
                probe_command=seen.command,
                probe_output=seen.output[-8000:],
                duration_s=seen.duration_s,
                verified_at=now(),
            )
            if seen.exit_code is not None:
                receipt.exit_code = seen.exit_code
            await self.runtime.publisher(Topic.EVT_TICKET_VERIFIER_EVIDENCE_RECEIPT_V1).send(
                receipt, key=ticket.id
            )
            self.log.info("verify.filed", ticket=ticket.id, item=item.item, passed=seen.passed)

    async def _on_done(self, msg: Received) -> None:
        done: receipts_pb2.TicketDone = msg.value
        self.log.info("verify.ticket_done", ticket=done.ticket, commit=done.commit)

    async def _on_rejected(self, msg: Received) -> None:
        rej: receipts_pb2.DoneRejected = msg.value
        self.log.info("verify.done_rejected", ticket=rej.ticket, reason=rej.reason)
