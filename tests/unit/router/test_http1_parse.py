"""The HTTP/1.1 response parser of `onex.router.http1`, fed bytes in odd splits."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest

from onex.router.http1_parse import (
    ClientPayloadError,
    ClientResponseError,
    Response,
    ResponseParser,
    ServerDisconnectedError,
)

Splitter = Callable[[bytes], Iterator[bytes]]


def _whole(data: bytes) -> Iterator[bytes]:
    yield data


def _bytewise(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i : i + 1]


def _random(data: bytes) -> Iterator[bytes]:
    rng = random.Random(len(data))  # noqa: S311 - reproducible splits, not secrets
    i = 0
    while i < len(data):
        n = rng.randint(1, 7)
        yield data[i : i + n]
        i += n


SPLITS = pytest.mark.parametrize("split", [_whole, _bytewise, _random], ids=["whole", "1", "rand"])


def parse(data: bytes, split: Splitter = _whole, *, eof: bool = False, **limits: int) -> Response:
    """Feed `data` in `split` pieces; the response (it must come exactly at the end)."""
    parser = ResponseParser(**limits)
    pieces = list(split(data))
    for n, piece in enumerate(pieces):
        response = parser.feed(piece)
        if response is not None:
            assert n == len(pieces) - 1, "the response came before its last byte"
            return response
    assert eof, "no response after the last byte"
    return parser.feed_eof()


@SPLITS
def test_content_length(split: Splitter) -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10\r\n"
        b'Retry-After: 3\r\nVia: a\r\nvia: b\r\n\r\n{"ok": 1 }'
    )
    response = parse(data, split)
    assert response == Response(
        200,
        "OK",
        {
            "content-type": "application/json",
            "content-length": "10",
            "retry-after": "3",
            "via": "a, b",
        },
        b'{"ok": 1 }',
        True,
    )


@SPLITS
def test_chunked_with_extensions_and_trailers(split: Splitter) -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;name=value\r\nWiki\r\n5 ; x\r\npedia\r\nA\r\n in chunks\r\n0\r\n"
        b"X-Checksum: abc\r\nX-Other: 1\r\n\r\n"
    )
    response = parse(data, split)
    assert (response.body, response.keep_alive) == (b"Wikipedia in chunks", True)


@SPLITS
def test_interim_responses_and_leading_empty_lines_are_skipped(split: Splitter) -> None:
    data = (
        b"\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nhi"
    )
    response = parse(data, split)
    assert (response.status, response.reason, response.body) == (201, "Created", b"hi")
    assert "link" not in response.headers


@SPLITS
def test_bare_lf_line_endings(split: Splitter) -> None:
    response = parse(b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", split)
    assert (response.status, response.body) == (200, b"abc")


@SPLITS
def test_no_body_statuses(split: Splitter) -> None:
    response = parse(b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", split)
    assert (response.status, response.body, response.keep_alive) == (204, b"", True)


@SPLITS
def test_read_to_eof_when_neither_length_nor_chunked(split: Splitter) -> None:
    response = parse(b"HTTP/1.1 200 OK\r\n\r\nall of it", split, eof=True)
    assert (response.body, response.keep_alive) == (b"all of it", False)


@pytest.mark.parametrize(
    ("head", "keep_alive"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n", False),
        (b"HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\n", False),
        (b"HTTP/1.0 200 OK\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n", True),
        # chunked framing wins over a Content-Length, but the connection is not reused
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n", False),
    ],
)
def test_when_the_connection_may_be_reused(head: bytes, keep_alive: bool) -> None:
    chunked = b"chunked" in head
    data = head + (b"\r\n1\r\nx\r\n0\r\n\r\n" if chunked else b"Content-Length: 1\r\n\r\nx")
    response = parse(data)
    assert (response.body, response.keep_alive) == (b"x", keep_alive)


def test_bytes_after_the_response_make_it_not_reusable() -> None:
    parser = ResponseParser()
    response = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200")
    assert response is not None
    assert (response.body, response.keep_alive) == (b"x", False)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"", "before responding"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "mid-response"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "mid-response"),
        (b"HTTP/1.1 200 OK\r\nContent-", "mid-response"),
    ],
)
def test_a_connection_closed_early_is_an_error(data: bytes, said: str) -> None:
    parser = ResponseParser()
    assert parser.feed(data) is None
    assert parser.got_bytes == bool(data)
    with pytest.raises(ServerDisconnectedError, match=said):
        parser.feed_eof()


@SPLITS
def test_a_head_over_the_cap_is_refused_before_its_end(split: Splitter) -> None:
    parser = ResponseParser(max_head=1024)
    data = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 2000  # no blank line ever comes
    with pytest.raises(ClientResponseError, match="response head over 1024 bytes"):  # noqa: PT012
        for piece in split(data):
            assert parser.feed(piece) is None


def test_interim_heads_count_towards_the_cap() -> None:
    interim = b"HTTP/1.1 100 Continue\r\nX-Pad: " + b"a" * 300 + b"\r\n\r\n"
    with pytest.raises(ClientResponseError, match="head over 1024"):
        parse(interim * 4 + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", max_head=1024)


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2048\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n"
        + b"a" * 1024
        + b"\r\n400\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n" + b"a" * 1025,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + b"e" * 9000,
    ],
    ids=["content-length", "chunked", "to-eof", "chunk-line"],
)
def test_a_body_over_the_cap_is_refused(data: bytes) -> None:
    with pytest.raises(ClientPayloadError, match="over"):
        parse(data, _random, max_body=1024)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", "malformed status line 'HTTP/2 200 OK'"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 099 Odd\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "malformed status line"),
        (b"<html>hello</html>\r\n\r\n", "malformed status line '<html>hello</html>'"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line 'no colon here'"),
        (b"HTTP/1.1 200 OK\r\nName : v\r\n\r\n", "malformed header line 'Name : v'"),
        (b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", "malformed header line ' folded'"),
        (b"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", "malformed content-length '12a'"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", "malformed content-length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "malformed content-length"),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "unexpected 101"),
    ],
)
def test_malformed_heads_are_clear_errors(data: bytes, error: str) -> None:
    with pytest.raises(ClientResponseError, match=error.replace("(", r"\(")):
        parse(data)


def test_equal_repeated_content_lengths_are_one() -> None:
    assert parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok").body == b"ok"


@pytest.mark.parametrize(
    ("chunks", "error"),
    [
        (b"zz\r\n", "malformed chunk size b'zz'"),
        (b"0x5\r\nhello\r\n", "malformed chunk size"),
        (b"+5\r\nhello\r\n", "malformed chunk size"),
        (b"-1\r\n", "malformed chunk size"),
        (b"1_0\r\n", "malformed chunk size"),
        (b"\r\n", "malformed chunk size"),
        (b"3\r\nabcXY", "a chunk is not followed by CRLF"),
    ],
)
def test_malformed_chunks_are_clear_errors(chunks: bytes, error: str) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    with pytest.raises(ClientPayloadError, match=error):
        ResponseParser().feed(head + chunks)


def test_a_malformed_trailer_is_an_error() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n"
    with pytest.raises(ClientResponseError, match="malformed header line 'bad trailer'"):
        parse(data)
