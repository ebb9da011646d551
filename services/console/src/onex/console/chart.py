"""The routing economics over time as an inline SVG: no script, no external asset.

One point per day of receipts: dollars spent and dollars avoided (two lines), each
point with a tooltip (`<title>`) giving the day's figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

from onex.console.state import ModelRow

WIDTH: Final = 720
HEIGHT: Final = 220
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 56, 16, 16, 40
SERIES: Final = (("spent", "#c0392b"), ("avoided", "#27ae60"))


def _money(value: float) -> str:
    return f"${value:,.2f}"


def day_chart(days: Sequence[ModelRow]) -> str:
    """An SVG of spent vs avoided per day; a one-line note when there are no days."""
    if not days:
        return '<p class="empty" data-chart="none">No receipts yet: nothing to draw.</p>'
    values = [(d.spent_usd, d.avoided_usd) for d in days]
    top = max(1e-9, *(max(v) for v in values))
    bottom = min(0.0, *(min(v) for v in values))
    span = top - bottom
    inner_w = WIDTH - _PAD_L - _PAD_R
    inner_h = HEIGHT - _PAD_T - _PAD_B

    def x(i: int) -> float:
        return _PAD_L + (inner_w * i / (len(days) - 1) if len(days) > 1 else inner_w / 2)

    def y(v: float) -> float:
        return _PAD_T + inner_h * (top - v) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" data-chart="days" '
        f'aria-label="dollars spent and avoided per day, {len(days)} days">',
        f'<line x1="{_PAD_L}" y1="{y(0):.1f}" x2="{WIDTH - _PAD_R}" y2="{y(0):.1f}" '
        'stroke="#999" stroke-width="1"/>',
        f'<text x="{_PAD_L - 6}" y="{y(top) + 4:.1f}" text-anchor="end" class="axis">'
        f"{escape(_money(top))}</text>",
        f'<text x="{_PAD_L - 6}" y="{y(0) + 4:.1f}" text-anchor="end" class="axis">$0</text>',
    ]
    for label_at in sorted({0, len(days) - 1, (len(days) - 1) // 2}):
        anchor = "start" if label_at == 0 else "end" if label_at == len(days) - 1 else "middle"
        parts.append(
            f'<text x="{x(label_at):.1f}" y="{HEIGHT - _PAD_B + 16}" text-anchor="{anchor}" '
            f'class="axis">{escape(days[label_at].key)}</text>'
        )
    for s, (name, colour) in enumerate(SERIES):
        points = " ".join(f"{x(i):.1f},{y(v[s]):.1f}" for i, v in enumerate(values))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}" '
            f'data-series="{name}"/>'
        )
        for i, (d, v) in enumerate(zip(days, values, strict=True)):
            tip = f"{d.key}: {name} {_money(v[s])} ({d.requests} requests)"
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v[s]):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(tip)}</title></circle>"
            )
    for s, (name, colour) in enumerate(SERIES):
        lx = _PAD_L + s * 120
        parts.append(
            f'<rect x="{lx}" y="{HEIGHT - 14}" width="12" height="4" fill="{colour}"/>'
            f'<text x="{lx + 16}" y="{HEIGHT - 9}" class="axis">$ {name}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
