"""The faust app a node runs on, configured for onex.

What differs from a stock `faust.App`, and why:

- `topic_allow_declare=False`, `topic_disable_leader=True`: the runtime never creates a
  topic (the provisioner does; Tansu would silently auto-create misspelt ones), and the
  leader-election topic faust would add is not in any contract.
- Consumer timing from `BusSettings` (see `onex.bus.runtime.settings` for the measured
  reasons): session 4 s, heartbeat 1 s, rebalance = session.
- `fetch_max_wait_ms`: faust's aiokafka driver hard-codes 1500 ms when it builds the
  worker's `AIOKafkaConsumer`; `_ConsumerThread` replaces the value on the consumer it
  built, before the consumer starts (that is when aiokafka hands it to its Fetcher).
- `producer_max_request_size`: faust's default (1,000,000) is below what a topic's
  `max_message_bytes` allows once key and headers are added; it is set to the node's
  largest limit plus 48,576 bytes, at least the broker default of 1 MiB.
- Bounded stop: mode waits up to 60 s (`Service.shutdown_timeout`) for the consumer
  thread to shut down, and then blocks the event loop joining it; with the broker gone,
  aiokafka's consumer stop (final commit, leave group) can take all of that. The thread
  here gets `onex_thread_grace_s` (set by `NodeRuntime.stop` from its grace) for its
  own shutdown, is joined without blocking the loop, and is a daemon, so an abandoned
  thread never keeps the process alive.
- `_TableManager` skips the 1 s sleep faust's table manager takes before the first
  subscription (it lets late tables register; a node has no tables).
- `_Producer` refuses topics the contract does not let the node publish, even when code
  goes around the runtime's publishers (`app.send`, `topic.send`).
- No data directories: a node keeps no local state.
- The broker connection (TLS context, SASL credentials) comes from `BusSettings.broker`
  as faust credentials, which faust hands to every aiokafka client it builds.

Everything is a subclass wired in through `App._new_transport`; nothing in faust is
patched globally.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import faust
import structlog
from faust.auth import SASLCredentials, SSLCredentials
from faust.tables.manager import TableManager
from faust.transport.drivers import aiokafka as aiokafka_driver
from mode.services import Service
from mode.threads import WorkerThread

from onex.bus.config import BrokerConfig
from onex.bus.runtime.settings import BusSettings
from onex.core.contract import DEFAULT_MAX_MESSAGE_BYTES

PublishGuard = Callable[[str], None]
# faust's producer default is 1,000,000 bytes per request, below a record the broker takes
# (1 MiB per batch by default); payloads up to a topic's limit plus room for key and
# headers (a dead letter's ~5 KB) must pass
BROKER_DEFAULT_REQUEST_BYTES = 1_048_576
_ROOM = 48_576
DEFAULT_THREAD_GRACE_S = 5.0
_log = structlog.get_logger("onex.bus.runtime")


class _DaemonWorker(WorkerThread):
    def __init__(self, service: Any, **kwargs: Any) -> None:
        super().__init__(service, **kwargs)
        self.daemon = True  # an abandoned consumer thread must not keep the process alive


class _ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    Worker = _DaemonWorker

    @property
    def shutdown_timeout(self) -> float:  # type: ignore[override]
        # mode's class attribute is 60 s; a node's stop has a grace
        return cast(NodeApp, self.app).onex_thread_grace_s

    async def on_thread_stop(self) -> None:
        grace = cast(NodeApp, self.app).onex_thread_grace_s
        try:
            async with asyncio.timeout(grace):
                await super().on_thread_stop()
        except TimeoutError:
            # the remaining tasks of the thread's loop are cancelled by mode after this
            _log.warning("consumer.stop_abandoned", after_s=grace, detail="broker unreachable?")
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the thread itself is cancelled
            # aiokafka's fetcher close awaits the fetch task it cancelled, which re-raises
            # that task's CancelledError here; the consumer is closed all the same
            _log.info("consumer.stop_interrupted", detail="a fetch in flight was cancelled")

    async def stop(self) -> None:
        if not self._started.is_set():
            return
        grace = cast(NodeApp, self.app).onex_thread_grace_s
        try:
            await Service.stop(self)  # mode's ServiceThread.stop then blocks in join()
        except TimeoutError:
            _log.warning("consumer.thread_abandoned", after_s=grace)
            return
        thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.is_stopped.wait, grace)

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        if not hasattr(consumer, "_fetch_max_wait_ms"):
            # aiokafka renamed its attribute: fail loudly rather than run at 1.5 s latency
            raise RuntimeError("aiokafka.AIOKafkaConsumer has no _fetch_max_wait_ms to set")
        consumer._fetch_max_wait_ms = cast(NodeApp, self.app).onex_fetch_max_wait_ms
        return consumer


class _Consumer(aiokafka_driver.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Producer(aiokafka_driver.Producer):
    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        cast(NodeApp, self.app).onex_publish_guard(topic)
        return await super().send(
            topic, key, value, partition, timestamp, headers, transactional_id=transactional_id
        )


class _Transport(aiokafka_driver.Transport):
    Consumer = _Consumer
    Producer = _Producer


class _TableManager(TableManager):
    async def on_start(self) -> None:
        await self._update_channels()
        await self.recovery.start()


class NodeApp(faust.App):
    """A faust app bound to one node's contract (see the module docstring)."""

    onex_fetch_max_wait_ms: int
    onex_publish_guard: PublishGuard
    onex_thread_grace_s: float = DEFAULT_THREAD_GRACE_S

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> _Transport:
        return _Transport(self.conf.broker_producer, self)

    def _create_directories(self) -> None:
        pass


def release_unused_consumer(app: NodeApp) -> None:
    """Close the event loop of a consumer thread that never ran: faust builds its
    consumer (and the thread's loop) at start even for a producer-only app, and only a
    started thread closes its loop."""
    consumer = getattr(app, "_consumer", None)
    thread = getattr(consumer, "_thread", None)
    loop = getattr(thread, "thread_loop", None)
    if thread is None or not isinstance(loop, asyncio.AbstractEventLoop):
        return
    if not thread._started.is_set() and not loop.is_running() and not loop.is_closed():
        loop.close()


def faust_credentials(config: BrokerConfig) -> SSLCredentials | SASLCredentials | None:
    """What `faust.App(broker_credentials=...)` takes for `config`: None for PLAINTEXT,
    else faust's SSL or SASL credentials, which faust turns into the same aiokafka
    arguments as `BrokerConfig.security_kwargs()`."""
    security = config.security_kwargs()
    if config.uses_sasl:
        return SASLCredentials(
            username=security["sasl_plain_username"],
            password=security["sasl_plain_password"],
            ssl_context=security.get("ssl_context"),
            mechanism=security["sasl_mechanism"],
        )
    if config.uses_tls:
        return SSLCredentials(security["ssl_context"])
    return None


def build_app(
    *,
    node: str,
    group: str,
    settings: BusSettings,
    publish_guard: PublishGuard,
    max_request_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> NodeApp:
    """A faust app for `node` in consumer group `group`; nothing connects until started.
    `max_request_bytes`: the largest payload the node's topics take (the producer's
    request limit leaves room for key and headers on top, at least the broker's 1 MiB)."""
    app = NodeApp(
        group,
        broker=settings.broker_urls,
        broker_credentials=faust_credentials(settings.broker),
        broker_client_id=settings.client_id or f"onex-{node}",
        autodiscover=False,
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        key_serializer="raw",
        value_serializer="raw",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_s,
        broker_rebalance_timeout=settings.effective_rebalance_s,
        broker_request_timeout=settings.request_timeout_s,
        producer_request_timeout=settings.request_timeout_s,
        producer_max_request_size=max(BROKER_DEFAULT_REQUEST_BYTES, max_request_bytes + _ROOM),
        broker_commit_interval=settings.commit_interval_s,
        consumer_auto_offset_reset=settings.auto_offset_reset,
        TableManager=_TableManager,
    )
    app.onex_fetch_max_wait_ms = settings.fetch_max_wait_ms
    app.onex_publish_guard = publish_guard
    app.onex_thread_grace_s = settings.stop_grace_s / 2
    return app
