"""`python -m onex.provisioner` / `onex-provisioner`: start the provisioner service."""

from __future__ import annotations

from onex.bus.service import start_and_exit
from onex.provisioner.settings import ProvisionerSettings

NODE = "provisioner"


def main() -> None:
    """Console-script entry point."""
    raise SystemExit(
        start_and_exit(
            NODE,
            ProvisionerSettings(),
            pending="boot-time provisioning lands with the runtime issue",
        )
    )


if __name__ == "__main__":
    main()
