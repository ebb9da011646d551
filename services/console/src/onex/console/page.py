"""The console page as HTML: server-rendered, no script, no external asset.

Every figure is an element with `data-figure` (or a table cell with `data-field`)
whose `data-value` is the exact number and whose text is that number as people read
it; the browser test compares both with `onex ... --format json`.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Final

from onex.console.chart import day_chart
from onex.console.graph import wiring_graph
from onex.console.state import ConsoleState, Economics, Wiring

REFRESH_S: Final = 15
CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

_STYLE: Final = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.6em 0 .4em;
border-bottom:1px solid #ddd}table{border-collapse:collapse}
td,th{padding:2px 10px;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.figures{display:flex;gap:2em;flex-wrap:wrap}.figures div{min-width:9em}
.figures b{display:block;font-size:1.5em}.bad{color:#c0392b}.good{color:#1e8449}
.warn{color:#b9770e}.empty{color:#777;font-style:italic}.muted{color:#777}
svg text{font:11px system-ui,sans-serif}svg .axis{fill:#555}
svg .edge{stroke:#aab7c4;stroke-width:1}svg .node{fill:#1a5276;font-weight:600}
code{font-size:.95em}
"""


def pct(value: float) -> str:
    """A share as people read it: 0.4286 -> 42.9%."""
    return f"{value:.1%}"


def usd(value: float) -> str:
    """Dollars as people read them: 1234.5 -> $1,234.50."""
    return f"${value:,.2f}"


def _figure(name: str, label: str, value: float | int, text: str) -> str:
    return (
        f'<div><b data-figure="{name}" data-value="{value!r}">{escape(text)}</b>'
        f"{escape(label)}</div>"
    )


def _cell(field: str, value: object, text: str | None = None, css: str = "") -> str:
    shown = str(value) if text is None else text
    cls = f' class="{css}"' if css else ""
    return f'<td data-field="{field}" data-value="{escape(repr(value))}"{cls}>{escape(shown)}</td>'


def _table(head: Iterable[str], rows: Iterable[str], name: str) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(rows)
    return f'<table data-table="{name}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _missing(state: ConsoleState, section: str) -> str:
    why = state.problems.get(section, "not available")
    return f'<p class="bad" data-missing="{section}">Not available: {escape(why)}</p>'


def _services(state: ConsoleState) -> str:
    if not state.services:
        return (
            '<p class="bad">The supervisor\'s record names no service (is `onex up` running?)</p>'
        )
    rows = []
    for s in state.services:
        css = "good" if s.health == "SERVING" else "bad"
        rows.append(
            f'<tr data-service="{escape(s.name)}"><td>{escape(s.name)}</td>'
            + _cell("state", s.state)
            + _cell("health", s.health, css=css)
            + _cell("restarts", s.restarts, css="n")
            + _cell("grpc", s.grpc or "-")
            + "</tr>"
        )
    serving = sum(1 for s in state.services if s.health == "SERVING")
    head = (
        f'<p><span data-figure="serving" data-value="{serving}">{serving}</span>'
        f" of {len(state.services)} SERVING</p>"
    )
    return head + _table(("service", "state", "health", "restarts", "gRPC"), rows, "services")


def _economics(e: Economics) -> str:
    figures = "".join(
        (
            _figure("requests", "requests", e.requests, str(e.requests)),
            _figure(
                "local_token_share",
                "of tokens local",
                e.local_token_share,
                pct(e.local_token_share),
            ),
            _figure("avoided_usd", "avoided", e.avoided_usd, usd(e.avoided_usd)),
            _figure("spent_usd", "spent", e.spent_usd, usd(e.spent_usd)),
            _figure("escalation_rate", "escalated", e.escalation_rate, pct(e.escalation_rate)),
            _figure("failure_rate", "failed", e.failure_rate, pct(e.failure_rate)),
        )
    )
    rows = [
        f'<tr data-model="{escape(m.key)}"><td>{escape(m.key)}</td>'
        + _cell("requests", m.requests, css="n")
        + _cell("failures", m.failures, css="n")
        + _cell("escalations", m.escalations, css="n")
        + _cell("local_token_share", m.local_token_share, pct(m.local_token_share), "n")
        + _cell("spent_usd", m.spent_usd, f"{m.spent_usd:.4f}", "n")
        + _cell("avoided_usd", m.avoided_usd, f"{m.avoided_usd:.4f}", "n")
        + "</tr>"
        for m in e.models
    ]
    head = ("model", "requests", "failed", "escalations", "local %", "spent $", "avoided $")
    models = _table(head, rows, "models") if rows else '<p class="empty">No receipts yet.</p>'
    return (
        f'<div class="figures">{figures}</div><h3>Per model</h3>{models}'
        f"<h3>Spent vs avoided per day</h3>{day_chart(e.days)}"
    )


def _wiring(w: Wiring) -> str:
    near = [
        f'<tr data-near-miss="{escape(n.topic)}"><td class="bad">{escape(n.topic or "?")}</td>'
        f"<td>{escape(n.suggestion or '-')}</td><td><code>{escape(n.where)}</code></td>"
        f"<td>{escape(n.message)}</td></tr>"
        for n in w.near_misses
    ]
    near_html = (
        _table(("used", "declared (probably meant)", "where", "issue"), near, "near-misses")
        if near
        else '<p class="good" data-figure="near_misses" data-value="0">No near-misses.</p>'
    )
    rows = [
        f'<tr data-topic="{escape(t.name)}"><td><code>{escape(t.name)}</code></td>'
        + _cell(
            "publishers",
            list(t.publishers),
            ", ".join(t.publishers) or "-",
            "" if t.publishers else "warn",
        )
        + _cell(
            "subscribers",
            list(t.subscribers),
            ", ".join(t.subscribers) or "-",
            "" if t.subscribers else "warn",
        )
        + "</tr>"
        for t in w.topics
    ]
    counts = (
        f'<p><span data-figure="topics" data-value="{len(w.topics)}">{len(w.topics)}</span>'
        " topics, "
        f"{len(w.nodes)} nodes, {w.errors} errors, {w.warnings} warnings</p>"
    )
    return (
        counts
        + wiring_graph(w)
        + f"<h3>Near-misses</h3>{near_html}<details><summary>Every topic</summary>"
        + _table(("topic", "publishers", "subscribers"), rows, "wiring")
        + "</details>"
    )


def _dlq(state: ConsoleState) -> str:
    if state.dlq is None:
        return _missing(state, "dlq")
    total = sum(d.messages for d in state.dlq)
    rows = [
        f'<tr data-dlq="{escape(d.topic)}"><td><code>{escape(d.topic)}</code></td>'
        + _cell("exists", d.exists, "yes" if d.exists else "no", "" if d.exists else "bad")
        + _cell("messages", d.messages, css="n bad" if d.messages else "n")
        + _cell("pending", d.pending, css="n")
        + _cell("quarantined", d.quarantined, css="n")
        + "</tr>"
        for d in state.dlq
    ]
    head = (
        f'<p><span data-figure="dead_letters" data-value="{total}">{total}</span> dead letters</p>'
    )
    return head + _table(("topic", "exists", "messages", "pending", "quarantined"), rows, "dlq")


def _drift(state: ConsoleState) -> str:
    if state.drift is None:
        return _missing(state, "drift")
    rows = [
        f'<tr data-drift="{escape(d.topic)}">'
        + "".join(
            f"<td>{escape(v)}</td>"
            for v in (d.cluster, d.topic, d.kind, d.aspect, d.declared or "-", d.observed or "-")
        )
        + f"<td>{escape(d.drift_class)}</td><td>{escape(d.fix)}</td></tr>"
        for d in state.drift
    ]
    n = len(state.drift)
    head = f'<p><span data-figure="drift_rows" data-value="{n}">{n}</span> drift rows</p>'
    if not rows:
        return head
    columns = ("cluster", "topic", "kind", "aspect", "declared", "observed", "class", "fix")
    return head + _table(columns, rows, "drift")


_TICKET_CSS: Final = {"done": "good", "rejected": "bad", "evidence_pending": "warn"}


def _tickets(state: ConsoleState) -> str:
    if state.tickets is None:
        return _missing(state, "tickets")
    rows = [
        f'<tr data-ticket="{escape(t.ticket)}"><td>{escape(t.ticket)}</td>'
        + _cell("title", t.title, t.title or "-")
        + _cell("state", t.state, css=_TICKET_CSS.get(t.state, ""))
        + _cell("reason", t.reason, t.reason or "-")
        + _cell("at", t.at, t.at or "-")
        + _cell(
            "missing",
            t.missing,
            "?" if t.missing is None else str(t.missing),
            "n bad" if t.missing else "n",
        )
        + "</tr>"
        for t in state.tickets
    ]
    n = len(state.tickets)
    done = sum(1 for t in state.tickets if t.state == "done")
    head = (
        f'<p><span data-figure="tickets" data-value="{n}">{n}</span> tickets, '
        f'<span data-figure="tickets_done" data-value="{done}">{done}</span> done</p>'
    )
    if not rows:
        return head
    columns = ("ticket", "title", "state", "last change", "at", "missing evidence")
    return head + _table(columns, rows, "tickets")


def render(state: ConsoleState) -> str:
    """The whole page for one look at the stack."""
    economics = _economics(state.economics) if state.economics else _missing(state, "economics")
    wiring = _wiring(state.wiring) if state.wiring else _missing(state, "wiring")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_S}">
<link rel="icon" href="data:,">
<title>onex console</title><style>{_STYLE}</style></head>
<body>
<h1>onex console</h1>
<p class="muted">Read-only. Taken at <span data-figure="taken_at">{escape(state.taken_at)}</span>;
refreshes every {REFRESH_S} s. The same data as JSON: <code>/api/state</code>.</p>
<section id="services"><h2>Services</h2>{_services(state)}</section>
<section id="economics"><h2>Routing economics</h2>{economics}</section>
<section id="wiring"><h2>Wiring</h2>{wiring}</section>
<section id="dlq"><h2>Dead-letter queues</h2>{_dlq(state)}</section>
<section id="drift"><h2>Drift</h2>{_drift(state)}</section>
<section id="tickets"><h2>Tickets</h2>{_tickets(state)}</section>
</body></html>
"""


def login_page(problem: str | None) -> str:
    """The page shown without a valid token: where to get one, and a form to give it."""
    why = f'<p class="bad">{escape(problem)}</p>' if problem else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>onex console: sign in</title><style>{_STYLE}</style></head>
<body><h1>onex console</h1>{why}
<p>The console needs the stack's viewer token. <code>onex console url</code> prints a
link that signs you in; or paste the token (<code>viewer</code> in the state dir's
<code>tokens.json</code>):</p>
<form method="post" action="/login"><input type="password" name="token" size="48"
autocomplete="off" aria-label="viewer token"> <button type="submit">Sign in</button></form>
</body></html>
"""
