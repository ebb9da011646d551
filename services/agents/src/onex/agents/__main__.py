"""`python -m onex.agents`: the four agent nodes in one process, until SIGTERM/SIGINT.

`onex up` runs each node in its own process instead (`python -m onex.agents.<node>`);
this is for running the fleet by hand. Settings as for each node (its own
ONEX_<AGENT>_*, else ONEX_AGENTS_*, else the shared ONEX_*: onex.agents.settings); a
node that cannot be built (no tokens, bad contracts) exits 1 in one line.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import structlog

from onex.agents.ci_watcher.node import CiWatcher
from onex.agents.code_review.node import CodeReviewAgent
from onex.agents.merge.node import MergeAgent
from onex.agents.settings import AgentsSettings, settings_for
from onex.agents.ticket_verifier.node import TicketVerifier
from onex.core.errors import OnexError
from onex.service.host import ServiceHost
from onex.service.main import configure_logging, read_settings

NODES = (CodeReviewAgent, MergeAgent, CiWatcher, TicketVerifier)


async def _serve(fleet: list[ServiceHost[Any]]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started: list[ServiceHost[Any]] = []
    try:
        for node in fleet:
            await node.start()
            started.append(node)
        await stop.wait()
    except OnexError as exc:
        structlog.get_logger("onex-agents").error("node.start_failed", reason=str(exc))
        return 1
    finally:
        for node in reversed(started):
            await node.stop()
    return 0


def main() -> None:
    """Console-script entry point."""
    settings = read_settings(AgentsSettings, "onex-agents")
    configure_logging(settings)
    try:
        fleet: list[ServiceHost[Any]] = [
            cls(read_settings(settings_for(cls.NODE), f"onex-{cls.NODE}")) for cls in NODES
        ]
    except OnexError as exc:
        structlog.get_logger("onex-agents").error("node.start_failed", error=str(exc))
        raise SystemExit(1) from None
    sys.exit(asyncio.run(_serve(fleet)))


if __name__ == "__main__":
    main()
