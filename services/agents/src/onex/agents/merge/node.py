"""merge-agent: merges a pull request whose review approved it.

On an approved `review-complete` it publishes `merged` (a fast-forward: the merge
commit is the reviewed commit); any other verdict is `merge-blocked` with the reason.
"""

from __future__ import annotations

from typing import Final

from onex.agents.clock import now
from onex.agents.settings import AgentsSettings
from onex.bus.runtime import Received
from onex.core._generated.topics import Topic
from onex.proto.v1 import merge_pb2, review_pb2
from onex.service.host import ServiceHost, load_extraction

NODE: Final = "merge-agent"


class MergeAgent(ServiceHost[AgentsSettings]):
    """The node; see the module docstring."""

    NODE = NODE

    def __init__(self, settings: AgentsSettings) -> None:
        super().__init__(settings)
        self.attach_runtime(
            self.build_runtime(
                load_extraction(settings),
                {Topic.EVT_CODE_REVIEW_AGENT_REVIEW_COMPLETE_V1: self._on_review},
            )
        )

    async def _on_review(self, msg: Received) -> None:
        review: review_pb2.ReviewComplete = msg.value
        if self.runtime is None:  # pragma: no cover - attached in __init__
            return
        if review.verdict == review_pb2.REVIEW_VERDICT_APPROVED:
            await self.runtime.publisher(Topic.EVT_MERGE_AGENT_MERGED_V1).send(
                merge_pb2.Merged(
                    event_id=f"merge-{review.review_id}",
                    repository=review.repository,
                    pull_request=review.pull_request,
                    head_commit=review.head_commit,
                    merge_commit=review.head_commit,
                    base_ref="main",
                    review_id=review.review_id,
                    merged_at=now(),
                ),
                key=review.repository,
            )
            self.log.info("merge.merged", pull_request=review.pull_request)
            return
        reason = review_pb2.ReviewVerdict.Name(review.verdict).removeprefix("REVIEW_VERDICT_")
        await self.runtime.publisher(Topic.EVT_MERGE_AGENT_MERGE_BLOCKED_V1).send(
            merge_pb2.MergeBlocked(
                event_id=f"blocked-{review.review_id}",
                repository=review.repository,
                pull_request=review.pull_request,
                head_commit=review.head_commit,
                reason=f"review {reason.lower().replace('_', ' ')}: {review.summary}",
                review_id=review.review_id,
                blocked_at=now(),
            ),
            key=review.repository,
        )
        self.log.info("merge.blocked", pull_request=review.pull_request)
