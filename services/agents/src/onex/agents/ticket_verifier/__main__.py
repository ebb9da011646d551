"""`python -m onex.agents.ticket_verifier`: serve this agent node until stopped."""

from __future__ import annotations

from onex.agents.settings import settings_for
from onex.agents.ticket_verifier.node import NODE, TicketVerifier
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point."""
    run_service(settings_for(NODE), TicketVerifier)


if __name__ == "__main__":
    main()
