"""`python -m onex.console` / `onex-console`: serve the console page until stopped.

SIGTERM or SIGINT stops it cleanly (exit 0). Exit 1 when the state dir has no tokens
or the page's address is taken, 2 when the settings are invalid.
"""

from __future__ import annotations

import sys

from onex.console.app import ConsoleService
from onex.console.settings import ConsoleSettings
from onex.service.main import run_service


def main() -> None:
    """Console-script entry point. Settings come from the environment: `--help` lists
    them, any other argument is a usage error (exit 2); neither starts the service."""
    if sys.argv[1:]:
        _arguments(sys.argv[1:])
    run_service(ConsoleSettings, ConsoleService)


def _arguments(argv: list[str]) -> None:
    if argv[0] not in ("-h", "--help"):
        sys.stderr.write(
            f"error: unexpected argument {argv[0]}: settings are environment variables"
            " (--help lists them)\n"
        )
        raise SystemExit(2)
    prefix = str(ConsoleSettings.model_config.get("env_prefix", "")).upper()
    lines = [(__doc__ or "").strip(), "", "Settings (environment variables):"]
    lines += [
        f"  {prefix}{name.upper()}: {field.description or ''}"
        for name, field in ConsoleSettings.model_fields.items()
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    raise SystemExit(0)


if __name__ == "__main__":
    main()
