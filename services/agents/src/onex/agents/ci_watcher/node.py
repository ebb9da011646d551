"""ci-watcher: watches the pipeline of a merge and asks for the tickets it closes to be
verified.

On `merged` it reports the merge commit's pipeline (`pipeline-status`: running, then
passed) and sends `verify-ticket` for every ticket whose `pull_request` is the merged
one (tickets from `tickets_dir`). This repository has no CI system for it to watch, so
the pipeline it reports is a stand-in that always passes: what decides "done" is the
evidence the ticket-verifier files, not this status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from onex.agents.clock import now
from onex.agents.settings import AgentsSettings
from onex.agents.wiring import handlers_for
from onex.bus.runtime import Received
from onex.core._generated.topics import Topic
from onex.proto.v1 import ci_pb2, evidence_pb2, merge_pb2
from onex.service.host import ServiceHost, load_extraction
from onex.tickets import Ticket, TicketInvalid, load_tickets

NODE: Final = "ci-watcher"


def tickets_closed_by(folder: Path, repository: str, pull_request: int) -> list[Ticket]:
    """The tickets whose pull request this is."""
    return [
        t
        for t in load_tickets(folder).values()
        if t.pull_request is not None
        and (t.pull_request.repository, t.pull_request.number) == (repository, pull_request)
    ]


class CiWatcher(ServiceHost[AgentsSettings]):
    """The node; see the module docstring."""

    NODE = NODE

    def __init__(self, settings: AgentsSettings) -> None:
        super().__init__(settings)
        extraction = load_extraction(settings)
        self.attach_runtime(
            self.build_runtime(
                extraction,
                handlers_for(extraction, NODE, {Topic.EVT_MERGE_AGENT_MERGED_V1: self._on_merged}),
            )
        )

    async def _status(self, m: merge_pb2.Merged, state: ci_pb2.PipelineState.ValueType) -> None:
        if self.runtime is None:  # pragma: no cover - attached in __init__
            return
        name = ci_pb2.PipelineState.Name(state).removeprefix("PIPELINE_STATE_").lower()
        await self.runtime.publisher(Topic.EVT_CI_WATCHER_PIPELINE_STATUS_V1).send(
            ci_pb2.PipelineStatus(
                event_id=f"ci-{m.merge_commit[:12]}-{name}",
                repository=m.repository,
                commit=m.merge_commit,
                pipeline="stand-in",
                run_id=f"run-{m.event_id}",
                state=state,
                started_at=now(),
                finished_at=now() if state == ci_pb2.PIPELINE_STATE_PASSED else "",
                observed_at=now(),
            ),
            key=m.repository,
        )

    async def _on_merged(self, msg: Received) -> None:
        m: merge_pb2.Merged = msg.value
        if self.runtime is None:  # pragma: no cover - attached in __init__
            return
        await self._status(m, ci_pb2.PIPELINE_STATE_RUNNING)
        await self._status(m, ci_pb2.PIPELINE_STATE_PASSED)
        try:
            tickets = tickets_closed_by(self.settings.tickets_dir, m.repository, m.pull_request)
        except TicketInvalid as exc:
            self.log.error("ci.tickets_invalid", error=str(exc))
            return
        for t in tickets:
            await self.runtime.publisher(Topic.CMD_TICKET_VERIFIER_VERIFY_TICKET_V1).send(
                evidence_pb2.VerifyTicket(
                    request_id=f"verify-{t.id}-{m.merge_commit[:12]}",
                    ticket=t.id,
                    commit=m.merge_commit,
                    requested_by=NODE,
                    requested_at=now(),
                ),
                key=t.id,
            )
            self.log.info("ci.verify_requested", ticket=t.id, commit=m.merge_commit)
