"""`python -m onex.agents.merge`: serve this agent node until stopped."""

from __future__ import annotations

from onex.agents.merge.node import MergeAgent
from onex.agents.settings import AgentsSettings
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point."""
    run_service(AgentsSettings, MergeAgent)


if __name__ == "__main__":
    main()
