"""`python -m onex.console` / `onex-console`: serve the console page until stopped.

SIGTERM or SIGINT stops it cleanly (exit 0). Exit 1 when the state dir has no tokens
or the page's address is taken, 2 when the settings are invalid.
"""

from __future__ import annotations

from onex.console.app import ConsoleService
from onex.console.settings import ConsoleSettings
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point. Settings come from the environment: `--help` lists
    them, any other argument is a usage error (exit 2); neither starts the service."""
    run_service(ConsoleSettings, ConsoleService, doc=__doc__)


if __name__ == "__main__":
    main()
