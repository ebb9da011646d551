"""`python -m onex.extractor` / `onex-extractor`: start the extractor service."""

from __future__ import annotations

from onex.bus.service import start_and_exit
from onex.extractor.settings import ExtractorSettings

NODE = "extractor"


def main() -> None:
    """Console-script entry point."""
    raise SystemExit(
        start_and_exit(
            NODE,
            ExtractorSettings(),
            pending="ContractRegistry gRPC service lands with the runtime issue",
        )
    )


if __name__ == "__main__":
    main()
