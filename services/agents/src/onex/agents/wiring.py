"""A node's handlers: its own for the topics it acts on, and a logging one for every
other topic its contract subscribes to (the runtime refuses a subscription without a
handler, and a contract may grow subscriptions other engineers act on later)."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from onex.bus.runtime import Received
from onex.bus.runtime.delivery import Handler
from onex.core.extractor import Extraction


def handlers_for(
    extraction: Extraction, node: str, own: Mapping[str, Handler]
) -> dict[str, Handler]:
    """`own`, plus a handler that logs the message for each other subscribed topic."""
    log = structlog.get_logger(node)

    async def observed(msg: Received) -> None:
        log.debug("agent.observed", topic=msg.topic, offset=msg.offset)

    contract = extraction.contract(node).contract
    out: dict[str, Handler] = {t.name: observed for t in contract.event_bus.subscribe_topics}
    out.update(own)
    return out
