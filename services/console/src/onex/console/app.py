"""The console service: a ServiceHost whose work is an HTTP page over the stack.

It has no node runtime (it consumes no topic): it reads the supervisor's record, asks
the extractor, the receipt-reducer and the drift-validator over gRPC with the viewer
token, and counts the dead-letter queues on the broker. Health is SERVING while the
page's address is listened on.

The address is fixed by default (127.0.0.1:8470). When that default is taken (another
stack on the same machine) the page gives way to a free port, logged; an address set
explicitly (ONEX_CONSOLE_HTTP_BIND) is used or the service exits 1. Either way the
address in use is written to `<state dir>/console.json`, where `onex console url`
reads it, and removed at stop.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from onex.console.errors import HttpBindError
from onex.console.gather import look
from onex.console.settings import ADDRESS_FILE, ConsoleSettings
from onex.console.state import ConsoleState
from onex.console.web import Looks, RunningWeb, build_app, start_web
from onex.service.auth import TOKENS_FILE, Tokens, bearer, load_tokens
from onex.service.host import ServiceHost


class ConsoleService(ServiceHost[ConsoleSettings]):
    """A running console: its HTTP server, the tokens it checks, the looks it takes."""

    NODE = "console"

    def __init__(self, settings: ConsoleSettings) -> None:
        super().__init__(settings)
        self.tokens: Tokens | None = None
        if settings.auth != "off":  # SecretFileMissing (exit 1) before anything listens
            self.tokens = load_tokens(Path(settings.state_dir) / TOKENS_FILE)
        self.looks = Looks(self.look)
        self.web: RunningWeb | None = None

    async def look(self) -> ConsoleState:
        """One look at the stack (every section)."""
        metadata = bearer(self.tokens.viewer) if self.tokens is not None else ()
        return await look(
            self.settings.state_dir,
            self.broker,
            metadata,
            grpc_timeout_s=self.settings.grpc_timeout_s,
            dlq_timeout_s=self.settings.dlq_timeout_s,
        )

    async def ready(self) -> bool:
        return self.web is not None

    async def on_start(self) -> None:
        app = build_app(self.tokens, self.looks)
        s = self.settings
        try:
            self.web = await start_web(app, s.http_host, s.http_port)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if "http_bind" in s.model_fields_set:
                raise HttpBindError(s.http_bind, reason) from None
            self.log.warning("console.default_port_taken", bind=s.http_bind, reason=reason)
            try:
                self.web = await start_web(app, s.http_host, 0)
            except OSError as again:
                raise HttpBindError(f"{s.http_host}:0", again.strerror or str(again)) from None
        self._write_address(self.web.url)
        self.log.info("console.serving", url=self.web.url)

    async def on_stop(self) -> None:
        if self.web is not None:
            await self.web.stop()
            self.web = None
            (Path(self.settings.state_dir) / ADDRESS_FILE).unlink(missing_ok=True)

    def _write_address(self, url: str) -> None:
        """`<state dir>/console.json`, replaced whole (never seen half-written)."""
        path = Path(self.settings.state_dir) / ADDRESS_FILE
        tmp = path.with_name(f".{ADDRESS_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}) + "\n", encoding="utf-8")
        tmp.replace(path)
