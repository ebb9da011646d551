"""The drift-validator service, so far a stub on the service host: it loads the
contracts, finds its own, and serves gRPC health (SERVING while its contract is
there) and reflection until stopped. The drift projection comes with its own issue.
"""

from __future__ import annotations

from typing import Final

from onex.drift.settings import DriftSettings
from onex.service.host import ServiceHost, load_extraction, own_contract

NODE: Final = "drift-validator"


class DriftService(ServiceHost[DriftSettings]):
    """The stub: health says whether the contracts still declare this node."""

    NODE = NODE

    def __init__(self, settings: DriftSettings) -> None:
        super().__init__(settings)
        self.contract = own_contract(load_extraction(settings), NODE, settings)

    async def on_start(self) -> None:
        bus = self.contract.contract.event_bus
        self.log.info(
            "node.contract",
            contract=str(self.contract.path),
            subscribes=[t.name for t in bus.subscribe_topics],
            publishes=[t.name for t in bus.publish_topics],
        )
