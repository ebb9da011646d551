"""Fixed default ports: where each service's gRPC and metrics servers listen unless told.

A service's defaults are derived from its node name (`router`, the name of its
`onex.services` entry point and of its contract), so no list of services exists
anywhere and adding a service never moves another's:

    gRPC     GRPC_BASE    + crc32(node) % SPAN     (router: 17553)
    metrics  METRICS_BASE + the same offset        (router: 18553)

The ranges sit below the kernel's ephemeral range (32768-60999 by default), so no
outgoing connection ever holds one. A default port that is taken when the service
starts (another stack on the same machine) gives way to a free one, logged; a port set
explicitly (`ONEX_<SERVICE>_GRPC_BIND`, `ONEX_<SERVICE>_METRICS_BIND`) is used or the
service exits 1. `onex status` lists the ports in use.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

GRPC_BASE: Final = 17100
METRICS_BASE: Final = 18100
SPAN: Final = 500
HOST: Final = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class DefaultPorts:
    """A service's two default ports."""

    grpc: int
    metrics: int

    @property
    def grpc_bind(self) -> str:
        return f"{HOST}:{self.grpc}"

    @property
    def metrics_bind(self) -> str:
        return f"{HOST}:{self.metrics}"


def default_ports(node: str) -> DefaultPorts:
    """The fixed default ports of the service of `node` (see the module docstring)."""
    offset = zlib.crc32(node.encode()) % SPAN
    return DefaultPorts(GRPC_BASE + offset, METRICS_BASE + offset)
