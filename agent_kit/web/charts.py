"""Charts drawn on the server as SVG: no script, no network, readable without colour.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says what it shows
in words, scales to its container (``viewBox``), and is followed on the page by the same figures
as a table for screen readers and for copying.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

from markupsafe import Markup

__all__ = ["PALETTE", "bars", "lines", "stacked_bars"]

PALETTE = ("#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626")
OUTCOME_COLOURS = {"approved": "#059669", "edited": "#2563eb", "rejected": "#dc2626", "resolved": "#7c3aed",
                   "handed back": "#0891b2", "refused": "#9ca3af", "automatic": "#2563eb"}
_FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> Markup:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
            f'class="chart" {_FONT} font-size="12"><title>{escape(title)}</title><desc>{escape(desc)}</desc>')
    return Markup(head + "".join(body) + "</svg>")


def _nice_max(value: float) -> float:
    """The top of the axis: four gridline steps of 1, 2 or 5 times a power of ten, at least ``value``."""
    if value <= 0:
        return 4.0
    magnitude = 1.0
    while magnitude * 10 < value / 4:
        magnitude *= 10
    for step in (0.25, 0.5, 1, 2, 5, 10):
        if step * magnitude >= 1 and step * magnitude * 4 >= value:
            return step * magnitude * 4
    return magnitude * 40


def lines(series: Mapping[str, Sequence[tuple[datetime, int]]], *, title: str, empty: str) -> Markup:
    """A step line per series over shared time points (pending items by role over time)."""
    width, height, left, right, top, bottom = 640, 260, 40, 170, 16, 34
    if not series or not any(series.values()):
        return _svg(width, 80, title, empty, [f'<text x="10" y="40" fill="#6b7280">{escape(empty)}</text>'])
    first = next(iter(series.values()))
    n = len(first)
    peak = _nice_max(max(v for s in series.values() for _, v in s))
    pw, ph = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + pw * (i / max(1, n - 1))

    def y(v: float) -> float:
        return top + ph * (1 - v / peak)

    body = []
    for k in range(5):
        v = peak * k / 4
        body.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e7eb"/>')
        body.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#6b7280">{v:g}</text>')
    short_span = (first[-1][0] - first[0][0]).total_seconds() < 900
    for i in (0, n // 2, n - 1):
        body.append(f'<text x="{x(i):.1f}" y="{height - 12}" text-anchor="middle" fill="#6b7280">'
                    f'{first[i][0].strftime("%H:%M:%S" if short_span else "%H:%M")}</text>')
    for idx, (name, points) in enumerate(series.items()):
        colour = PALETTE[idx % len(PALETTE)]
        path = [f"M{x(0):.1f},{y(points[0][1]):.1f}"]
        for i in range(1, n):
            path.append(f"H{x(i):.1f}V{y(points[i][1]):.1f}")
        dash = "" if idx == 0 else f' stroke-dasharray="{(idx % 3) * 3 + 3} 3"'
        body.append(f'<path d="{"".join(path)}" fill="none" stroke="{colour}" stroke-width="2.5"{dash}/>')
        ly = top + 14 + idx * 20
        body.append(f'<line x1="{width - right + 12}" x2="{width - right + 32}" y1="{ly - 4}" y2="{ly - 4}" '
                    f'stroke="{colour}" stroke-width="3"{dash}/>')
        body.append(f'<text x="{width - right + 38}" y="{ly}">{escape(name)} ({points[-1][1]})</text>')
    desc = "; ".join(f"{name}: {pts[-1][1]} pending now, at most {max(v for _, v in pts)}"
                     for name, pts in series.items())
    return _svg(width, height, title, desc, body)


def bars(values: Sequence[tuple[str, int]], *, title: str, empty: str, colour: str = PALETTE[0]) -> Markup:
    """Vertical bars, one per label (time to decision)."""
    width, height, left, top, bottom = 640, 240, 40, 16, 40
    if not any(v for _, v in values):
        return _svg(width, 80, title, empty, [f'<text x="10" y="40" fill="#6b7280">{escape(empty)}</text>'])
    peak = _nice_max(max(v for _, v in values))
    pw, ph = width - left - 10, height - top - bottom
    slot = pw / len(values)
    body = []
    for k in range(5):
        v = peak * k / 4
        yy = top + ph * (1 - v / peak)
        body.append(f'<line x1="{left}" x2="{width - 10}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e5e7eb"/>')
        body.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#6b7280">{v:g}</text>')
    for i, (label, v) in enumerate(values):
        h = ph * v / peak
        bx = left + i * slot + slot * 0.15
        body.append(f'<rect x="{bx:.1f}" y="{top + ph - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                    f'rx="3" fill="{colour}"><title>{escape(label)}: {v}</title></rect>')
        if v:
            body.append(f'<text x="{bx + slot * 0.35:.1f}" y="{top + ph - h - 4:.1f}" text-anchor="middle">{v}</text>')
        body.append(f'<text x="{bx + slot * 0.35:.1f}" y="{height - 20}" text-anchor="middle" '
                    f'fill="#374151">{escape(label)}</text>')
    desc = "; ".join(f"{label}: {v}" for label, v in values)
    return _svg(width, height, title, desc, body)


def stacked_bars(rows: dict[str, dict[str, float]], *, title: str, empty: str,
                 labels: dict[str, str] | None = None, unit: str = "") -> Markup:
    """Horizontal bars, one per row, split by category (decisions by rule and outcome)."""
    if not rows:
        return _svg(640, 80, title, empty, [f'<text x="10" y="40" fill="#6b7280">{escape(empty)}</text>'])
    cats: list[str] = []
    for parts in rows.values():
        cats += [c for c in parts if c not in cats]
    width, left, bar_h, gap, top = 640, 190, 22, 12, 34
    height = top + len(rows) * (bar_h + gap) + 8
    peak = max(sum(p.values()) for p in rows.values()) or 1
    pw = width - left - 60
    body = []
    lx = 0.0
    for ci, cat in enumerate(cats):
        colour = OUTCOME_COLOURS.get(cat, PALETTE[ci % len(PALETTE)])
        body.append(f'<rect x="{lx:.1f}" y="4" width="12" height="12" rx="2" fill="{colour}"/>')
        body.append(f'<text x="{lx + 16:.1f}" y="14">{escape(cat)}</text>')
        lx += 30 + 7.2 * len(cat)
    for ri, (name, parts) in enumerate(rows.items()):
        yy = top + ri * (bar_h + gap)
        shown = (labels or {}).get(name, name)
        body.append(f'<text x="{left - 8}" y="{yy + bar_h * 0.7:.1f}" text-anchor="end">{escape(shown[:28])}</text>')
        xx = float(left)
        for ci, cat in enumerate(cats):
            v = parts.get(cat, 0)
            if not v:
                continue
            w = pw * v / peak
            colour = OUTCOME_COLOURS.get(cat, PALETTE[ci % len(PALETTE)])
            body.append(f'<rect x="{xx:.1f}" y="{yy}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
                        f'<title>{escape(shown)}: {unit}{v:g} {escape(cat)}</title></rect>')
            if w > 18:
                body.append(f'<text x="{xx + w / 2:.1f}" y="{yy + bar_h * 0.7:.1f}" text-anchor="middle" '
                            f'fill="#fff">{unit}{v:g}</text>')
            xx += w
        body.append(f'<text x="{xx + 6:.1f}" y="{yy + bar_h * 0.7:.1f}" fill="#374151">'
                    f'{unit}{sum(parts.values()):g}</text>')
    desc = "; ".join(f"{name}: " + ", ".join(f"{unit}{v:g} {c}" for c, v in parts.items())
                     for name, parts in rows.items())
    return _svg(width, height, title, desc, body)
