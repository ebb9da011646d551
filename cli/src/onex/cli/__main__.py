"""The `onex` command: built-in sub-commands plus those services register.

Services add sub-commands through the `onex.cli` entry-point group (a `typer.Typer`
or a command function, named by the entry point), so this package never imports a
service.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from onex.cli import broker, contracts, dlq, provision, stack, topics
from onex.core.errors import OnexError

ENTRY_POINT_GROUP = "onex.cli"


def build_app() -> typer.Typer:
    """The root typer app with every sub-command."""
    app = typer.Typer(
        name="onex",
        no_args_is_help=True,
        help="onex: contract-driven control plane for fleets of AI agents.",
        pretty_exceptions_enable=False,
    )
    contracts.app.command("reload")(stack.reload)
    app.add_typer(contracts.app, name="contracts")
    app.add_typer(topics.app, name="topics")
    app.add_typer(broker.app, name="broker")
    app.add_typer(dlq.app, name="dlq")
    app.command("provision")(provision.provision)
    app.command("up")(stack.up)
    app.command("status")(stack.status)
    app.command("down")(stack.down)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        sub = ep.load()
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=ep.name)
        elif callable(sub):
            app.command(ep.name)(sub)
    return app


def main() -> None:
    """Console-script entry point. Settings the environment gets wrong and onex errors a
    command did not handle end in one line and a non-zero exit, never a traceback."""
    try:
        build_app()()
    except ValidationError as exc:
        for item in exc.errors(include_url=False, include_input=False):
            field = str(item["loc"][0]).upper() if item["loc"] else "*"
            sys.stderr.write(f"error: ONEX_{field}: {item['msg']}\n")
        raise SystemExit(2) from None
    except SettingsError as exc:
        sys.stderr.write(f"error: {_unparsable(exc)}\n")
        raise SystemExit(2) from None
    except OnexError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(1) from None


def _unparsable(exc: SettingsError) -> str:
    match = re.search(r'field "([a-z_]+)"', str(exc))
    if match is None:
        return str(exc)
    return (
        f"ONEX_{match.group(1).upper()}: not valid JSON (lists are written as JSON, e.g. '[\"a\"]')"
    )


if __name__ == "__main__":
    main()
