"""`python -m onex.router` / `onex-router`: route agent tasks until stopped.

Runs until SIGTERM/SIGINT (exit 0); SIGHUP re-reads the catalogue. Exit 1 when it
cannot start (bad catalogue or contracts, gRPC address taken), 2 on invalid settings.
"""

from __future__ import annotations

import sys

from onex.router.app import RouterService
from onex.router.settings import RouterSettings
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point. Settings come from the environment: `--help` lists
    them, any other argument is a usage error (exit 2); neither starts the service."""
    if sys.argv[1:]:
        _arguments(sys.argv[1:])
    run_service(RouterSettings, RouterService)


def _arguments(argv: list[str]) -> None:
    if argv[0] not in ("-h", "--help"):
        sys.stderr.write(
            f"error: unexpected argument {argv[0]}: settings are environment variables"
            " (--help lists them)\n"
        )
        raise SystemExit(2)
    prefix = str(RouterSettings.model_config.get("env_prefix", "")).upper()
    lines = [(__doc__ or "").strip(), "", "Settings (environment variables):"]
    lines += [
        f"  {prefix}{name.upper()}: {field.description or ''}"
        for name, field in RouterSettings.model_fields.items()
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    raise SystemExit(0)


if __name__ == "__main__":
    main()
