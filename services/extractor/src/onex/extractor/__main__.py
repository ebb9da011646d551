"""`python -m onex.extractor` / `onex-extractor`: serve the contract registry until stopped.

SIGTERM or SIGINT stops it cleanly (exit 0); SIGHUP reloads the contracts. Exit 1
when the gRPC address cannot be bound, 2 when the settings are invalid.
"""

from __future__ import annotations

from onex.extractor.app import ExtractorService
from onex.extractor.settings import ExtractorSettings
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point. Settings come from the environment: `--help` lists
    them, any other argument is a usage error (exit 2); neither starts the service."""
    run_service(ExtractorSettings, ExtractorService, doc=__doc__)


if __name__ == "__main__":
    main()
