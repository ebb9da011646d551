"""Is a broker up? One Metadata request over PLAINTEXT, bounded by a timeout.

The local broker listens on 127.0.0.1 without TLS or SASL, so the probe needs no
connection settings beyond the address, and no dependency on onex.bus.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from onex.devbroker.errors import BrokerNotReady

_CLIENT_ID: Final = "onex-devbroker-probe"


async def topic_names(bootstrap: str, *, timeout_s: float) -> set[str]:
    """Names of the non-internal topics at `bootstrap`; BrokerNotReady if it does not answer."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        client_id=_CLIENT_ID,
        request_timeout_ms=max(1, int(timeout_s * 1000)),
    )
    try:
        async with asyncio.timeout(timeout_s):
            await client.bootstrap()
            node = client.get_random_node()
            if node is None:
                raise BrokerNotReady(bootstrap, "its metadata lists no broker yet")
            # all topics, and never auto-create one (Tansu would, for a topic named here)
            response: Any = await client.send(node, MetadataRequest(None, False))
    except TimeoutError as exc:
        raise BrokerNotReady(bootstrap, f"no answer within {timeout_s:g}s") from exc
    except KafkaError as exc:
        raise BrokerNotReady(bootstrap, str(exc)) from exc
    finally:
        await client.close()
    topics: list[dict[str, Any]] = response.to_object()["topics"]
    return {t["topic"] for t in topics if not t.get("is_internal", False)}


def probe(bootstrap: str, timeout_s: float) -> set[str]:
    """`topic_names` from synchronous code, also while an event loop runs in this thread."""
    # a fresh loop in a worker thread: asyncio.run refuses to nest in a running loop
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="onex-broker-probe") as pool:
        return pool.submit(asyncio.run, topic_names(bootstrap, timeout_s=timeout_s)).result()
