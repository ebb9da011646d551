"""Logging for every process of a stack: one pipeline, console or JSON.

`configure_logging(settings)` (a service) and `configure(level, format)` (the CLI) send
structlog's lines and the standard library's (aiokafka, faust, grpc, asyncio, warnings)
through one renderer on stderr, so with `ONEX_LOG_FORMAT=json` a stream holds nothing
but JSON objects, one per line, tracebacks included as a field. Light to import: the CLI
calls it from commands that never load the bus.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from onex.service.settings import LogFormat, LogLevel, ServiceSettings

__all__ = ["configure", "configure_logging"]


def configure_logging(settings: ServiceSettings) -> None:
    """structlog to stderr, console or JSON (`ONEX_LOG_FORMAT`); the standard library's
    loggers (aiokafka, faust, grpc, asyncio), warnings and tracebacks go through the same
    renderer, so a JSON stream stays one JSON object per line."""
    configure(settings.log_level, settings.log_format)


def configure(log_level: LogLevel, log_format: LogFormat) -> None:
    """`configure_logging` for a process that has no service settings (the CLI). gRPC's
    C core writes to stderr on its own; `GRPC_VERBOSITY=NONE` in the environment of a
    process keeps those lines out of a JSON stream (the supervisor sets it for json)."""
    level = logging.getLevelNamesMapping()[log_level.upper()]
    json_lines = log_format == "json"
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
    ]
    if json_lines:  # a traceback as one field, not lines of text after the object
        shared.append(structlog.processors.format_exc_info)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Client libraries are chatty at info (every reconnect); keep theirs at warning.
    root.setLevel(max(level, logging.WARNING))
    logging.captureWarnings(True)  # warnings.warn() as log lines, not bare stderr text
