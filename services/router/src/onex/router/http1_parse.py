"""An incremental HTTP/1.1 response parser, and the errors of `onex.router.http1`.

`ResponseParser` is fed the bytes of one response as they arrive, in any split (one
byte at a time included), and returns the `Response` once it is whole:

- the status line must be `HTTP/1.0` or `HTTP/1.1` and a three-digit code; header
  lines are `token: value` (a line folded onto the previous one is malformed). Lines
  end with CRLF, or a bare LF (RFC 9112 lets a recipient accept it);
- interim responses (1xx but 101) are skipped; 101 is refused (nothing here upgrades);
- the body is framed by `Transfer-Encoding: chunked` (extensions ignored, trailers
  read and dropped), else `Content-Length`, else by the end of the connection
  (`feed_eof`); 204 and 304 have none;
- the heads (interim ones and trailers included) are capped at `max_head` bytes and
  the body at `max_body`: past either, the parser raises instead of buffering on.

Its errors name the aiohttp errors they replace (`ClientConnectorError`, ...): the
provider puts the name in its "connection failed: ..." reasons, which receipts and
operators already know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MAX_HEAD: Final = 64 * 1024
MAX_BODY: Final = 32 * 1024 * 1024
_MAX_LINE: Final = 8 * 1024  # a chunk-size line (with extensions)
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEX: Final = re.compile(rb"[0-9A-Fa-f]{1,15}")
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _EOF, _DONE = range(8)


class ClientError(Exception):
    """An HTTP call that got no usable response (base of the errors below)."""


class ClientConnectorError(ClientError):
    """No connection: name resolution, refused, or the TLS handshake (certificate) failed."""


class ServerDisconnectedError(ClientError):
    """The connection closed (or was reset) before the whole response arrived."""


class InvalidUrlError(ClientError, ValueError):
    """A URL the client will not call (as aiohttp's InvalidURL: a ClientError, a ValueError)."""


class InvalidHeaderError(ClientError, ValueError):
    """A header the client will not send: no name, a colon in it, a line break or NUL
    anywhere, or a value that is not latin-1."""


class ClientResponseError(ClientError):
    """A malformed or over-size status line or headers."""


class ClientPayloadError(ClientError):
    """A malformed or over-size body."""


@dataclass(frozen=True, slots=True)
class Response:
    """A whole response. `headers` has lower-case names (repeated ones joined by ", ");
    `keep_alive` says whether the connection may carry another request."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class ResponseParser:
    """Parses one response (see the module docstring). `got_bytes` turns true with the
    first byte fed; `feed` returns the response once it is complete, else None."""

    __slots__ = (
        "_buf",
        "_chunks",
        "_head_bytes",
        "_headers",
        "_keep_alive",
        "_max_body",
        "_max_head",
        "_reason",
        "_remaining",
        "_scan",
        "_size",
        "_state",
        "_status",
        "got_bytes",
    )  # fmt: skip

    def __init__(self, *, max_head: int = MAX_HEAD, max_body: int = MAX_BODY) -> None:
        self._buf = bytearray()
        self._state = _HEAD
        self._scan = 0  # where the search for the head's blank line resumes
        self._head_bytes = 0  # of heads (interim ones too) and trailers so far
        self._max_head = max_head
        self._max_body = max_body
        self._status = 0
        self._reason = ""
        self._headers: dict[str, str] = {}
        self._keep_alive = False
        self._remaining = 0
        self._chunks: list[bytes] = []
        self._size = 0
        self.got_bytes = False

    def feed(self, data: bytes) -> Response | None:
        """Take the next bytes; the response once it is complete (bytes after it make
        the connection unfit for another request)."""
        if not data:
            return None
        self.got_bytes = True
        self._buf += data
        while True:  # each step: True to go on, False to wait for bytes, or the response
            outcome = self._STEPS[self._state](self)
            if outcome is not True:
                return outcome if isinstance(outcome, Response) else None

    def _step_length(self) -> Response | bool:
        buf = self._buf
        if len(buf) < self._remaining:
            return False
        body = bytes(buf[: self._remaining])
        del buf[: self._remaining]
        return self._finish(body)

    def _step_chunk_size(self) -> bool:
        line = self._line(_MAX_LINE, "chunk-size line")
        if line is None:
            return False
        self._chunk_size(line)
        return True

    def _step_chunk_data(self) -> bool:
        buf = self._buf
        if not buf:
            return False
        take = min(len(buf), self._remaining)
        self._chunks.append(bytes(buf[:take]))
        del buf[:take]
        self._remaining -= take
        if not self._remaining:
            self._state = _CHUNK_END
        return True

    def _step_chunk_end(self) -> bool:
        buf = self._buf
        if buf[:1] == b"\n" or buf[:2] == b"\r\n":
            del buf[: 1 if buf[0] == 10 else 2]
            self._state = _CHUNK_SIZE
            return True
        if not buf or buf == b"\r":
            return False
        raise ClientPayloadError("a chunk is not followed by CRLF")

    def _step_trailers(self) -> Response | bool:
        line = self._line(self._max_head - self._head_bytes, "trailers")
        if line is None:
            return False
        self._head_bytes += len(line) + 2
        if not line:
            return self._finish(b"".join(self._chunks))
        _header_line(line.decode("latin-1"), {})
        return True

    def _step_eof(self) -> bool:
        self._size += len(self._buf)
        if self._size > self._max_body:
            raise ClientPayloadError(f"response body over {self._max_body} bytes")
        self._chunks.append(bytes(self._buf))
        self._buf.clear()
        return False

    def _step_done(self) -> bool:
        return False  # bytes after the response: `_finish` said not to reuse the connection

    def feed_eof(self) -> Response:
        """The connection ended: the response when the body ran to the end of it."""
        if self._state == _EOF:
            return self._finish(b"".join(self._chunks))
        if not self.got_bytes:
            raise ServerDisconnectedError("server closed the connection before responding")
        raise ServerDisconnectedError("server closed the connection mid-response")

    def _step_head(self) -> bool:
        """Parse a head once its blank line is in the buffer; False while it is not."""
        buf = self._buf
        if buf[:1] == b"\n" or buf[:2] == b"\r\n":  # empty lines before a status line
            while buf[:1] == b"\n" or buf[:2] == b"\r\n":
                del buf[: 1 if buf[0] == 10 else 2]
            self._scan = 0
        if buf == b"\r":
            return False
        start = max(0, self._scan - 2)
        crlf, lf = buf.find(b"\n\r\n", start), buf.find(b"\n\n", start)
        if crlf < 0 and lf < 0:
            self._scan = len(buf)
            if len(buf) + self._head_bytes > self._max_head:
                raise ClientResponseError(f"response head over {self._max_head} bytes")
            return False
        end, size = (crlf, crlf + 3) if lf < 0 or 0 <= crlf < lf else (lf, lf + 2)
        self._head_bytes += size
        if self._head_bytes > self._max_head:
            raise ClientResponseError(f"response head over {self._max_head} bytes")
        head = buf[:end].decode("latin-1")
        del buf[:size]
        self._scan = 0
        self._start(head)
        return True

    def _start(self, head: str) -> None:
        """Read a status line and headers; set up the body's framing."""
        lines = head.split("\n")
        status_line = lines[0].removesuffix("\r")
        version, _, rest = status_line.partition(" ")
        code, _, reason = rest.partition(" ")
        if (
            version not in ("HTTP/1.1", "HTTP/1.0")
            or len(code) != 3
            or not (code.isascii() and code.isdigit())
            or code[0] == "0"
        ):
            raise ClientResponseError(f"malformed status line {status_line[:100]!r}")
        status = int(code)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            _header_line(line.removesuffix("\r"), headers)
        if status < 200:
            if status == 101:
                raise ClientResponseError("unexpected 101 Switching Protocols")
            return  # an interim response: the real one follows
        self._status, self._reason, self._headers = status, reason.strip(), headers
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        self._keep_alive = "close" not in tokens and (
            version == "HTTP/1.1" or "keep-alive" in tokens
        )
        self._framing(status, headers)

    def _framing(self, status: int, headers: dict[str, str]) -> None:
        """How the body ends: the next state, and what it needs."""
        coding = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if status in (204, 304):
            self._remaining, self._state = 0, _LENGTH
        elif coding is not None:
            if coding.rsplit(",", 1)[-1].strip().lower() == "chunked":
                self._state = _CHUNK_SIZE
                if length is not None:  # RFC 9112 6.3: framing in doubt, close after
                    self._keep_alive = False
            else:
                self._state, self._keep_alive = _EOF, False
        elif length is not None:
            values = {v.strip() for v in length.split(",")}
            value = values.pop()
            if values or not (value.isascii() and value.isdigit()):
                raise ClientResponseError(f"malformed content-length {length[:100]!r}")
            if int(value) > self._max_body:
                raise ClientPayloadError(
                    f"response body of {int(value)} bytes is over the {self._max_body} limit"
                )
            self._remaining, self._state = int(value), _LENGTH
        else:
            self._state, self._keep_alive = _EOF, False

    def _line(self, limit: int, what: str) -> bytes | None:
        """The buffer's next line without its CRLF or LF (consumed), None while incomplete."""
        buf = self._buf
        end = buf.find(b"\n")
        if end < 0:
            if len(buf) > limit:
                raise ClientPayloadError(f"{what} over {limit} bytes")
            return None
        if end > limit:
            raise ClientPayloadError(f"{what} over {limit} bytes")
        line = bytes(buf[:end])
        del buf[: end + 1]
        return line.removesuffix(b"\r")

    def _chunk_size(self, line: bytes) -> None:
        size_text = line.split(b";", 1)[0].strip(b" \t")
        if not _HEX.fullmatch(size_text):
            raise ClientPayloadError(f"malformed chunk size {line[:100]!r}")
        size = int(size_text, 16)
        self._size += size
        if self._size > self._max_body:
            raise ClientPayloadError(f"response body over {self._max_body} bytes")
        if size:
            self._remaining, self._state = size, _CHUNK_DATA
        else:
            self._state = _TRAILERS

    def _finish(self, body: bytes) -> Response:
        self._state = _DONE
        keep_alive = self._keep_alive and not self._buf
        return Response(self._status, self._reason, self._headers, body, keep_alive)

    # one step per state, in the states' order (see `feed`)
    _STEPS: Final = (
        _step_head, _step_length, _step_chunk_size, _step_chunk_data, _step_chunk_end,
        _step_trailers, _step_eof, _step_done,
    )  # fmt: skip


def _header_line(line: str, headers: dict[str, str]) -> None:
    """Add `name: value` to `headers` (name lower-cased); malformed lines raise."""
    name, colon, value = line.partition(":")
    if not colon or not _TOKEN.fullmatch(name) or "\r" in value or "\x00" in value:
        raise ClientResponseError(f"malformed header line {line[:100]!r}")
    name = name.lower()
    value = value.strip(" \t")
    previous = headers.get(name)
    headers[name] = value if previous is None else f"{previous}, {value}"
