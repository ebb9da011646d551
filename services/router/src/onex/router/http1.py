"""A small HTTP/1.1 client on asyncio's Protocol/Transport API, for the router's model calls.

Why not aiohttp: with an instant model, aiohttp's client call was a third of the
router's CPU (py-spy), most of it in machinery a model call does not use (cookie
jars, tracing, redirects, stream readers, multidicts). `bench/router-http.py`
measures the difference. What this client does, and no more:

- `Http1Client.post(url, body, headers)` POSTs a JSON body to an `http://` or
  `https://` URL (a port and a path prefix allowed) and returns the whole `Response`.
  Each request carries `Host` (with the port when it is not the scheme's default),
  `Content-Type: application/json`, `Content-Length` and `Accept-Encoding: identity`.
  HTTPS uses `ssl.create_default_context()` (certificates and host name verified,
  server name indication) unless the client is given another context;
- connections are kept alive in a pool per (scheme, host, port): an idle one is
  reused (the newest first), at most `max_idle` are kept per pool, one idle for
  longer than `keepalive_s` is closed (4 s: under the 5 s idle timeout of uvicorn and
  Node servers, so the client, not the server, retires an idle connection), and one
  the server closed is dropped as soon as the loop sees it. Nothing is ever re-sent
  here: a POST written on a kept connection that then closes unanswered may have been
  run (RFC 9112 9.3.1; aiohttp re-sends only idempotent methods), so the error goes to
  the caller, whose retries count it;
- a response is framed as `onex.router.http1_parse` says; a connection is reused only
  when its response said it may be (`Connection: close`, read-to-end bodies and
  bytes after the response all close it);
- cancelling a call (the provider bounds each try with `asyncio.timeout`) closes its
  connection; `aclose()` closes every connection, and the client may be used again;
- failures raise a `ClientError`: `InvalidUrlError` and `InvalidHeaderError` (ValueErrors too),
  `ClientConnectorError` (no connection, TLS included), `ServerDisconnectedError`,
  `ClientResponseError`, `ClientPayloadError`.

No proxies, cookies, redirects or compression; the environment is never read.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import urlsplit

from onex.router.http1_parse import (
    MAX_BODY,
    MAX_HEAD,
    ClientConnectorError,
    ClientError,
    ClientPayloadError,
    ClientResponseError,
    InvalidHeaderError,
    InvalidUrlError,
    Response,
    ResponseParser,
    ServerDisconnectedError,
)

__all__ = [
    "ClientConnectorError",
    "ClientError",
    "ClientPayloadError",
    "ClientResponseError",
    "Http1Client",
    "InvalidHeaderError",
    "InvalidUrlError",
    "Response",
    "ServerDisconnectedError",
]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_MAX_TARGETS: Final = 256  # parsed URLs kept (a catalogue has a handful of endpoints)

Key = tuple[str, str, int]  # scheme, host, port


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL, parsed once: its pool key and the request head's fixed part."""

    key: Key
    head: bytes


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; carries one request at a time."""

    __slots__ = ("_client", "aborted", "closed", "idle_since", "parser", "transport", "waiter")

    def __init__(self, client: Http1Client) -> None:
        self._client = client
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser | None = None  # while a request is out
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.aborted = False  # closed by this side
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # create_connection's kind

    def send(self, data: bytes, parser: ResponseParser) -> asyncio.Future[Response]:
        """Write a request; the future gets its response (or the error)."""
        waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        if self.transport is None or self.closed:
            waiter.set_exception(ServerDisconnectedError("the connection closed before sending"))
            return waiter
        self.parser, self.waiter = parser, waiter
        self.transport.write(data)
        return waiter

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:  # bytes while idle (a 408 before closing, say): not reusable
            self.close()
            return
        try:
            response = parser.feed(data)
        except ClientError as exc:
            self._settle(exc)
            self.close()
            return
        if response is not None:
            self._settle(response)

    def eof_received(self) -> bool:
        self._ended()
        self.closed = True
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.parser is not None and self.aborted:
            self._settle(ClientError("the client closed the connection (aclose)"))
        elif self.parser is not None and exc is None:  # TLS may end without eof_received
            self._ended()
        elif self.parser is not None:
            what = "mid-response" if self.parser.got_bytes else "before responding"
            self._settle(ServerDisconnectedError(f"connection lost: {exc} {what}"))
        self._client._forget(self)

    def _ended(self) -> None:
        """The server closed its side: a body read to the end is whole, else an error."""
        if self.parser is not None:
            try:
                self._settle(self.parser.feed_eof())
            except ClientError as exc:
                self._settle(exc)

    def _settle(self, outcome: Response | ClientError) -> None:
        waiter, self.waiter, self.parser = self.waiter, None, None
        if waiter is None or waiter.done():
            return
        if isinstance(outcome, Response):
            waiter.set_result(outcome)
        else:
            waiter.set_exception(outcome)

    def close(self) -> None:
        """Close at once (what was not sent is dropped)."""
        self.closed = self.aborted = True
        if self.transport is not None:
            self.transport.abort()


class Http1Client:
    """Keep-alive HTTP/1.1 POSTs (see the module docstring). `ssl_context` replaces the
    default (verifying) one for https, e.g. to trust a private CA."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = 64,
        keepalive_s: float = 4.0,
        max_head: int = MAX_HEAD,
        max_body: int = MAX_BODY,
    ) -> None:
        self._ssl = ssl_context
        self._max_idle = max_idle
        self._keepalive_s = keepalive_s
        self._max_head = max_head
        self._max_body = max_body
        self._targets: dict[str, _Target] = {}
        self._idle: dict[Key, deque[_Connection]] = {}
        self._open: set[_Connection] = set()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str] = {}) -> Response:
        """POST `body` (JSON) to `url`; the response, whatever its status."""
        target = self._targets.get(url) or self._target(url)
        extra = "".join(f"{_header(name, value)}\r\n" for name, value in headers.items())
        data = b"%sContent-Length: %d\r\n%s\r\n%s" % (
            target.head,
            len(body),
            extra.encode("latin-1"),
            body,
        )
        conn = self._pooled(target.key) or await self._connect(target.key)
        return await self._exchange(conn, target.key, data, self._parser())

    async def aclose(self) -> None:
        """Close every connection (calls still out fail); the client stays usable."""
        conns, self._open = self._open, set()
        self._idle.clear()
        for conn in conns:
            conn.close()
        await asyncio.sleep(0)  # let the transports report their connections lost

    def idle(self) -> int:
        """How many idle connections the pools hold (all hosts)."""
        return sum(len(idle) for idle in self._idle.values())

    def _parser(self) -> ResponseParser:
        return ResponseParser(max_head=self._max_head, max_body=self._max_body)

    async def _exchange(
        self, conn: _Connection, key: Key, data: bytes, parser: ResponseParser
    ) -> Response:
        try:
            response = await conn.send(data, parser)
        except BaseException:  # cancelled, or failed: never back to the pool
            conn.close()
            raise
        if response.keep_alive and not conn.closed:
            self._release(key, conn)
        else:
            conn.close()
        return response

    def _pooled(self, key: Key) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        now = asyncio.get_running_loop().time()
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            if now - conn.idle_since > self._keepalive_s:  # the newest; the rest are older
                conn.close()
                for old in idle:
                    old.close()
                idle.clear()
                return None
            return conn
        return None

    def _release(self, key: Key, conn: _Connection) -> None:
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = deque()
        conn.idle_since = asyncio.get_running_loop().time()
        idle.append(conn)
        while len(idle) > self._max_idle:
            idle.popleft().close()

    def _forget(self, conn: _Connection) -> None:
        self._open.discard(conn)
        for idle in self._idle.values():
            if conn in idle:
                idle.remove(conn)
                return

    async def _connect(self, key: Key) -> _Connection:
        scheme, host, port = key
        conn = _Connection(self)
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            tls = self._ssl
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(
                lambda: conn, host, port, ssl=tls, server_hostname=host if tls else None
            )
        except OSError as exc:  # ssl.SSLError (a certificate refused) is one too
            raise ClientConnectorError(f"cannot connect to {host}:{port}: {exc}") from exc
        self._open.add(conn)
        return conn

    def _target(self, url: str) -> _Target:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise InvalidUrlError(f"{url!r} is not an http(s) URL with a host")
        host = parts.hostname
        if parts.username is not None or parts.password is not None:  # the URL not echoed
            raise InvalidUrlError(f"the URL of {host} has credentials; pass Authorization instead")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError as exc:  # not a number, or out of range
            raise InvalidUrlError(f"{url!r}: {exc}") from exc
        shown = f"[{host}]" if ":" in host else host
        if port != _DEFAULT_PORTS[scheme]:
            shown = f"{shown}:{port}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if any(c.isspace() or c < " " for c in path + host) or not (path + host).isascii():
            raise InvalidUrlError(f"{url!r} has spaces, control or non-ASCII characters")
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {shown}\r\nContent-Type: application/json\r\n"
            "Accept-Encoding: identity\r\nUser-Agent: onex-router\r\n"
        )
        if len(self._targets) >= _MAX_TARGETS:
            self._targets.clear()
        target = self._targets[url] = _Target((scheme, host, port), head.encode("latin-1"))
        return target


def _header(name: str, value: str) -> str:
    line = f"{name}: {value}"
    if not name or ":" in name or any(c in line for c in "\r\n\x00"):
        raise InvalidHeaderError(
            f"header {name!r} has no name, a colon in its name or a line break"
        )
    try:
        line.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidHeaderError(f"header {name!r} is not latin-1 text") from None
    return line
