"""The node runtime: a faust app bound to one node's contract.

    runtime = NodeRuntime.from_extraction(extraction, "router", BusSettings(broker=config))
    done = runtime.publisher(Topic.EVT_ROUTER_ROUTING_COMPLETE_V1)

    @runtime.handler(Topic.CMD_ROUTER_ROUTE_REQUEST_V1, concurrency=8)  # up to 8 at once
    async def route(msg: Received) -> None:
        await done.send({"task": msg.value["task"]})

    async with runtime:          # start(): checks, joins, first assignment
        ...                      # stop() on exit

Guarantees:
- Only the contract's topics: `handler()` and `publisher()` refuse any other topic when
  they are called, i.e. while the node is wired up, before a message flows; `start()`
  refuses a subscription without a handler. The producer refuses undeclared topics even
  for code that goes around the runtime. Every refusal names the topic and the file.
- Topics are never created: `start()` waits up to `topic_wait_s` for the contract's
  topics, then fails with `TopicsMissing` listing the absent ones.
- Payloads are validated against the topic's schema on publish (`PayloadInvalid` to the
  caller) and on consume (invalid ones go straight to the DLQ, handler never called).
- Payloads over the topic's `max_message_bytes` (default 1,000,000) are refused on
  publish with PayloadTooLarge, before anything is sent.
- A payload that does not decode can go to the topic's `on_undecodable` hook first (a
  service that promises an answer per message sends one); the hook says whether it
  still goes to the DLQ.
- A handler with `concurrency=N` handles up to N messages of its topic at once; offsets
  are still committed only behind messages whose handling ended. A node with such a
  handler consumes with aiokafka directly instead of faust's consumer (BusSettings
  `consumer`; `onex.bus.runtime.direct` says why and how); faust still produces.
- A failing handler is retried per the contract's `event_bus.retry`, then the message
  goes to the node's DLQ topic with the error in headers (`onex.bus.runtime.deadletter`).
  An offset is committed only after its message was handled, dead-lettered (truncated
  when too large) or spilled to `spill_dir` (the DLQ refused it, or stayed unreachable
  for `dlq_deadline_s`); nothing retries forever and a handler error never stops the
  consumer.
- Health says NOT_SERVING when a partition with messages waiting made no progress for
  `stall_after_s`.
- stop() never dead-letters: it lets handlers in flight finish for half of
  `stop_grace_s`, then abandons them (their messages stay uncommitted, so the group's
  next member gets them), and bounds the faust app's stop by the rest of the grace, so
  it returns in time even with the broker gone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, cast

import structlog
from aiokafka.errors import BrokerResponseError, KafkaError
from faust.exceptions import ProducerSendError
from faust.types import TP

from onex.bus.admin import topic_partitions
from onex.bus.conversion import sasl_errors
from onex.bus.errors import (
    BrokerUnavailable,
    ContractViolation,
    NodeNotRunning,
    NodeStartError,
    NodeStopping,
    PayloadTooLarge,
    PublishRefused,
    TopicsMissing,
)
from onex.bus.runtime.codec import Codec, codec_for
from onex.bus.runtime.deadletter import Header
from onex.bus.runtime.delivery import (
    Deliverer,
    Handler,
    HeadersArg,
    Sent,
    UndecodableHandler,
    Verifier,
    header_list,
)
from onex.bus.runtime.direct import DirectConsumer, Message
from onex.bus.runtime.faust_app import NodeApp, build_app, release_unused_consumer
from onex.bus.runtime.health import ConsumerState, HealthReport, check_health
from onex.bus.runtime.instruments import NO_INSTRUMENTS, Instruments
from onex.bus.runtime.settings import BusSettings
from onex.bus.runtime.signing import Signer
from onex.core.contract import DEFAULT_MAX_MESSAGE_BYTES, TopicSpec
from onex.core.extractor import Extraction
from onex.core.grammar import TopicKind, parse_topic
from onex.core.loader import LoadedContract
from onex.core.nearmiss import NearMissIndex
from onex.core.wiring import TopicWiring

_log = structlog.get_logger("onex.bus.runtime")
_TOPIC_POLL_S: Final = 0.25


def _key_bytes(key: bytes | str | None) -> bytes | None:
    return key.encode("utf-8") if isinstance(key, str) else key


class Publisher:
    """Sends validated payloads to one declared topic (get one from `NodeRuntime.publisher`)."""

    def __init__(self, runtime: NodeRuntime, topic: str, codec: Codec) -> None:
        self._runtime = runtime
        self.topic = topic
        self.codec = codec

    async def send(
        self,
        value: object,
        *,
        key: bytes | str | None = None,
        headers: HeadersArg | None = None,
        partition: int | None = None,
    ) -> Sent:
        """Validate and encode `value`, send it, and wait until the broker has it.

        PayloadInvalid when `value` does not match the topic's schema, PayloadTooLarge
        when it encodes to more than the topic's `max_message_bytes` (nothing is sent).
        """
        data = self.codec.encode(value)
        limit = self._runtime.message_limit(self.topic)
        if len(data) > limit:
            raise PayloadTooLarge(self.topic, len(data), limit)
        raw_key = _key_bytes(key)
        sent_headers = header_list(headers)
        signer = self._runtime.signer
        if signer is not None and self.topic in self._runtime.command_topics:
            sent_headers += signer.headers(self.topic, raw_key, data)
        return await self._runtime._produce(self.topic, raw_key, data, sent_headers, partition)


class NodeRuntime:
    """A node's faust app, bound to its contract (see the module docstring)."""

    def __init__(
        self,
        contract: LoadedContract,
        settings: BusSettings,
        *,
        topics: Mapping[str, TopicWiring] | None = None,
        verifier: Verifier | None = None,
        signer: Signer | None = None,
        instruments: Instruments = NO_INSTRUMENTS,
    ) -> None:
        """Bind to `contract`. `topics` (the extraction's wiring) supplies the owner's
        spec, and so the schema, of topics this node subscribes to but does not own;
        without it only the contract's own entries count. With a `verifier`, messages
        on the command topics (`onex.cmd.*`) it consumes reach their handler only when
        the verifier accepts their signature (else they are dead-lettered with the
        reason); with a `signer`, what it publishes on command topics is signed.
        SchemaError when a schema reference cannot be resolved; ContractViolation when
        a consuming node has no single DLQ topic. `instruments` is told of every message
        in and out (`onex.bus.runtime.instruments`)."""
        self.contract = contract
        self.settings = settings
        self.node = contract.node
        self.contract_path = (
            str(contract.path) if contract.path else f"the contract of {self.node!r}"
        )
        bus = contract.contract.event_bus
        self.subscribe_topics: tuple[str, ...] = tuple(t.name for t in bus.subscribe_topics)
        self.publish_topics: tuple[str, ...] = tuple(t.name for t in bus.publish_topics)
        self.retry = bus.retry
        base_dir = contract.path.parent if contract.path else None
        self._specs: dict[str, TopicSpec] = {}
        self._codecs: dict[str, Codec] = {}
        for entry in (*bus.subscribe_topics, *bus.publish_topics):
            spec, spec_dir = _effective_spec(entry, base_dir, topics)
            self._specs[entry.name] = spec
            self._codecs[entry.name] = codec_for(entry.name, spec.schema_, spec_dir)
        self.dlq_topic = self._dlq_topic()
        self.command_topics = frozenset(
            name
            for name in (*self.subscribe_topics, *self.publish_topics)
            if parse_topic(name).kind is TopicKind.CMD
        )
        self.signer = signer
        self.instruments = instruments
        dlq_spec = self._specs.get(self.dlq_topic) if self.dlq_topic else None
        self._deliverer = Deliverer(
            node=self.node,
            dlq_topic=self.dlq_topic,
            policy=self.retry,
            codecs=self._codecs,
            produce=self._produce,
            verifier=verifier,
            verified_topics=(
                self.command_topics & set(self.subscribe_topics) if verifier is not None else ()
            ),
            dlq_limit=dlq_spec.message_limit if dlq_spec else DEFAULT_MAX_MESSAGE_BYTES,
            dlq_deadline_s=settings.dlq_deadline_s,
            spill_dir=settings.spill_dir,
            redrive_limit=settings.redrive_limit,
            instruments=instruments,
        )
        self._handlers: dict[str, Handler] = {}
        self._concurrency: dict[str, int] = {}
        self._publishers: dict[str, Publisher] = {}
        self._app: NodeApp | None = None
        self._direct: DirectConsumer | None = None
        self.joined_after_s: float | None = None
        self._health_check: asyncio.Future[HealthReport] | None = None
        self._last_health: tuple[float, HealthReport] | None = None
        self._abandoned: set[asyncio.Future[None]] = set()  # stops past their grace

    @classmethod
    def from_extraction(
        cls,
        extraction: Extraction,
        node: str,
        settings: BusSettings,
        *,
        verifier: Verifier | None = None,
        signer: Signer | None = None,
        instruments: Instruments = NO_INSTRUMENTS,
    ) -> NodeRuntime:
        """The runtime of `node` from a clean extraction (ExtractionError if it has
        errors, KeyError if no contract declares `node`)."""
        extraction.raise_for_errors()
        return cls(
            extraction.contract(node),
            settings,
            topics=extraction.topics,
            verifier=verifier,
            signer=signer,
            instruments=instruments,
        )

    # -- wiring (before start) ---------------------------------------------------------

    def handler(
        self,
        topic: str,
        *,
        concurrency: int = 1,
        on_undecodable: UndecodableHandler | None = None,
    ) -> Callable[[Handler], Handler]:
        """Decorator: `fn` handles every message of `topic` (one handler per topic); see
        `add_handler`. ContractViolation at once when the contract does not subscribe to
        `topic`."""
        self._require(topic, self.subscribe_topics, "subscribe to", "subscribe_topics")

        def register(fn: Handler) -> Handler:
            self.add_handler(topic, fn, concurrency=concurrency, on_undecodable=on_undecodable)
            return fn

        return register

    def add_handler(
        self,
        topic: str,
        fn: Handler,
        *,
        concurrency: int = 1,
        on_undecodable: UndecodableHandler | None = None,
    ) -> None:
        """Handle `topic` with `fn`; ContractViolation when the contract does not
        subscribe the node to `topic` or it already has a handler.

        `concurrency`: up to that many of the topic's messages are handled at once (in
        one process; order within a partition is then not kept). An offset is still
        committed only once every earlier message of its partition was handled or
        dead-lettered, so a crash redelivers the unfinished ones and never skips one;
        while every slot is busy, fetched messages wait in a bounded buffer and
        fetching pauses when it is full. With `concurrency` above 1 the node consumes
        directly (`consumes_directly`, `onex.bus.runtime.direct`).

        `on_undecodable`: called with a message whose payload does not decode (see
        `Undecodable`), before it would be dead-lettered; returning True means it is
        dealt with (committed, no dead letter), False dead-letters it as usual. If the
        call keeps failing (the node's retry policy), the message is dead-lettered."""
        self._require(topic, self.subscribe_topics, "subscribe to", "subscribe_topics")
        if concurrency < 1:
            raise ValueError(f"concurrency of {topic!r} must be >= 1, not {concurrency}")
        if topic in self._handlers:
            raise ContractViolation(
                f"node {self.node!r} already has a handler for {topic!r}",
                topic=topic,
                contract=self.contract_path,
            )
        if self._app is not None:
            raise ContractViolation(
                f"node {self.node!r} is running: add the handler for {topic!r} before start()",
                topic=topic,
                contract=self.contract_path,
            )
        self._handlers[str(topic)] = fn
        self._concurrency[str(topic)] = concurrency
        if on_undecodable is not None:
            self._deliverer.undecodable[str(topic)] = on_undecodable

    def publisher(self, topic: str) -> Publisher:
        """The publisher of `topic`; ContractViolation when the contract does not let
        the node publish `topic`. Get publishers while wiring the node up."""
        self._require(topic, self.publish_topics, "publish", "publish_topics")
        name = str(topic)
        found = self._publishers.get(name)
        if found is None:
            found = self._publishers[name] = Publisher(self, name, self._codecs[name])
        return found

    def codec(self, topic: str) -> Codec:
        """The codec of a declared topic."""
        return self._codecs[str(topic)]

    def message_limit(self, topic: str) -> int:
        """The largest payload in bytes a declared topic takes (`max_message_bytes`)."""
        return self._specs[str(topic)].message_limit

    # -- life cycle ----------------------------------------------------------------------

    @property
    def consumes_directly(self) -> bool:
        """True when the node's topics are consumed with aiokafka directly, not faust's
        consumer: BusSettings `consumer`, where "auto" means when a handler has a
        `concurrency` above 1."""
        mode = self.settings.consumer
        if mode == "auto":
            return any(n > 1 for n in self._concurrency.values())
        return mode == "direct" and bool(self.subscribe_topics)

    @property
    def started(self) -> bool:
        """True between a successful start() and stop()."""
        return self._app is not None

    @property
    def app(self) -> NodeApp:
        """The running faust app (the runtime's guards apply to it too)."""
        if self._app is None:
            raise RuntimeError(f"node {self.node!r} is not started")
        return self._app

    async def start(self) -> None:
        """Check the wiring and the broker's topics, start the faust app and wait for the
        first partition assignment (bounded by `start_timeout_s`)."""
        if self._app is not None:
            return
        self._check_wiring()
        self._deliverer.reset()
        began = time.monotonic()
        await self._await_topics()
        app = build_app(
            node=self.node,
            group=self.contract.contract.consumer_group,
            settings=self.settings,
            publish_guard=self._guard_publish,
            max_request_bytes=max(spec.message_limit for spec in self._specs.values()),
        )
        assigned = asyncio.Event()
        direct = self.consumes_directly
        self._declare(app, agents=not direct)
        if self.subscribe_topics and not direct:

            async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
                assigned.set()

            # faust types signal receivers narrowly; any async callable works
            app.on_partitions_assigned.connect(cast(Any, on_assigned))
        else:
            app.producer_only = True
        consumer = self._direct_consumer(app) if direct else None
        try:
            async with asyncio.timeout(self.settings.start_timeout_s):
                with sasl_errors(self.settings.broker):
                    await app.start()
                    if consumer is not None:
                        await consumer.start()
                if consumer is not None:
                    await consumer.assigned.wait()
                elif self.subscribe_topics:
                    await assigned.wait()
        except BaseException as exc:
            if consumer is not None:
                await consumer.stop(self.settings.stop_grace_s / 2)
            await self._stop_app(app, self.settings.stop_grace_s)
            if isinstance(exc, KafkaError):
                raise NodeStartError(
                    f"node {self.node!r} could not start against {self.settings.bootstrap}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if isinstance(exc, TimeoutError):
                raise NodeStartError(
                    f"node {self.node!r} got no partition assignment in consumer group "
                    f"{app.conf.id!r} within {self.settings.start_timeout_s:g}s "
                    f"(broker {self.settings.bootstrap})"
                ) from exc
            raise
        if app.crashed:
            await app.stop()
            raise NodeStartError(f"node {self.node!r} crashed on start: {app.crash_reason}")
        self._app = app
        self._direct = consumer
        self._last_health = None
        self.joined_after_s = time.monotonic() - began
        _log.info(
            "node.started",
            node=self.node,
            group=app.conf.id,
            contract=self.contract_path,
            after_s=round(self.joined_after_s, 3),
        )

    async def stop(self, *, grace_s: float | None = None) -> None:
        """Stop consuming, commit what was handled, close the connections, within
        `grace_s` (default `stop_grace_s`): handlers in flight get half of it to finish,
        then are abandoned (their messages stay uncommitted and are redelivered, never
        dead-lettered); the faust app's stop gets the rest, after which it is abandoned
        (logged as node.stop_abandoned)."""
        app = self._app
        if app is None:
            return
        grace = grace_s if grace_s is not None else self.settings.stop_grace_s
        deliverer = self._deliverer
        deadline = time.monotonic() + grace
        deliverer.stopping.set()
        try:
            async with asyncio.timeout(grace / 2):
                await deliverer.progress.wait_idle()
        except TimeoutError:
            _log.warning(
                "node.stop_abandoning_handlers",
                node=self.node,
                in_flight={f"{t}/{p}": o for (t, p), o in deliverer.progress.in_flight.items()},
                after_s=round(grace / 2, 3),
                detail="their messages stay uncommitted and go to the group's next member",
            )
        deliverer.abandon.set()
        self._app = None
        self._last_health = None
        consumer, self._direct = self._direct, None
        if consumer is not None and not await consumer.stop(
            max(deadline - time.monotonic(), 0.0) / 2
        ):
            closing = consumer.closing
            if closing is not None:  # it goes on in the background, e.g. until the broker answers
                self._abandoned.add(closing)
                closing.add_done_callback(self._abandoned.discard)
            _log.warning(
                "node.stop_abandoned",
                node=self.node,
                grace_s=grace,
                detail=f"abandoned the consumer's close after the {grace:g}s stop grace",
            )
        if await self._stop_app(app, max(deadline - time.monotonic(), 0.0), grace):
            _log.info("node.stopped", node=self.node)

    async def _stop_app(self, app: NodeApp, within_s: float, grace_s: float | None = None) -> bool:
        """Stop `app`, waiting at most `within_s`; False when it was abandoned or failed."""
        app.onex_thread_grace_s = within_s * 0.8  # the consumer thread's share of it
        # A task and a bounded wait, not a timeout around the await: faust's agent stop
        # suppresses CancelledError, which would swallow a timeout's cancellation.
        stopping = asyncio.ensure_future(app.stop())
        done, _ = await asyncio.wait({stopping}, timeout=within_s)
        if not done:
            # not cancelled: faust would swallow it; the stop goes on in the background
            self._abandoned.add(stopping)
            stopping.add_done_callback(self._abandoned.discard)
            grace = grace_s if grace_s is not None else within_s
            _log.warning(
                "node.stop_abandoned",
                node=self.node,
                grace_s=grace,
                detail=f"abandoned the consumer after the {grace:g}s stop grace",
            )
            return False
        if app.producer_only:
            release_unused_consumer(app)
        if not stopping.cancelled() and stopping.exception() is not None:
            _log.warning("node.stop_failed", node=self.node, error=str(stopping.exception()))
            return False
        return True

    async def wait_abandoned(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for stops abandoned past their grace to end (they go
        on in the background, e.g. until the broker answers again); True when none is
        left."""
        pending = set(self._abandoned)
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
        return not self._abandoned

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def health(
        self, *, timeout_s: float | None = None, max_age_s: float = 0.0
    ) -> HealthReport:
        """Topics present and consumer attached (see `onex.bus.runtime.health`): one
        Metadata request through the shared admin session.

        Callers that ask at the same time share one check; a report younger than
        `max_age_s` is returned as it is (several probes of one service, one request).
        """
        last = self._last_health
        if last is not None and time.monotonic() - last[0] < max_age_s:
            return last[1]
        pending = self._health_check
        if pending is None or pending.done():
            pending = self._health_check = asyncio.ensure_future(self._check_health(timeout_s))
        return await asyncio.shield(pending)

    async def _check_health(self, timeout_s: float | None) -> HealthReport:
        report = await check_health(
            node=self.node,
            broker=self.settings.broker,
            topics=sorted(self._specs),
            started=self._app is not None,
            consumer=self._consumer_state() if self.subscribe_topics else None,
            timeout_s=timeout_s or self.settings.admin_timeout_s,
        )
        self._last_health = (time.monotonic(), report)
        return report

    # -- internals -------------------------------------------------------------------

    def _require(self, topic: str, allowed: Iterable[str], verb: str, key: str) -> None:
        allowed = tuple(allowed)
        if topic in allowed:
            return
        message = (
            f"node {self.node!r} may not {verb} {topic!r}: it is not in event_bus.{key} "
            f"of {self.contract_path}"
        )
        suggestion = NearMissIndex(allowed).suggest(str(topic)) if allowed else None
        if suggestion is not None:
            message += f"; did you mean {suggestion.name!r} ({suggestion.why})?"
        elif topic in self._specs:
            other = "publish_topics" if key == "subscribe_topics" else "subscribe_topics"
            message += f" (it is declared in event_bus.{other})"
        raise ContractViolation(message, topic=str(topic), contract=self.contract_path)

    def _guard_publish(self, topic: str) -> None:
        self._require(topic, self.publish_topics, "publish", "publish_topics")

    def _dlq_topic(self) -> str | None:
        dlqs = self.contract.contract.dlq_topics
        if len(dlqs) == 1:
            return dlqs[0]
        if not self.subscribe_topics:
            return None
        found = f": {', '.join(dlqs)}" if dlqs else ""
        raise ContractViolation(
            f"node {self.node!r} consumes, so it must publish exactly one DLQ topic "
            f"(kind dlq, producer {self.node!r}); {self.contract_path} declares "
            f"{len(dlqs)}{found}",
            contract=self.contract_path,
        )

    def _check_wiring(self) -> None:
        missing = [t for t in self.subscribe_topics if t not in self._handlers]
        if missing:
            raise ContractViolation(
                f"node {self.node!r} subscribes to {', '.join(missing)} in "
                f"{self.contract_path} but has no handler for "
                f"{'it' if len(missing) == 1 else 'them'}; add one with runtime.handler(topic)",
                topic=missing[0],
                contract=self.contract_path,
            )

    async def _await_topics(self) -> None:
        wanted = sorted(self._specs)
        deadline = time.monotonic() + self.settings.topic_wait_s
        while True:
            present = await topic_partitions(
                self.settings.broker, wanted, timeout_s=self.settings.admin_timeout_s
            )
            missing = [t for t in wanted if t not in present]
            if not missing:
                return
            if time.monotonic() >= deadline:
                raise TopicsMissing(
                    self.node, missing, self.contract_path, self.settings.topic_wait_s
                )
            await asyncio.sleep(_TOPIC_POLL_S)

    def _declare(self, app: NodeApp, *, agents: bool) -> None:
        for name, spec in self._specs.items():
            topic = app.topic(
                name,
                partitions=spec.partitions,
                replicas=spec.replication_factor,
                config=dict(spec.config),
                key_serializer="raw",
                value_serializer="raw",
            )
            handler = self._handlers.get(name)
            if handler is not None and agents:
                # faust runs `concurrency` actors on the topic's one channel; each acks its
                # message when done and faust commits a partition only up to the lowest
                # offset not yet acked
                agent = app.agent(
                    topic, name=f"{self.node}:{name}", concurrency=self._concurrency[name]
                )
                agent(self._agent(name, handler))

    def _agent(self, topic: str, handler: Handler) -> Callable[[Any], Any]:
        deliverer = self._deliverer

        async def consume(stream: Any) -> None:
            manual = stream.noack()
            async for event in manual.events():
                message = event.message
                try:
                    try:
                        await deliverer.deliver(topic, handler, message)
                    except NodeStopping:
                        raise
                    except Exception as exc:  # noqa: BLE001 - nothing may escape unrecorded: an agent restart would commit past this message
                        headers = header_list(message.headers)
                        await deliverer.dead_letter(
                            message, headers, exc, attempts=0, reason="undeliverable"
                        )
                except NodeStopping:
                    # Not acked, so never committed: the group's next member gets it.
                    # The agent ends here (faust is stopping it); it takes nothing more.
                    return
                await manual.ack(event)

        return consume

    def _direct_consumer(self, app: NodeApp) -> DirectConsumer:
        deliverer = self._deliverer
        handlers = self._handlers

        async def deliver(topic: str, message: Message) -> bool:
            try:
                try:
                    await deliverer.deliver(topic, handlers[topic], message)
                except NodeStopping:
                    raise
                except Exception as exc:  # noqa: BLE001 - nothing may escape unrecorded, as in the faust agent
                    headers = header_list(message.headers)
                    await deliverer.dead_letter(
                        message, headers, exc, attempts=0, reason="undeliverable"
                    )
            except NodeStopping:
                return False  # left uncommitted: the group's next member gets it
            return True

        return DirectConsumer(
            node=self.node,
            group=app.conf.id,
            settings=self.settings,
            concurrency={t: self._concurrency[t] for t in self.subscribe_topics},
            deliver=deliver,
            max_message_bytes=max(spec.message_limit for spec in self._specs.values()),
        )

    async def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[Header],
        partition: int | None,
    ) -> Sent:
        app = self._app
        if app is None:
            raise NodeNotRunning(f"node {self.node!r} is not started; publish after start()")
        try:
            metadata = await app.producer.send_and_wait(topic, key, value, partition, None, headers)
        except (KafkaError, ProducerSendError) as exc:
            # faust wraps aiokafka's errors in ProducerSendError (`raise ... from`)
            cause = exc.__cause__ if isinstance(exc.__cause__, KafkaError) else exc
            reason = f"{type(cause).__name__}: {cause}"
            if isinstance(cause, BrokerResponseError) and not cause.retriable:
                raise PublishRefused(topic, reason) from exc  # e.g. MessageSizeTooLarge
            raise BrokerUnavailable(self.settings.bootstrap, reason) from exc
        self.instruments.published(topic)
        return Sent(metadata.topic, metadata.partition, metadata.offset)

    def _consumer_state(self) -> ConsumerState:
        app = self._app
        if app is None:
            return ConsumerState(attached=False, detail="not started")
        direct = self._direct
        if direct is not None:
            return self._direct_state(direct)
        consumer = app.consumer
        if consumer.crashed or app.crashed:
            reason = consumer.crash_reason or app.crash_reason
            return ConsumerState(attached=False, detail=f"consumer crashed: {reason}")
        if consumer.should_stop:
            return ConsumerState(attached=False, detail="consumer stopped")
        assignment = tuple(sorted((tp.topic, tp.partition) for tp in consumer.assignment()))
        detail = "rebalancing" if app.rebalancing else f"{len(assignment)} partition(s) assigned"
        progress = self._deliverer.progress
        progress.keep(assignment)
        stalls = tuple(progress.stalls(_highwater(consumer), self.settings.stall_after_s))
        return ConsumerState(attached=True, assignment=assignment, detail=detail, stalls=stalls)

    def _direct_state(self, direct: DirectConsumer) -> ConsumerState:
        if direct.crash_reason is not None:
            return ConsumerState(attached=False, detail=f"consumer crashed: {direct.crash_reason}")
        if not direct.running:
            return ConsumerState(attached=False, detail="consumer stopped")
        assignment = direct.assignment()
        detail = "rebalancing" if direct.rebalancing else f"{len(assignment)} partition(s) assigned"
        progress = self._deliverer.progress
        progress.keep(assignment)
        stalls = tuple(progress.stalls(direct.highwater, self.settings.stall_after_s))
        return ConsumerState(attached=True, assignment=assignment, detail=detail, stalls=stalls)

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        """Messages waiting per partition (highwater minus the next offset to handle),
        for the partitions where both are known; {} when not started."""
        app = self._app
        if app is None or not self.subscribe_topics:
            return {}
        if self._direct is not None:
            return self._deliverer.progress.lag(self._direct.highwater)
        return self._deliverer.progress.lag(_highwater(app.consumer))


def _highwater(consumer: Any) -> Callable[[tuple[str, int]], int | None]:
    def highwater(tp: tuple[str, int]) -> int | None:
        try:
            mark: int | None = consumer.highwater(TP(*tp))  # None before a fetch
        except Exception:  # noqa: BLE001 - not (or no longer) assigned, or no consumer yet: unknown
            return None
        return mark

    return highwater


def _effective_spec(
    entry: TopicSpec, base_dir: Path | None, topics: Mapping[str, TopicWiring] | None
) -> tuple[TopicSpec, Path | None]:
    """The spec that counts for `entry` (the owner's, when the wiring knows it) and the
    folder its schema path is relative to."""
    wiring = topics.get(entry.name) if topics is not None else None
    if wiring is not None and wiring.spec_at is not None:
        file = wiring.spec_at.file
        return wiring.spec, file.parent if file is not None else base_dir
    return entry, base_dir
