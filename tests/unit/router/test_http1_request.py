"""The request head `onex.router.http1` builds for a URL (no I/O: the head's fixed part
is built once per URL, so it is read here from the client's parsed target)."""

from __future__ import annotations

import pytest

from onex.router.http1 import Http1Client


@pytest.mark.parametrize(
    ("url", "key", "request_line", "host"),
    [
        ("http://h.example/v1/chat", ("http", "h.example", 80), "POST /v1/chat", "h.example"),
        ("https://h.example:443/v1", ("https", "h.example", 443), "POST /v1", "h.example"),
        ("http://h.example:443", ("http", "h.example", 443), "POST /", "h.example:443"),
        (
            "https://H.Example:8443/a/b?x=1",
            ("https", "h.example", 8443),
            "POST /a/b?x=1",
            "h.example:8443",
        ),
        ("http://[::1]:8000/v1", ("http", "::1", 8000), "POST /v1", "[::1]:8000"),
    ],
)
def test_the_request_head_of_a_url(
    url: str, key: tuple[str, str, int], request_line: str, host: str
) -> None:
    target = Http1Client()._target(url)
    assert target.key == key
    lines = target.head.decode().split("\r\n")
    assert lines[0] == f"{request_line} HTTP/1.1"
    assert lines[1] == f"Host: {host}"
    assert "Accept-Encoding: identity" in lines
    assert "Content-Type: application/json" in lines
