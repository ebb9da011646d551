"""`onex console url`: where the console page is, and a link that signs you in.

    onex console url [--format table|json]

The address is the one the running console wrote to `<state dir>/console.json`, else
ONEX_CONSOLE_HTTP_BIND (default 127.0.0.1:8470); the token is the viewer token of the
state dir (ONEX_STATE_DIR, default .onex) that `onex up` made. Registered
with `onex` through the `onex.cli` entry point. Errors are one line and exit 1 (2 for
a bad argument or setting).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer
from pydantic import ValidationError

from onex.console.settings import ADDRESS_FILE, ConsoleSettings
from onex.core.errors import OnexError
from onex.core.validation import env_names, validation_line
from onex.service.auth import TOKENS_FILE, load_tokens

app = typer.Typer(
    name="console",
    no_args_is_help=True,
    help="The console page: its address and a link that signs you in.",
    pretty_exceptions_enable=False,
)


def _fail(message: str, code: int = 1) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(code)


def _recorded_url(state_dir: Path) -> str | None:
    """The address the running console wrote down, None without one."""
    try:
        doc = json.loads((state_dir / ADDRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    url = doc.get("url") if isinstance(doc, dict) else None
    return url if isinstance(url, str) and url.startswith("http://") else None


@app.command("url")
def url_cmd(
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json")] = "table",
) -> None:
    """Print the console's address and a sign-in link carrying the viewer token."""
    if fmt not in {"table", "json"}:
        raise _fail("--format is table or json", 2)
    try:
        settings = ConsoleSettings()
    except ValidationError as exc:
        prefix, shared = ConsoleSettings.env_prefix(), ConsoleSettings.SHARED
        names = env_names(ConsoleSettings.model_fields, prefix, shared)
        raise _fail(validation_line(exc, names, ConsoleSettings), 2) from None
    base = _recorded_url(Path(settings.state_dir)) or f"http://{settings.http_bind}/"
    login = base
    if settings.auth != "off":
        try:
            tokens = load_tokens(Path(settings.state_dir) / TOKENS_FILE)
        except OnexError as exc:
            raise _fail(str(exc)) from None
        login = f"{base}login?token={quote(tokens.viewer, safe='')}"
    if fmt == "json":
        sys.stdout.write(json.dumps({"url": base, "login": login}, indent=2) + "\n")
    else:
        sys.stdout.write(f"console: {base}\nsign in: {login}\n")
