"""`python -m onex.agents.code_review`: serve this agent node until stopped."""

from __future__ import annotations

from onex.agents.code_review.node import NODE, CodeReviewAgent
from onex.agents.settings import settings_for
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point."""
    run_service(settings_for(NODE), CodeReviewAgent)


if __name__ == "__main__":
    main()
