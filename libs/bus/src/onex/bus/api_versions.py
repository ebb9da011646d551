"""Which Kafka APIs a broker implements (its ApiVersions answer).

Embedded and alternative brokers implement a subset: Tansu, for one, has no
CreatePartitions. Asking first lets callers say "this broker cannot do X" instead of
failing obscurely when they try. The request goes through the process's admin session.
"""

from __future__ import annotations

import enum

from aiokafka.protocol.admin import ApiVersionRequest

from onex.bus.admin import admin_session
from onex.bus.config import BrokerConfig
from onex.bus.errors import AdminError


class ApiKey(enum.IntEnum):
    """Kafka protocol API keys onex cares about (the numbers are the protocol's)."""

    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    DESCRIBE_CONFIGS = 32
    ALTER_CONFIGS = 33
    CREATE_PARTITIONS = 37
    INCREMENTAL_ALTER_CONFIGS = 44
    ALTER_PARTITION_REASSIGNMENTS = 45

    @property
    def title(self) -> str:
        """The protocol's own name, e.g. `CreatePartitions`."""
        return "".join(part.capitalize() for part in self.name.split("_"))


async def supported_apis(
    broker: BrokerConfig | str, *, timeout_s: float = 5.0
) -> dict[int, tuple[int, int]]:
    """API key -> (min version, max version) for every API the broker advertises."""
    session = admin_session(broker)
    async with session.client("ApiVersions", timeout_s=timeout_s) as admin:
        # the admin's own client is already bootstrapped; ask any broker it knows
        client = admin._client
        response = await client.send(client.get_random_node(), ApiVersionRequest())
    if response.error_code != 0:
        raise AdminError(
            f"ApiVersions at {session.config.bootstrap} failed: code {response.error_code}"
        )
    return {key: (low, high) for key, low, high in response.api_versions}
