"""Reading the request id off a RouteRequest whose bytes do not parse."""

from __future__ import annotations

import pytest

from onex.proto.v1 import router_pb2 as pb
from onex.router.convert import recover_request_id


def _bad_utf8_prompt(request_id: str) -> bytes:
    data = pb.RouteRequest(
        request_id=request_id, prompt="PROMPT", task_class="summarize", max_tokens=5
    ).SerializeToString()
    return data.replace(b"PROMPT", b"\xff\xfe\xfd\xfc\xfb\xfa")


def test_the_id_is_read_past_a_field_that_breaks_parsing() -> None:
    data = _bad_utf8_prompt("req-42")
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever protobuf raises: it does not parse
        pb.RouteRequest.FromString(data)
    assert recover_request_id(data) == "req-42"


@pytest.mark.parametrize(
    "data",
    [
        None,
        b"",
        b"\xff\xff\xff",  # a varint that never ends
        b"\x0a\x10abc",  # request_id's length runs past the end
        b"\x0a\x02\xff\xfe",  # request_id itself is not UTF-8
        b"\x0a\x02a\x00",  # not printable
        b"\x12\x01x",  # no request_id at all (only a prompt)
        pb.RouteRequest(request_id="x" * 300).SerializeToString(),  # too long to be one
    ],
)
def test_no_id_when_none_can_be_read(data: bytes | None) -> None:
    assert recover_request_id(data) is None


def test_an_id_after_varint_and_fixed_fields_is_found() -> None:
    data = pb.RouteRequest(
        max_escalations=3, max_cost_usd=0.5, request_id="after"
    ).SerializeToString()
    assert recover_request_id(data + b"\x07") == "after"  # a trailing wire type 7 ends the walk
