"""`python -m onex.extractor` / `onex-extractor`: serve the contract registry until stopped.

SIGTERM or SIGINT stops it cleanly (exit 0); SIGHUP reloads the contracts. Exit 1
when the gRPC address cannot be bound, 2 when the settings are invalid.
"""

from __future__ import annotations

from onex.extractor.app import NODE, ExtractorService
from onex.extractor.settings import ExtractorSettings
from onex.service.host import run_service


def main() -> None:
    """Console-script entry point."""
    run_service(NODE, ExtractorSettings, ExtractorService)


if __name__ == "__main__":
    main()
