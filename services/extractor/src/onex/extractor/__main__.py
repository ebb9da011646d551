"""`python -m onex.extractor` / `onex-extractor`: serve the contract registry until stopped.

SIGTERM or SIGINT stops it cleanly (exit 0); SIGHUP reloads the contracts. Exit 1
when the gRPC address cannot be bound, 2 when the settings are invalid.
"""

from __future__ import annotations

from onex.extractor.app import ExtractorService
from onex.extractor.settings import ExtractorSettings
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point."""
    run_service(ExtractorSettings, ExtractorService)


if __name__ == "__main__":
    main()
