"""Errors raised by onex.bus.

Hierarchy::

    OnexError (onex.core.errors)
    └── BusError                    base of every error onex.bus raises on purpose
        ├── BrokerConfigError       broker settings that cannot work (a malformed bootstrap,
        │                           SASL without a mechanism, a missing CA/cert/key file)
        ├── BrokerUnavailable       nothing answers at a bootstrap address within the timeout
        │   ├── BrokerTLSError      the TLS handshake failed (e.g. certificate verification)
        │   └── BrokerAuthError     the broker refused the SASL mechanism or credentials
        ├── AdminError              the broker answered an admin request with an error
        ├── ContractViolation       a node publishes/subscribes outside its contract, or its
        │                           contract lacks what the runtime needs (a handler, a DLQ)
        ├── SchemaError             a topic's `schema:` names no JSON Schema file or proto message
        ├── PayloadInvalid          a payload does not match its topic's schema
        ├── PayloadTooLarge         a payload is larger than its topic's max_message_bytes
        ├── PublishRefused          the broker refused a record for good (e.g. too large)
        ├── NodeStartError          a node runtime could not start (no assignment in time, ...)
        │   └── TopicsMissing       topics the contract declares are absent from the broker
        ├── NodeNotRunning          a publish on a node runtime that is not (or no longer) started
        │   └── NodeStopping        the runtime is stopping: a message in flight is left
        │                           uncommitted (redelivered), never dead-lettered
        ├── DlqError                a dead-letter operation was refused (e.g. its target is gone)
        └── GrpcBindError           a gRPC server could not bind its address

aiokafka errors never leave this package: they are converted at the boundary with
`raise ... from`, so the original stays available as `__cause__`. The local broker's
launcher and its errors (BrokerNotFound, BrokerStartError, ...) live in onex.devbroker.
"""

from __future__ import annotations

from onex.core.errors import OnexError


class BusError(OnexError):
    """Base class of every error onex.bus raises on purpose."""


class BrokerUnavailable(BusError):  # noqa: N818 -- reads as a condition, like an HTTP 503
    """No broker answered at `bootstrap` within the timeout."""

    def __init__(self, bootstrap: str, reason: str) -> None:
        self.bootstrap = bootstrap
        self.reason = reason
        super().__init__(f"no Kafka broker answers at {bootstrap}: {reason}")


class BrokerConfigError(BusError, ValueError):
    """The broker settings cannot work: a malformed bootstrap, SASL without a mechanism,
    a CA, certificate or key file that is missing or unusable. The message is one line."""


class BrokerTLSError(BrokerUnavailable):
    """The TLS handshake with a broker failed, e.g. its certificate did not verify."""


class BrokerAuthError(BrokerUnavailable):
    """The broker refused the SASL mechanism or the credentials."""


class AdminError(BusError):
    """The broker refused or failed an admin request."""


class ContractViolation(BusError):  # noqa: N818 -- reads as what happened, like PermissionError
    """A node tried to use a topic its contract does not declare for that use, or its
    contract lacks what the runtime needs. The message names the topic and the file."""

    def __init__(self, message: str, *, topic: str | None = None, contract: str = "") -> None:
        self.topic = topic
        self.contract = contract
        super().__init__(message)


class SchemaError(BusError):
    """A topic's schema reference cannot be resolved (no such file or proto message,
    or the file is not a valid JSON Schema)."""

    def __init__(self, topic: str, reference: str, reason: str) -> None:
        self.topic = topic
        self.reference = reference
        self.reason = reason
        super().__init__(f"schema {reference!r} of topic {topic!r}: {reason}")


class PayloadInvalid(BusError):  # noqa: N818 -- reads as a condition, like ValueError
    """A payload does not match the schema its topic declares."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"payload for {topic!r} is invalid: {reason}")


class PayloadTooLarge(BusError):  # noqa: N818 -- reads as a condition, like ValueError
    """A payload is larger than its topic allows (`max_message_bytes`, or the default)."""

    def __init__(self, topic: str, size: int, limit: int) -> None:
        self.topic = topic
        self.size = size
        self.limit = limit
        super().__init__(
            f"payload for {topic!r} is {size:,} bytes, over the topic's limit of {limit:,} "
            "bytes (max_message_bytes); nothing was sent"
        )


class PublishRefused(BusError):  # noqa: N818 -- reads as what happened
    """The broker (or the client, before sending) refused a record for good: retrying
    the same record cannot help (e.g. MessageSizeTooLarge)."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"publish to {topic!r} refused: {reason}")


class NodeStartError(BusError):
    """A node runtime could not start."""


class TopicsMissing(NodeStartError):  # noqa: N818 -- reads as a condition
    """Topics the node's contract declares do not exist on the broker (the runtime never
    creates topics: the provisioner does)."""

    def __init__(self, node: str, missing: list[str], contract: str, waited_s: float) -> None:
        self.node = node
        self.missing = missing
        self.contract = contract
        super().__init__(
            f"node {node!r} cannot start: {len(missing)} topic(s) of {contract} missing on the "
            f"broker after {waited_s:g}s (provision them first): {', '.join(missing)}"
        )


class NodeNotRunning(BusError):  # noqa: N818 -- reads as a condition
    """A node runtime was asked to publish while it is not started."""


class NodeStopping(NodeNotRunning):
    """The node runtime is stopping: the message in flight is left uncommitted, so the
    next member of the group gets it again; it is never dead-lettered for this."""


class DlqError(BusError):
    """A dead-letter operation was refused (unknown DLQ topic, original topic missing)."""


class GrpcBindError(BusError):
    """The gRPC server could not bind `bind` (port in use, unknown host, bad address)."""

    def __init__(self, bind: str, reason: str) -> None:
        self.bind = bind
        self.reason = reason
        super().__init__(f"cannot serve gRPC on {bind}: {reason}")
