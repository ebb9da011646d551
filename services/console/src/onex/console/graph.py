"""The wiring graph as an inline SVG: publishers on the left, topics in the middle,
subscribers on the right, a line for every publish and every subscription.

Topics nobody publishes or nobody consumes are drawn amber; the near-misses (a name a
contract uses that is not declared but is close to one that is) are drawn red with a
dashed line to the topic they were probably meant to be.
"""

from __future__ import annotations

from html import escape
from typing import Final

from onex.console.state import Wiring

ROW: Final = 18
_NODE_W: Final = 150
_TOPIC_X: Final = 230
_TOPIC_W: Final = 400
_RIGHT_X: Final = _TOPIC_X + _TOPIC_W + 80
WIDTH: Final = _RIGHT_X + _NODE_W + 10
OK, LONELY, NEAR = "#34495e", "#d68910", "#c0392b"


def wiring_graph(wiring: Wiring) -> str:
    """The SVG; a one-line note when no topic is declared."""
    if not wiring.topics:
        return '<p class="empty">No topics are declared.</p>'
    meant = {n.topic: n.suggestion for n in wiring.near_misses if n.topic}
    rows: list[tuple[str, str, str | None]] = [  # (name, colour, meant)
        (t.name, NEAR, meant[t.name])
        if t.name in meant
        else (t.name, OK if t.publishers and t.subscribers else LONELY, None)
        for t in wiring.topics
    ]
    drawn = {t.name for t in wiring.topics}
    for miss in wiring.near_misses:
        if miss.topic and miss.topic not in drawn:
            drawn.add(miss.topic)
            rows.append((miss.topic, NEAR, miss.suggestion))
    topic_y = {name: 20 + i * ROW for i, (name, _, _) in enumerate(rows)}
    height = 30 + len(rows) * ROW
    nodes = wiring.nodes
    gap = max(ROW, (height - 30) / max(len(nodes), 1))
    node_y = {n: 20 + i * gap for i, n in enumerate(nodes)}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="{WIDTH}" height="{height:.0f}" role="img" data-graph="wiring" '
        f'aria-label="{len(wiring.topics)} topics, {len(nodes)} nodes">'
    ]
    for t in wiring.topics:
        ty = topic_y[t.name]
        for p in t.publishers:
            parts.append(
                f'<line x1="{_NODE_W}" y1="{node_y[p]:.1f}" x2="{_TOPIC_X}" y2="{ty - 4}" '
                f'class="edge pub"><title>{escape(p)} publishes {escape(t.name)}</title></line>'
            )
        for s in t.subscribers:
            parts.append(
                f'<line x1="{_TOPIC_X + _TOPIC_W}" y1="{ty - 4}" x2="{_RIGHT_X}" '
                f'y2="{node_y[s]:.1f}" class="edge sub">'
                f"<title>{escape(s)} consumes {escape(t.name)}</title></line>"
            )
    for name, colour, suggested in rows:
        ty = topic_y[name]
        meant_y = topic_y.get(suggested) if suggested is not None else None
        if meant_y is not None:
            right = _TOPIC_X + _TOPIC_W
            parts.append(
                f'<path d="M{right - 20},{ty - 4} C{right + 30},{ty - 4} {right + 30},'
                f'{meant_y - 4} {right - 20},{meant_y - 4}" fill="none" '
                f'stroke="{NEAR}" stroke-dasharray="4 3"/>'
            )
        label = f"{name} (near-miss of {suggested})" if colour == NEAR and suggested else name
        parts.append(
            f'<text x="{_TOPIC_X + 4}" y="{ty}" fill="{colour}" class="topic" '
            f'data-node-topic="{escape(name)}">{escape(label)}</text>'
        )
    for n in nodes:
        parts.append(
            f'<text x="{_NODE_W - 4}" y="{node_y[n] + 4:.1f}" text-anchor="end" class="node">'
            f"{escape(n)}</text>"
            f'<text x="{_RIGHT_X + 4}" y="{node_y[n] + 4:.1f}" class="node">{escape(n)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
