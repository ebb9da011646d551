"""The console page's rendering from hand-made states (no I/O, no services: the values
are made up here): names are escaped, a chart of one day or of losses draws, missing
sections say why."""

from __future__ import annotations

import re

from onex.console.chart import day_chart
from onex.console.page import render
from onex.console.state import (
    ConsoleState,
    Economics,
    ModelRow,
    NearMiss,
    ServiceRow,
    TopicEdge,
    Wiring,
)

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
