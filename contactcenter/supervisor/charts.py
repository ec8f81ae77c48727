"""Server-rendered SVG bar charts (no script, no inline style: the page's CSP allows neither).

Colours come from CSS classes (`series-0`, `series-1`, ...) in static/supervisor.css; every label
is XML-escaped here, so a chart can carry user text safely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step: float = 10 ** len(str(int(value))) / 10
    for mult in (1, 2, 2.5, 5, 10):
        if value <= step * mult:
            return step * mult
    return value


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    width: int = 900,
    height: int = 260,
    percent: bool = False,
) -> Markup:
    """Grouped bars, one group per label; an accessible title and a legend."""
    left, right, top, bottom = 44, 10, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v for s in series for v in s.values), default=0.0)
    top_value = 1.0 if percent else _nice_max(peak)
    n = max(len(labels), 1)
    group_w = plot_w / n
    bar_w = max(group_w * 0.8 / max(len(series), 1), 1.0)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):  # grid lines and the axis' figures
        value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        text = f"{value:.0%}" if percent else f"{value:g}"
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" '
                   f'y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{left - 4}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{escape(text)}</text>')
    every = max(1, round(n / 24))
    for gi, label in enumerate(labels):
        x0 = left + gi * group_w + group_w * 0.1
        for si, s in enumerate(series):
            value = s.values[gi] if gi < len(s.values) else 0.0
            h = plot_h * min(max(value, 0.0) / top_value, 1.0)
            x = x0 + si * bar_w
            y = top + plot_h - h
            shown = f"{value:.1%}" if percent else f"{value:g}"
            out.append(
                f'<rect class="bar series-{si}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}"><title>{escape(label)} {escape(s.name)}: '
                f"{escape(shown)}</title></rect>"
            )
        if gi % every == 0:
            out.append(f'<text class="axis" x="{x0 + group_w * 0.4:.1f}" y="{height - bottom + 14}"'
                       f' text-anchor="middle">{escape(label)}</text>')
    lx = left
    for si, s in enumerate(series):  # legend
        out.append(f'<rect class="series-{si}" x="{lx}" y="6" width="12" height="12"/>')
        out.append(f'<text class="legend" x="{lx + 16}" y="16">{escape(s.name)}</text>')
        lx += 24 + 8 * len(s.name)
    out.append("</svg>")
    return Markup("".join(out))


__all__ = ["Series", "bar_chart"]
