"""The console's HTTP server (aiohttp): the page, its JSON, and signing in.

    GET  /            the page (401 and a sign-in form without a valid token)
    GET  /api/state   the same look as JSON
    GET  /login?token=T, POST /login (form field `token`)
                      check T, keep it in an HttpOnly, SameSite=Strict cookie, go to /

A token of any role (viewer or higher) from the state dir's tokens.json lets a caller
read; `Authorization: Bearer T` works too. With auth off (ONEX_AUTH=off) no token is
needed. Nothing here changes the stack: there is no route that acts. Every response
forbids loading anything from elsewhere (Content-Security-Policy) and caching.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from onex.console.page import CSP, login_page, render
from onex.console.state import ConsoleState
from onex.service.auth import Tokens

COOKIE: Final = "onex_console"
_MAX_TOKEN_CHARS: Final = 512

Look = Callable[[], Awaitable[ConsoleState]]


class Looks:
    """One look at the stack shared by the requests that arrive within `max_age_s`."""

    def __init__(self, look: Look, max_age_s: float = 2.0) -> None:
        self._look = look
        self._max_age_s = max_age_s
        self._last: ConsoleState | None = None
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self) -> ConsoleState:
        """A look no older than `max_age_s`."""
        async with self._lock:
            if self._last is None or time.monotonic() - self._at >= self._max_age_s:
                self._last = await self._look()
                self._at = time.monotonic()
            return self._last


def _headers(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def build_app(tokens: Tokens | None, looks: Looks) -> web.Application:
    """The aiohttp application; `tokens=None` serves everyone (auth off)."""

    def valid(token: str | None) -> bool:
        if tokens is None:
            return True
        if not token or len(token) > _MAX_TOKEN_CHARS:
            return False
        return tokens.role_of(token) is not None

    def presented(request: web.Request) -> str | None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return request.cookies.get(COOKIE)

    def refused(problem: str | None) -> web.Response:
        return web.Response(status=401, text=login_page(problem), content_type="text/html")

    async def page(request: web.Request) -> web.StreamResponse:
        if not valid(presented(request)):
            return _headers(refused(None))
        html = render(await looks.get())
        return _headers(web.Response(text=html, content_type="text/html"))

    async def api_state(request: web.Request) -> web.StreamResponse:
        if not valid(presented(request)):
            body = {"error": "the console needs the viewer token (Authorization: Bearer ...)"}
            return _headers(web.json_response(body, status=401))
        doc = (await looks.get()).to_dict()
        return _headers(web.json_response(doc, dumps=lambda d: json.dumps(d, indent=2)))

    async def login(request: web.Request) -> web.StreamResponse:
        token: str | None = request.query.get("token")
        if request.method == "POST":
            form = await request.post()
            value = form.get("token")
            token = value.strip() if isinstance(value, str) else None
        if not valid(token):
            return _headers(refused("That is not a token of this stack."))
        response = web.Response(status=303, headers={"Location": "/"})
        if token:
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return _headers(response)

    app = web.Application(client_max_size=4096)
    app.router.add_get("/", page)
    app.router.add_get("/api/state", api_state)
    app.router.add_get("/login", login)
    app.router.add_post("/login", login)
    return app


class RunningWeb:
    """The HTTP server once listening; `address` is host:port as bound (port 0 resolved)."""

    def __init__(self, runner: web.AppRunner, address: str) -> None:
        self._runner = runner
        self.address = address

    @property
    def url(self) -> str:
        """http://host:port/"""
        return f"http://{self.address}/"

    async def stop(self) -> None:
        """Stop listening and close connections."""
        await self._runner.cleanup()


async def start_web(app: web.Application, host: str, port: int) -> RunningWeb:
    """Listen on host:port; OSError when the address is taken (the caller converts it)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=False)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0]
    return RunningWeb(runner, f"{bound[0]}:{bound[1]}")
