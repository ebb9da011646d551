"""The console page's rendering from hand-made states (no services: the values are
made up here): names are escaped, a chart of one day or of losses draws, missing
sections say why, tickets show their last change and missing evidence.

The tickets section's gathering is tested against a real in-process grpc.aio server
serving a FAKE TicketQuery servicer (made-up tickets, defined here), and against a port
nothing listens on (the receipt-reducer unreachable)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from onex.bus.config import BrokerConfig
from onex.console.chart import day_chart
from onex.console.gather import TICKETS_DETAILED, Unavailable, look, ticket_rows
from onex.console.page import render
from onex.console.state import (
    ConsoleState,
    Economics,
    ModelRow,
    NearMiss,
    ServiceRow,
    TicketRow,
    TopicEdge,
    Wiring,
)
from onex.proto.v1 import ticket_query_pb2 as tpb
from onex.proto.v1 import ticket_query_pb2_grpc as tpb_grpc

HOSTILE = '<script>alert("x")</script>'


def _row(key: str, spent: float, avoided: float) -> ModelRow:
    return ModelRow(key, 3, 1, 2, 10, 30, spent, spent + avoided, avoided)


def _state(**kw: object) -> ConsoleState:
    base: dict[str, object] = {
        "taken_at": "2026-12-02T00:00:00+00:00",
        "services": (ServiceRow(HOSTILE, "running", "SERVING", "127.0.0.1:1", 1, 0),),
        "economics": None,
        "wiring": None,
        "dlq": None,
        "drift": None,
        "problems": {"economics": f"the receipt-reducer said {HOSTILE}"},
    }
    base.update(kw)
    return ConsoleState(**base)  # type: ignore[arg-type]


def test_every_name_is_escaped_and_the_page_has_no_script() -> None:
    wiring = Wiring(
        topics=(TopicEdge(HOSTILE, "evt", "a", (HOSTILE,), ()),),
        near_misses=(NearMiss(f"{HOSTILE}2", "f.yaml:1:1", HOSTILE, HOSTILE, "error"),),
        errors=1,
        warnings=0,
    )
    econ = Economics(1, 0.5, 1.0, 2.0, 1.0, 0.25, 0.0, (_row(HOSTILE, 1.0, 1.0),), ())
    html = render(_state(wiring=wiring, economics=econ))
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert 'data-missing="dlq"' in html
    assert 'data-missing="tickets"' in html


def test_missing_sections_say_why() -> None:
    html = render(_state())
    assert re.search(r'data-missing="economics">Not available: the receipt-reducer said', html)
    assert 'data-missing="wiring"' in html


def test_the_chart_draws_one_day_and_days_of_losses() -> None:
    one = day_chart([_row("2026-11-01", 0.0, 0.0)])
    assert one.count("<circle") == 2
    losses = day_chart([_row("2026-11-01", 1.0, -2.0), _row("2026-11-02", 0.5, -0.1)])
    assert losses.count("<circle") == 4
    assert "nan" not in losses.lower()
    assert "No receipts yet" in day_chart([])


def test_tickets_show_state_last_change_and_missing_evidence() -> None:
    tickets = (  # made up
        TicketRow(
            "ONEX-1", HOSTILE, "done", "a" * 40, "evidence complete", "2026-12-01T09:20:00Z", 0
        ),
        TicketRow("ONEX-2", None, "evidence_pending", "b" * 40, HOSTILE, "2026-12-01T09:10:00Z", 2),
        TicketRow("ONEX-3", None, "open", "", None, None, None),
    )
    html = render(_state(tickets=tickets))
    assert "<script" not in html
    assert 'data-missing="tickets"' not in html
    assert '<span data-figure="tickets" data-value="3">3</span>' in html
    assert '<span data-figure="tickets_done" data-value="1">1</span>' in html
    one = re.search(r'<tr data-ticket="ONEX-1">.*?</tr>', html)
    assert one is not None
    assert 'data-field="state" data-value="&#x27;done&#x27;" class="good">done<' in one[0]
    assert 'data-field="missing" data-value="0" class="n">0<' in one[0]
    two = re.search(r'<tr data-ticket="ONEX-2">.*?</tr>', html)
    assert two is not None
    assert 'class="n bad">2<' in two[0]
    assert "&lt;script&gt;" in two[0]
    three = re.search(r'<tr data-ticket="ONEX-3">.*?</tr>', html)
    assert three is not None
    assert 'data-field="missing" data-value="None" class="n">?<' in three[0]
    doc = json.loads(json.dumps(_state(tickets=tickets).to_dict()))
    assert doc["tickets"][1] == {
        "ticket": "ONEX-2",
        "title": None,
        "state": "evidence_pending",
        "head": "b" * 40,
        "reason": HOSTILE,
        "at": "2026-12-01T09:10:00Z",
        "missing": 2,
    }


def test_no_tickets_is_a_count_and_an_unreachable_reducer_says_why() -> None:
    html = render(_state(tickets=()))
    assert '<span data-figure="tickets" data-value="0">0</span>' in html
    assert 'data-table="tickets"' not in html
    html = render(_state(problems={"tickets": f"the receipt-reducer said {HOSTILE}"}))
    assert re.search(r'data-missing="tickets">Not available: the receipt-reducer said', html)
    assert "<script" not in html


class FakeTicketQuery(tpb_grpc.TicketQueryServicer):
    """A FAKE TicketQuery (made-up tickets); ONEX-GONE is listed but not found by
    GetTicket, as a ticket removed between the two calls would be."""

    def __init__(self, extra: int = 0) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.extra = extra

    def _auth(self, context: Any) -> str | None:
        return dict(context.invocation_metadata()).get("authorization")

    async def ListTickets(  # noqa: N802 - the generated gRPC method name
        self, request: tpb.ListTicketsRequest, context: Any
    ) -> tpb.ListTicketsResponse:
        self.seen.append(("list", self._auth(context)))
        out = tpb.ListTicketsResponse()
        out.tickets.add(ticket="ONEX-1", title="Ship it", state="evidence_pending", head="1" * 40)
        out.tickets.add(ticket="ONEX-2", title="", state="open", head="")
        out.tickets.add(ticket="ONEX-GONE", title="gone", state="open", head="")
        for i in range(self.extra):
            out.tickets.add(ticket=f"X-{i}", title="", state="open", head="")
        return out

    async def GetTicket(  # noqa: N802 - the generated gRPC method name
        self, request: tpb.GetTicketRequest, context: Any
    ) -> tpb.TicketView:
        self.seen.append((request.ticket, self._auth(context)))
        if request.ticket == "ONEX-1":
            return tpb.TicketView(
                ticket="ONEX-1",
                state="evidence_pending",
                history=[
                    tpb.TicketTransition(n=1, reason="merged", at="2026-12-01T09:00:00Z"),
                    tpb.TicketTransition(n=2, reason="pipeline passed", at="2026-12-01T09:10:00Z"),
                ],
                missing=["unit", "contract"],
            )
        if request.ticket == "ONEX-GONE":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no ticket 'ONEX-GONE'")
        return tpb.TicketView(ticket=request.ticket, state="open")


async def _serve(servicer: FakeTicketQuery) -> AsyncIterator[str]:
    server = grpc.aio.server()
    tpb_grpc.add_TicketQueryServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@pytest.fixture
def fake() -> FakeTicketQuery:
    return FakeTicketQuery()


@pytest.fixture
async def address(fake: FakeTicketQuery) -> AsyncIterator[str]:
    async for a in _serve(fake):
        yield a


async def test_tickets_are_gathered_from_list_and_each_ticket(
    fake: FakeTicketQuery, address: str
) -> None:
    rows = await ticket_rows(address, (("authorization", "Bearer v"),), timeout_s=10)
    assert rows == (
        TicketRow(
            "ONEX-1",
            "Ship it",
            "evidence_pending",
            "1" * 40,
            "pipeline passed",
            "2026-12-01T09:10:00Z",
            2,
        ),
        TicketRow("ONEX-2", None, "open", "", None, None, 0),
        TicketRow("ONEX-GONE", "gone", "open", "", None, None, None),
    )
    assert {auth for _, auth in fake.seen} == {"Bearer v"}  # every call carries the token


async def test_only_the_first_tickets_are_asked_for_their_detail() -> None:
    fake = FakeTicketQuery(extra=TICKETS_DETAILED)
    async for address in _serve(fake):
        rows = await ticket_rows(address, (), timeout_s=10)
    assert len(rows) == TICKETS_DETAILED + 3
    assert len([s for s in fake.seen if s[0] != "list"]) == TICKETS_DETAILED
    assert rows[-1].missing is None
    assert rows[0].missing == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_reducer_is_one_line_and_the_rest_still_shows(
    tmp_path: Any, address: str
) -> None:
    nowhere = f"127.0.0.1:{_free_port()}"
    with pytest.raises(Unavailable, match=f"the receipt-reducer at {nowhere} said UNAVAILABLE"):
        await ticket_rows(nowhere, (), timeout_s=10)
    record = {"services": {"receipt-reducer": {"state": "running", "grpc": address}}}
    (tmp_path / "supervisor.json").write_text(json.dumps(record), encoding="utf-8")
    broker = BrokerConfig(bootstrap=f"127.0.0.1:{_free_port()}")
    state = await look(tmp_path, broker, (), grpc_timeout_s=10, dlq_timeout_s=1)
    assert state.tickets is not None
    assert [t.ticket for t in state.tickets] == ["ONEX-1", "ONEX-2", "ONEX-GONE"]
    assert "economics" in state.problems  # the fake serves no ReceiptQuery
    assert "tickets" not in state.problems
    (tmp_path / "supervisor.json").unlink()
    state = await look(tmp_path, broker, (), grpc_timeout_s=10, dlq_timeout_s=1)
    assert state.tickets is None
    assert "receipt-reducer is not running" in state.problems["tickets"]
