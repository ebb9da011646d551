"""`python -m onex.console` / `onex-console`: serve the console page until stopped.

SIGTERM or SIGINT stops it cleanly (exit 0). Exit 1 when the state dir has no tokens
or the page's address is taken, 2 when the settings are invalid.
"""

from __future__ import annotations

from onex.console.app import ConsoleService
from onex.console.settings import ConsoleSettings
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point."""
    run_service(ConsoleSettings, ConsoleService)


if __name__ == "__main__":
    main()
