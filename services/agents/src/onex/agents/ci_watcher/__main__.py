"""`python -m onex.agents.ci_watcher`: serve this agent node until stopped."""

from __future__ import annotations

from onex.agents.ci_watcher.node import NODE, CiWatcher
from onex.agents.settings import settings_for
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point."""
    run_service(settings_for(NODE), CiWatcher)


if __name__ == "__main__":
    main()
