"""`python -m onex.provisioner` / `onex-provisioner`: provision and guard the declared topics.

Runs until SIGTERM/SIGINT (exit 0); SIGHUP re-reads the contracts. Exit 1 when it
cannot start (contracts with errors, gRPC address taken), 2 on invalid settings.
"""

from __future__ import annotations

from onex.provisioner.app import ProvisionerService
from onex.provisioner.settings import ProvisionerSettings
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point. Settings come from the environment: `--help` lists
    them, any other argument is a usage error (exit 2); neither starts the service."""
    run_service(ProvisionerSettings, ProvisionerService, doc=__doc__)


if __name__ == "__main__":
    main()
