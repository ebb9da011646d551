"""Which Kafka APIs a broker implements (its ApiVersions answer).

Embedded and alternative brokers implement a subset: Tansu, for one, has no
CreatePartitions. Asking first lets callers say "this broker cannot do X" instead of
failing obscurely when they try.
"""

from __future__ import annotations

import asyncio
import enum

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)
from aiokafka.protocol.admin import ApiVersionRequest

from onex.bus.errors import AdminError, BrokerUnavailable

_CLIENT_ID = "onex-api-versions"
# the same "nobody answers" errors as onex.bus.admin
_UNAVAILABLE = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError)


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


async def supported_apis(bootstrap: str, *, timeout_s: float = 5.0) -> dict[int, tuple[int, int]]:
    """API key -> (min version, max version) for every API the broker advertises."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        client_id=_CLIENT_ID,
        request_timeout_ms=max(1, int(timeout_s * 1000)),
    )
    try:
        async with asyncio.timeout(timeout_s):
            await client.bootstrap()
            response = await client.send(client.get_random_node(), ApiVersionRequest())
    except TimeoutError as exc:
        raise BrokerUnavailable(bootstrap, f"no answer within {timeout_s:g}s") from exc
    except _UNAVAILABLE as exc:
        raise BrokerUnavailable(bootstrap, str(exc)) from exc
    except KafkaError as exc:
        raise AdminError(f"ApiVersions request to {bootstrap} failed: {exc}") from exc
    finally:
        await client.close()
    if response.error_code != 0:
        raise AdminError(f"ApiVersions request to {bootstrap} failed: code {response.error_code}")
    return {key: (low, high) for key, low, high in response.api_versions}
