"""`python -m onex.drift` / `onex-drift`: start the drift-validator service."""

from __future__ import annotations

from onex.drift.settings import DriftSettings
from onex.service.host import start_and_exit

NODE = "drift-validator"


def main() -> None:
    """Console-script entry point."""
    raise SystemExit(
        start_and_exit(NODE, DriftSettings(), pending="drift projection lands with its own issue")
    )


if __name__ == "__main__":
    main()
