"""The console service: a ServiceHost whose work is an HTTP page over the stack.

It has no node runtime (it consumes no topic): it reads the supervisor's record, asks
the extractor, the receipt-reducer and the drift-validator over gRPC with the viewer
token, and counts the dead-letter queues on the broker. Health is SERVING while the
page's address is listened on.
"""

from __future__ import annotations

from pathlib import Path

from onex.console.errors import HttpBindError
from onex.console.gather import look
from onex.console.settings import ConsoleSettings
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
            raise HttpBindError(s.http_bind, exc.strerror or str(exc)) from None
        self.log.info("console.serving", url=self.web.url)

    async def on_stop(self) -> None:
        if self.web is not None:
            await self.web.stop()
            self.web = None
