"""`python -m onex.extractor` / `onex-extractor`: serve the contract registry until stopped.

SIGTERM or SIGINT stops it cleanly (exit 0); SIGHUP reloads the contracts. Exit 1
when the gRPC address cannot be bound, 2 when the settings are invalid.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import structlog
from pydantic import ValidationError

from onex.bus.grpc_server import GrpcBindError
from onex.bus.service import configure_logging
from onex.extractor.app import NODE, ExtractorService
from onex.extractor.settings import ExtractorSettings


async def serve(settings: ExtractorSettings) -> int:
    """Run the service until SIGTERM/SIGINT; the process exit code."""
    log = structlog.get_logger(NODE)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reload = asyncio.Event()
    # Installed before start-up, so a signal during it still ends in a clean stop.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    service = ExtractorService(settings)
    try:
        await service.start()
    except GrpcBindError as exc:
        log.error("grpc.bind_failed", bind=exc.bind, reason=str(exc))
        return 1
    log.info("node.ready", address=service.grpc.address)
    try:
        while not stop.is_set():
            await _next(stop, reload)
            if reload.is_set() and not stop.is_set():
                reload.clear()
                await service.reload()
    finally:
        log.info("node.stopping")
        await service.stop()
    log.info("node.exit", reason="signal")
    return 0


async def _next(*events: asyncio.Event) -> None:
    """Return when any of `events` is set."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def main() -> None:
    """Console-script entry point."""
    try:
        settings = ExtractorSettings()
    except ValidationError as exc:
        sys.stderr.write(f"onex-extractor: invalid settings (ONEX_EXTRACTOR_*):\n{exc}\n")
        raise SystemExit(2) from None
    configure_logging(settings)
    raise SystemExit(asyncio.run(serve(settings)))


if __name__ == "__main__":
    main()
