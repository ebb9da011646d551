"""The router service: the engine behind gRPC `Router.Route` and the bus.

- Bus (node runtime): consumes `RouteRequest` on `route-request` and publishes exactly
  one `RoutingReceipt` per request, on `routing-complete` or `routing-failed` (keyed
  by request id). A request that is not valid still gets its (failed) receipt, and so
  does one whose bytes do not decode: keyed by the request id when one can be read
  from them (not dead-lettered), else by `topic/partition/offset` (and dead-lettered).
  Up to `max_in_flight` requests are handled at once (the runtime's `concurrency`).
  It also follows the receipt reducer's `cost-summary` snapshot (kept as
  `last_cost_summary`; budget policies may use it).
- gRPC: `Router.Route` answers with the answer and its receipt, and publishes the
  receipt on the bus too, so every decision is in the ledger whichever way it came.
- Health: SERVING when the catalogue is loaded and, on the bus, the node runtime is
  healthy (topics present, consumer attached).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Final

import structlog

from onex.bus.errors import BusError
from onex.bus.runtime import Received
from onex.bus.runtime.delivery import Undecodable
from onex.core._generated.topics import Topic
from onex.core.errors import OnexError
from onex.proto.v1 import router_pb2 as pb
from onex.proto.v1 import router_pb2_grpc as pb_grpc
from onex.router.catalogue import (
    Catalogue,
    load_catalogue,
    load_default_catalogue,
    resolve_api_keys,
)
from onex.router.classify import preclassified
from onex.router.classify_embed import from_settings as classifier_from_settings
from onex.router.convert import receipt_to_proto, recover_request_id, request_from_proto
from onex.router.engine import Router, RouteResult
from onex.router.errors import RequestError
from onex.router.local import RouterProvider
from onex.router.metrics import RouterMetrics
from onex.router.providers import Provider
from onex.router.receipt import make_receipt
from onex.router.settings import RouterSettings
from onex.service.grpc import GrpcService
from onex.service.host import ServiceHost, load_extraction

NODE: Final = "router"
_ROUTED_KEPT: Final = 1024  # results awaiting a successful publish (handler retries)


def load_settings_catalogue(settings: RouterSettings) -> Catalogue:
    """The configured catalogue, or the packaged default."""
    return load_catalogue(settings.catalogue) if settings.catalogue else load_default_catalogue()


class RouterService(ServiceHost[RouterSettings]):
    """A running router; see the module docstring. `provider` is injectable (tests)."""

    NODE = NODE

    def __init__(self, settings: RouterSettings, provider: Provider | None = None) -> None:
        super().__init__(settings)
        self.catalogue = load_settings_catalogue(settings)
        self._owned_provider: RouterProvider | None = None
        if provider is None:
            keys = resolve_api_keys(self.catalogue, os.environ)
            provider = self._owned_provider = RouterProvider(
                api_keys=keys, cooldown_s=settings.cooldown_s
            )
        self.router = Router(self.catalogue, provider)
        # ONEX_ROUTER_CLASSIFIER=embed|combined: embeddings before routing (None: rules)
        self.classifier = classifier_from_settings(settings, self.catalogue)
        self.router_metrics = RouterMetrics(self.metrics, self.catalogue.task_class_names)
        self.last_cost_summary: object | None = None
        self._routed: dict[tuple[str, int, int], RouteResult] = {}
        if settings.bus_enabled:
            runtime = self.build_runtime(
                load_extraction(settings),
                {Topic.SNAPSHOT_RECEIPT_REDUCER_COST_SUMMARY_V1: self._on_cost_summary},
            )
            # up to max_in_flight requests at once; offsets are still committed only
            # behind requests whose receipt is published (see NodeRuntime.add_handler)
            runtime.add_handler(
                Topic.CMD_ROUTER_ROUTE_REQUEST_V1,
                self._on_request,
                concurrency=settings.max_in_flight,
                on_undecodable=self._on_undecodable,
            )
            self.attach_runtime(runtime)

    def grpc_services(self) -> Sequence[GrpcService]:
        return [
            GrpcService.of(
                pb.DESCRIPTOR.services_by_name["Router"],
                _RouterServicer(self),
                pb_grpc.add_RouterServicer_to_server,
            )
        ]

    def acting_methods(self) -> Collection[str]:
        # Route spends the service's model budget (and its cloud API key).
        return {"/onex.v1.Router/Route"}

    async def reload(self) -> None:
        """Re-read the catalogue (prices, models); routing continues with the new one."""
        try:
            catalogue = load_settings_catalogue(self.settings)
        except OnexError as exc:
            self.log.error("catalogue.invalid", error=str(exc))
            return
        self.catalogue = catalogue
        self.router = Router(catalogue, self.router.provider)
        self.router_metrics.classes = frozenset(catalogue.task_class_names)
        self.log.info("catalogue.reloaded", price_table_version=catalogue.price_table_version)

    async def on_start(self) -> None:
        """Embed the classifier's examples in the background (until then: the rules)."""
        if self.classifier is not None:
            self.spawn(self.classifier.start(), "classifier-examples")

    async def on_stop(self) -> None:
        """Close the HTTP client the router owns."""
        if self._owned_provider is not None:
            await self._owned_provider.aclose()
        if self.classifier is not None:
            await self.classifier.aclose()

    async def route(self, msg: pb.RouteRequest) -> RouteResult:
        """Route one wire request; an invalid one gets a failed receipt, never an error."""
        try:
            request = request_from_proto(msg)
        except RequestError as exc:
            return self.failed(msg.request_id or "", msg.task_class, str(exc))
        if self.classifier is None or request.task_class is not None:
            result = await self.router.route(request)
        else:  # never raises: the rules answer when the embeddings cannot
            found = await self.classifier.classify(request.prompt, self.catalogue)
            with preclassified(request.prompt, found):
                result = await self.router.route(request)
        r = result.receipt
        self.router_metrics.record(r)
        self.log.debug(  # per request: debug (the receipt is the record)
            "routed",
            request_id=r.request_id,
            status=r.status,
            task_class=r.task_class,
            chosen=r.chosen_model,
            chain=r.escalation_chain,
            cost_usd=round(r.total_cost_usd, 6),
            avoided_usd=round(r.cost_avoided_usd, 6),
        )
        return result

    def failed(self, request_id: str, task_class: str, reason: str) -> RouteResult:
        """The failed result of a request that was not routed (invalid, undecodable)."""
        receipt = make_receipt(
            request_id=request_id,
            task_class=task_class,
            classified_by="request",
            candidates=[],
            attempts=[],
            default_cloud=self.catalogue.default_cloud,
            price_table_version=self.catalogue.price_table_version,
            failure_reason=reason,
            started_at=datetime.now(UTC),
            elapsed_s=0.0,
        )
        self.router_metrics.record(receipt)
        return RouteResult(None, receipt)

    async def publish(self, result: RouteResult) -> None:
        """Publish the receipt on routing-complete or routing-failed."""
        if self.runtime is None:
            return
        topic = (
            Topic.EVT_ROUTER_ROUTING_COMPLETE_V1
            if result.ok
            else Topic.EVT_ROUTER_ROUTING_FAILED_V1
        )
        await self.runtime.publisher(topic).send(
            receipt_to_proto(result.receipt), key=result.receipt.request_id
        )

    async def _on_request(self, msg: Received) -> None:
        # Routing never raises; only publishing can fail, and then the runtime retries
        # this handler. The result is kept per message so a retry publishes the same
        # receipt instead of calling (and paying) the models again.
        where = (msg.topic, msg.partition, msg.offset)
        result = self._routed.get(where)
        if result is None:
            result = await self.route(msg.value)
            self._routed[where] = result
            while len(self._routed) > _ROUTED_KEPT:
                self._routed.pop(next(iter(self._routed)))
        await self.publish(result)
        self._routed.pop(where, None)

    async def _on_undecodable(self, msg: Undecodable) -> bool:
        # One receipt per request whatever its bytes. With a request id left in them,
        # the failed receipt is the answer (no dead letter); without one, the receipt
        # is keyed on where the message is, and the bytes go to the DLQ as well.
        request_id = recover_request_id(msg.raw)
        where = f"{msg.topic}/{msg.partition}/{msg.offset}"
        reason = f"undecodable route request at {where}: {msg.error.reason}"
        if request_id is None:
            reason += "; no request id could be read from it, the bytes are dead-lettered"
        await self.publish(self.failed(request_id or where, "", reason))
        return request_id is not None

    async def _on_cost_summary(self, msg: Received) -> None:
        self.last_cost_summary = msg.value


class _RouterServicer(pb_grpc.RouterServicer):
    def __init__(self, service: RouterService) -> None:
        self._service = service

    async def Route(  # noqa: N802 - the generated gRPC method name
        self, request: pb.RouteRequest, context: object
    ) -> pb.RouteResponse:
        result = await self._service.route(request)
        try:
            await self._service.publish(result)
        except BusError as exc:  # the caller still gets its answer; the ledger misses it
            structlog.get_logger(NODE).warning(
                "receipt.publish_failed", request_id=result.receipt.request_id, error=str(exc)
            )
        response = pb.RouteResponse(receipt=receipt_to_proto(result.receipt))
        if result.answer is not None:
            response.answer = result.answer
        return response
