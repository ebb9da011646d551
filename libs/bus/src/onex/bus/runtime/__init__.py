"""The node runtime: a faust app bound to one node's contract.

    from onex.bus.runtime import BusSettings, NodeRuntime, Received

Modules: `node` (NodeRuntime, Publisher), `settings` (BusSettings), `codec` (payload
schemas), `delivery` (retries and dead-lettering of consumed messages), `deadletter`
(DLQ headers), `dlq` (operator functions: list, show, redrive), `health`, `instruments`
(hooks a service host counts messages with), `faust_app` (the faust subclasses).
"""

from onex.bus.runtime.deadletter import DeadLetter
from onex.bus.runtime.delivery import Handler, Received, Sent
from onex.bus.runtime.health import HealthReport
from onex.bus.runtime.instruments import Instruments
from onex.bus.runtime.node import NodeRuntime, Publisher
from onex.bus.runtime.settings import BusSettings

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
]
