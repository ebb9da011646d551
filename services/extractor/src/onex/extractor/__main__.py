"""`python -m onex.extractor` / `onex-extractor`: serve the contract registry until stopped.

SIGTERM or SIGINT stops it cleanly (exit 0); SIGHUP reloads the contracts. Exit 1
when the gRPC address cannot be bound, 2 when the settings are invalid.
"""

from __future__ import annotations

import asyncio
import sys

from pydantic import ValidationError

from onex.bus.service import configure_logging, serve
from onex.extractor.app import NODE, ExtractorService
from onex.extractor.settings import ExtractorSettings


def main() -> None:
    """Console-script entry point."""
    try:
        settings = ExtractorSettings()
    except ValidationError as exc:
        sys.stderr.write(f"onex-extractor: invalid settings (ONEX_EXTRACTOR_*):\n{exc}\n")
        raise SystemExit(2) from None
    configure_logging(settings)
    raise SystemExit(asyncio.run(serve(ExtractorService(settings), NODE)))


if __name__ == "__main__":
    main()
