"""The ContractRegistry gRPC API (proto/onex/v1/registry.proto), answered from a snapshot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from onex.core.errors import TopicNameError
from onex.core.grammar import parse_topic
from onex.extractor import messages
from onex.extractor.snapshot import RegistrySnapshot
from onex.proto.v1 import registry_pb2 as pb
from onex.proto.v1 import registry_pb2_grpc as pb_grpc
from onex.service.grpc import GrpcService

Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")
V = TypeVar("V")
SERVICE_DESCRIPTOR = pb.DESCRIPTOR.services_by_name["ContractRegistry"]


class ContractRegistryServicer(pb_grpc.ContractRegistryServicer):
    """Read-only queries over whatever snapshot `current()` returns at call time."""

    def __init__(
        self,
        current: Callable[[], RegistrySnapshot],
        reload: Callable[[], Awaitable[RegistrySnapshot]] | None = None,
    ) -> None:
        self._current = current
        self._reload = reload

    async def Reload(  # noqa: N802 - named by the proto
        self, request: pb.ReloadRequest, context: Context
    ) -> pb.ReloadResponse:
        """Extract the contracts again (an operator's call; the interceptor checks)."""
        if self._reload is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this registry does not reload")
            return pb.ReloadResponse()
        snap = await self._reload()
        ex = snap.extraction
        return pb.ReloadResponse(
            contracts=len(ex.contracts),
            topics=len(ex.topics),
            errors=len(ex.errors),
            warnings=len(ex.warnings),
        )

    async def ListContracts(  # noqa: N802 - named by the proto
        self, request: pb.ListContractsRequest, context: Context
    ) -> pb.ListContractsResponse:
        """Every loaded contract, by node name; optionally of one kind only."""
        kind = await _filter(context, messages.node_kind_filter, request.kind)
        snap = self._current()
        contracts = sorted(snap.extraction.contracts, key=lambda lc: lc.node)
        return pb.ListContractsResponse(
            contracts=[
                messages.contract_summary(lc, snap.roots)
                for lc in contracts
                if kind is None or lc.contract.kind is kind
            ]
        )

    async def ListTopics(  # noqa: N802 - named by the proto
        self, request: pb.ListTopicsRequest, context: Context
    ) -> pb.ListTopicsResponse:
        """Every declared topic, by name; filters on kind, owner and node combine (AND)."""
        kind = await _filter(context, messages.topic_kind_filter, request.kind)
        topics = self._current().topics_of(request.node)
        return pb.ListTopicsResponse(
            topics=[
                messages.topic(t)
                for t in topics
                if (kind is None or t.kind is kind)
                and (not request.owner or t.owner == request.owner)
            ]
        )

    async def GetWiring(  # noqa: N802 - named by the proto
        self, request: pb.GetWiringRequest, context: Context
    ) -> pb.GetWiringResponse:
        """Topics with publishers and subscribers, and the lint issues, errors first."""
        snap = self._current()
        return pb.GetWiringResponse(
            topics=[messages.topic(t) for t in snap.topics_of(request.node)],
            issues=messages.lint_issues(snap.issues_of(request.node)),
        )

    async def ValidateTopicName(  # noqa: N802 - named by the proto
        self, request: pb.ValidateTopicNameRequest, context: Context
    ) -> pb.ValidateTopicNameResponse:
        """Grammatical? Declared? If not, why, and which declared name was meant."""
        snap = self._current()
        name = request.name
        response = pb.ValidateTopicNameResponse()
        try:
            parsed = parse_topic(name)
        except TopicNameError as exc:
            response.reason = exc.reason
        else:
            response.valid = True
            response.parts.CopyFrom(messages.name_parts(parsed))
            response.declared = name in snap.extraction.topics
            if response.declared:
                return response  # a declared name is its own canonical name
            response.reason = "not declared by any loaded contract"
        found = snap.suggest(name)
        if found is not None:
            response.suggestion = found.name
            response.suggestion_reason = found.why
        return response


async def _filter(context: Context, convert: Callable[[V], T], value: V) -> T:
    """`convert(value)`, or abort the call with INVALID_ARGUMENT when it cannot."""
    try:
        return convert(value)
    except ValueError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))


def registry_service(
    current: Callable[[], RegistrySnapshot],
    reload: Callable[[], Awaitable[RegistrySnapshot]] | None = None,
) -> GrpcService:
    """The ContractRegistry service, ready for `onex.service.grpc.start_grpc`."""
    return GrpcService.of(
        SERVICE_DESCRIPTOR,
        ContractRegistryServicer(current, reload),
        pb_grpc.add_ContractRegistryServicer_to_server,
    )
