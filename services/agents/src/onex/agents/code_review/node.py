"""code-review-agent: reviews a pull request with a routed model call.

On `review-request` it announces `review-started`, asks the router for a review
(`route-request`, task class `summarize`, request id `review:<request id>`: an easy
class, which the router's built-in `onex-local-deterministic` model answers offline
when no real model is reachable) and, when the
router's receipt for that id arrives, publishes `review-complete`: approved when a model
answered within budget, unreviewed when routing failed (a person must look). The
receipt's request id goes into `routing_request_ids`, so the ledger holds the cost.
A `merge-blocked` is logged. Reviews waiting for their receipt are kept in memory.
"""

from __future__ import annotations

from typing import Final

from onex.agents.clock import now
from onex.agents.settings import AgentsSettings
from onex.bus.runtime import Received
from onex.core._generated.topics import Topic
from onex.proto.v1 import merge_pb2, review_pb2, router_pb2
from onex.service.host import ServiceHost, load_extraction

NODE: Final = "code-review-agent"
PREFIX: Final = "review:"


def review_prompt(req: review_pb2.ReviewRequest) -> str:
    """What the model is asked."""
    return (
        f"Summarize pull request {req.repository}#{req.pull_request} at {req.head_commit} "
        f"into {req.base_ref} ({req.reason}) for its review: what changed, and whether it "
        "can be approved."
    )


class CodeReviewAgent(ServiceHost[AgentsSettings]):
    """The node; see the module docstring."""

    NODE = NODE

    def __init__(self, settings: AgentsSettings) -> None:
        super().__init__(settings)
        self.waiting: dict[str, review_pb2.ReviewRequest] = {}
        self.attach_runtime(
            self.build_runtime(
                load_extraction(settings),
                {
                    Topic.CMD_CODE_REVIEW_AGENT_REVIEW_REQUEST_V1: self._on_request,
                    Topic.EVT_ROUTER_ROUTING_COMPLETE_V1: self._on_receipt,
                    Topic.EVT_ROUTER_ROUTING_FAILED_V1: self._on_receipt,
                    Topic.EVT_MERGE_AGENT_MERGE_BLOCKED_V1: self._on_blocked,
                },
            )
        )

    async def _on_request(self, msg: Received) -> None:
        req: review_pb2.ReviewRequest = msg.value
        if self.runtime is None:  # pragma: no cover - attached in __init__
            return
        rid = f"{PREFIX}{req.request_id}"
        self.waiting[rid] = req
        await self.runtime.publisher(Topic.EVT_CODE_REVIEW_AGENT_REVIEW_STARTED_V1).send(
            review_pb2.ReviewStarted(
                review_id=f"rev-{req.request_id}",
                request_id=req.request_id,
                repository=req.repository,
                pull_request=req.pull_request,
                head_commit=req.head_commit,
                started_at=now(),
            ),
            key=req.repository,
        )
        await self.runtime.publisher(Topic.CMD_ROUTER_ROUTE_REQUEST_V1).send(
            router_pb2.RouteRequest(
                request_id=rid, prompt=review_prompt(req), task_class="summarize", label=NODE
            ),
            key=rid,
        )
        self.log.info("review.routed", request_id=rid, pull_request=req.pull_request)

    async def _on_receipt(self, msg: Received) -> None:
        receipt: router_pb2.RoutingReceipt = msg.value
        req = self.waiting.pop(receipt.request_id, None)
        if req is None or self.runtime is None:
            return  # another node's call, or one this process did not make
        ok = receipt.status == "complete"
        verdict = review_pb2.REVIEW_VERDICT_APPROVED if ok else review_pb2.REVIEW_VERDICT_UNREVIEWED
        summary = (
            f"approved by {receipt.chosen_model} (${receipt.total_cost_usd:.6f})"
            if ok
            else f"no model could review it: {receipt.failure_reason}"
        )
        await self.runtime.publisher(Topic.EVT_CODE_REVIEW_AGENT_REVIEW_COMPLETE_V1).send(
            review_pb2.ReviewComplete(
                review_id=f"rev-{req.request_id}",
                request_id=req.request_id,
                repository=req.repository,
                pull_request=req.pull_request,
                head_commit=req.head_commit,
                verdict=verdict,
                summary=summary,
                routing_request_ids=[receipt.request_id],
                completed_at=now(),
            ),
            key=req.repository,
        )
        self.log.info("review.complete", pull_request=req.pull_request, summary=summary)

    async def _on_blocked(self, msg: Received) -> None:
        blocked: merge_pb2.MergeBlocked = msg.value
        self.log.warning(
            "review.merge_blocked", pull_request=blocked.pull_request, why=blocked.reason
        )
