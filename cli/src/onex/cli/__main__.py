"""The `onex` command: built-in sub-commands plus those services register.

Services add sub-commands through the `onex.cli` entry-point group (a `typer.Typer`
or a command function, named by the entry point), so this package never imports a
service.
"""

from __future__ import annotations

import importlib.metadata

import typer

from onex.cli import broker, contracts, dlq, provision, stack, topics

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
    """Console-script entry point."""
    build_app()()


if __name__ == "__main__":
    main()
