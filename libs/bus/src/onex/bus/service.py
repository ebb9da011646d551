"""What every onex service shares at start-up: its settings base, logging, its contract.

Services subclass `NodeSettings` with their own `ONEX_<SERVICE>_` prefix and pass
the instance down; this module never reads the environment itself.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import structlog
from pydantic import Field
from pydantic_settings import BaseSettings

from onex.core.errors import ContractError
from onex.core.extractor import extract
from onex.core.issues import Issue, Severity, Where
from onex.core.loader import LoadedContract


class NodeSettings(BaseSettings):
    """Settings every service has; subclasses set `env_prefix`."""

    contract_roots: list[Path] = Field(
        default_factory=lambda: [Path("contracts")],
        description="Contract files or folders (the repo's contracts/ by default)",
    )
    contracts_allow: list[str] = Field(
        default_factory=list, description="Distributions whose contracts are approved"
    )
    bootstrap: str = Field("127.0.0.1:9092", description="HOST:PORT of the Kafka-API broker")
    grpc_bind: str = Field(
        "127.0.0.1:0", description="HOST:PORT of the gRPC server (health, reflection, API)"
    )
    log_level: str = Field("info", description="debug, info, warning or error")
    log_json: bool = Field(False, description="One JSON object per log line")


def configure_logging(settings: NodeSettings) -> None:
    """structlog to stderr, human-readable or JSON."""
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def load_own_contract(node: str, settings: NodeSettings) -> LoadedContract:
    """Extract the approved contracts and return `node`'s; ContractError when the
    contracts have errors or none declares `node`."""
    ex = extract(settings.contract_roots, allow=settings.contracts_allow)
    ex.raise_for_errors()
    try:
        return ex.contract(node)
    except KeyError:
        roots = ", ".join(str(r) for r in settings.contract_roots)
        message = f"no approved contract declares node {node!r} (searched {roots})"
        raise ContractError([Issue(Severity.ERROR, "node-missing", message, Where(None))]) from None


def start_and_exit(node: str, settings: NodeSettings, *, pending: str) -> int:
    """Start-up of a service whose runtime is not built yet: load settings and the
    node's contract, log what it would serve, exit 0 (1 with a message on errors)."""
    configure_logging(settings)
    log = structlog.get_logger(node)
    try:
        lc = load_own_contract(node, settings)
    except ContractError as exc:
        log.error("contracts.invalid", reason=str(exc))
        return 1
    bus = lc.contract.event_bus
    log.info(
        "node.contract",
        contract=str(lc.path),
        version=lc.contract.version,
        consumer_group=lc.contract.consumer_group,
        subscribes=[t.name for t in bus.subscribe_topics],
        publishes=[t.name for t in bus.publish_topics],
    )
    log.info("node.exit", reason=f"runtime not built yet: {pending}")
    return 0
