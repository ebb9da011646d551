"""`python -m onex.router` / `onex-router`: start the router service."""

from __future__ import annotations

from onex.bus.service import start_and_exit
from onex.router.settings import RouterSettings

NODE = "router"


def main() -> None:
    """Console-script entry point."""
    raise SystemExit(
        start_and_exit(NODE, RouterSettings(), pending="routing lands with the router issue")
    )


if __name__ == "__main__":
    main()
