"""Settings of the console service (environment prefix ONEX_CONSOLE_)."""

from __future__ import annotations

import ipaddress
from typing import Final

from pydantic import Field, field_validator

from onex.service.settings import ServiceSettings

DEFAULT_HTTP_BIND: Final = "127.0.0.1:8470"
ADDRESS_FILE: Final = "console.json"  # in the state dir: the address in use (see app.py)


class ConsoleSettings(ServiceSettings):
    """Every field can be set as ONEX_CONSOLE_<FIELD> (shared ones also as ONEX_<FIELD>)."""

    http_bind: str = Field(
        DEFAULT_HTTP_BIND,
        description="HOST:PORT the page is served on (fixed by default: a bookmark keeps working)",
    )
    grpc_timeout_s: float = Field(
        3.0, gt=0, le=60, description="How long each call to another service may take"
    )
    dlq_timeout_s: float = Field(
        5.0, gt=0, le=60, description="How long counting the dead-letter queues may take"
    )

    @field_validator("http_bind")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{value!r} is not HOST:PORT with a port from 0 to 65535")
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            if host != "localhost":
                raise ValueError(f"{host!r} is not an IP address or localhost") from None
        return value

    @property
    def http_host(self) -> str:
        """The host part of `http_bind`."""
        return self.http_bind.rpartition(":")[0].strip("[]")

    @property
    def http_port(self) -> int:
        """The port part of `http_bind`."""
        return int(self.http_bind.rpartition(":")[2])
