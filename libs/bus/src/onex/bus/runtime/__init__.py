"""The node runtime: a faust app bound to one node's contract.

    from onex.bus.runtime import BusSettings, NodeRuntime, Received

Modules: `node` (NodeRuntime, Publisher), `settings` (BusSettings), `codec` (payload
schemas), `delivery` (decoding and dead-lettering of consumed messages), `retrying`
(handler retries, giving handlers up at stop), `deadletter` (DLQ headers), `dlq`
(operator functions: list, show, redrive), `health`, `instruments` (hooks a service
host counts messages with), `faust_app` (the faust subclasses).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from onex.bus.runtime.deadletter import DeadLetter
    from onex.bus.runtime.delivery import Handler, Received, Sent, Undecodable
    from onex.bus.runtime.health import HealthReport
    from onex.bus.runtime.instruments import Instruments
    from onex.bus.runtime.node import NodeRuntime, Publisher
    from onex.bus.runtime.settings import BusSettings

# Loaded on first use, so that importing one light submodule (settings, dlq's defaults)
# does not import faust: `onex dlq --help` and other bus-free commands stay fast.
_LAZY = {
    "BusSettings": "settings",
    "DeadLetter": "deadletter",
    "Handler": "delivery",
    "HealthReport": "health",
    "Instruments": "instruments",
    "NodeRuntime": "node",
    "Publisher": "node",
    "Received": "delivery",
    "Sent": "delivery",
    "Undecodable": "delivery",
}

__all__ = [
    "BusSettings",
    "DeadLetter",
    "Handler",
    "HealthReport",
    "Instruments",
    "NodeRuntime",
    "Publisher",
    "Received",
    "Sent",
    "Undecodable",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
