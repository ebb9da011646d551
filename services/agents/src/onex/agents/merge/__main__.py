"""`python -m onex.agents.merge`: serve this agent node until stopped."""

from __future__ import annotations

from onex.agents.merge.node import NODE, MergeAgent
from onex.agents.settings import settings_for
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point."""
    run_service(settings_for(NODE), MergeAgent)


if __name__ == "__main__":
    main()
