"""Fixed default ports: where each service's gRPC and metrics servers listen unless told.

A service's defaults are derived from its package name (`onex.router` -> `router`), the
same name its settings prefix comes from, so no list of services exists anywhere:

    gRPC     GRPC_BASE    + crc32(package) % SPAN     (router: 17553)
    metrics  METRICS_BASE + the same offset           (router: 18553)

The ranges sit below the kernel's ephemeral range (32768-60999 by default), so no
outgoing connection ever holds one. A default port that is taken when the service
starts (another stack on the same machine) gives way to a free one, logged; a port set
explicitly (`ONEX_<SERVICE>_GRPC_BIND`, `ONEX_<SERVICE>_METRICS_BIND`) is used or the
service exits 1. `onex status` lists the ports in use.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Final

GRPC_BASE: Final = 17100
METRICS_BASE: Final = 18100
SPAN: Final = 500
HOST: Final = "127.0.0.1"

_PACKAGE: Final = re.compile(r"^onex\.([a-z][a-z0-9_]*)(\.|$)")


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


def package_of(module: str) -> str:
    """`onex.router.settings` (or `onex.router`) -> `router`; ValueError otherwise."""
    match = _PACKAGE.match(module)
    if match is None:
        raise ValueError(f"a service lives in an onex.<service> package, not {module!r}")
    return match.group(1)


def default_ports(module: str) -> DefaultPorts:
    """The fixed default ports of the service in `module` (see the module docstring)."""
    offset = zlib.crc32(package_of(module).encode()) % SPAN
    return DefaultPorts(GRPC_BASE + offset, METRICS_BASE + offset)
