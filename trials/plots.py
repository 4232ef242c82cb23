"""SVG charts of a trial: waterfall (best change per subject) and spider (change over time).

Plain Python, no Django and no JS charting library: strings of SVG. Every value that comes from
data goes through :func:`_text` (element content) or :func:`_attr` (attribute values, always
double-quoted): a subject label such as ``x" onmouseover="…`` or ``<script>`` stays text, and the
result parses as XML. Numbers are formatted here; colours come from :data:`COLOURS` only.
Changes are percentages from the baseline sum of diameters; RECIST's -30 % (PR) and +20 % (PD)
thresholds are drawn as dashed lines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

#: Bar colours by best overall response.
COLOURS = {"CR": "#1a7f37", "PR": "#2f81f7", "SD": "#9a6700", "PD": "#cf222e", "NE": "#6e7781",
           "non-CR/non-PD": "#8250df"}


@dataclass(frozen=True)
class WaterfallBar:
    subject: str
    change_pct: float
    response: str


@dataclass(frozen=True)
class SpiderLine:
    subject: str
    #: ``(days from baseline, change %)``, baseline (0, 0) first.
    points: Sequence[tuple[int, float]]
    response: str


#: Characters XML 1.0 does not allow (C0 controls but tab, newline, return; surrogates; U+FFFE/F).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: object) -> str:
    """Element content: ``&``, ``<``, ``>`` escaped, characters XML forbids replaced by U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", str(value)))


def _attr(value: object) -> str:
    """The inside of a double-quoted attribute value: also ``"`` escaped, and whitespace kept as typed."""
    return escape(_NOT_XML.sub("\ufffd", str(value)), {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def _scale(values: Sequence[float], low: float, high: float) -> tuple[float, float]:
    return min([low, *values]), max([high, *values])


def waterfall_svg(bars: Sequence[WaterfallBar], width: int = 640, height: int = 320) -> str:
    """Bars sorted from the largest increase to the largest decrease (the usual waterfall)."""
    ordered = sorted(bars, key=lambda bar: -bar.change_pct)
    pad_l, pad_r, pad_t, pad_b = 48, 12, 16, 40
    low, high = _scale([b.change_pct for b in ordered], -100.0, 40.0)
    plot_h, plot_w = height - pad_t - pad_b, width - pad_l - pad_r

    def y(value: float) -> float:
        return pad_t + (high - value) / (high - low) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="waterfall" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="Waterfall plot of best change from baseline">']
    parts += _axis(y, pad_l, width - pad_r, [low, -30, 0, 20, high])
    slot = min(plot_w / max(len(ordered), 1), 48.0)
    for i, bar in enumerate(ordered):
        x = pad_l + i * slot + slot * 0.15
        top, bottom = sorted((y(bar.change_pct), y(0)))
        colour = COLOURS.get(bar.response, "#6e7781")
        label = _text(f"{bar.subject}: {bar.change_pct:+.1f} % ({bar.response})")
        parts.append(f'<rect class="bar" data-subject="{_attr(bar.subject)}" x="{x:.1f}" y="{top:.1f}" '
                     f'width="{slot * 0.7:.1f}" height="{max(bottom - top, 1):.1f}" fill="{colour}">'
                     f"<title>{label}</title></rect>")
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{height - pad_b + 14}" font-size="10" '
                     f'text-anchor="middle">{_text(bar.subject)}</text>')
    if not ordered:
        parts.append(_empty(width, height))
    parts.append("</svg>")
    return "".join(parts)


def spider_svg(lines: Sequence[SpiderLine], width: int = 640, height: int = 320) -> str:
    """One line per subject: change from baseline against days since baseline."""
    pad_l, pad_r, pad_t, pad_b = 48, 28, 16, 40
    values = [v for line in lines for _, v in line.points]
    low, high = _scale(values, -100.0, 40.0)
    max_day = max([d for line in lines for d, _ in line.points] + [7])
    plot_h, plot_w = height - pad_t - pad_b, width - pad_l - pad_r

    def y(value: float) -> float:
        return pad_t + (high - value) / (high - low) * plot_h

    def x(day: float) -> float:
        return pad_l + day / max_day * plot_w

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="spider" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="Spider plot of change from baseline over time">']
    parts += _axis(y, pad_l, width - pad_r, [low, -30, 0, 20, high])
    for day in sorted({d for line in lines for d, _ in line.points}):
        parts.append(f'<text x="{x(day):.1f}" y="{height - pad_b + 14}" font-size="10" '
                     f'text-anchor="middle">day {day}</text>')
    for line in lines:
        colour = COLOURS.get(line.response, "#6e7781")
        path = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in line.points)
        parts.append(f'<polyline class="line" data-subject="{_attr(line.subject)}" points="{path}" '
                     f'fill="none" stroke="{colour}" stroke-width="2"><title>{_text(line.subject)}</title></polyline>')
        for d, v in line.points:
            parts.append(f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
    if not lines:
        parts.append(_empty(width, height))
    parts.append("</svg>")
    return "".join(parts)


#: What an empty plot says. A subject is plotted from its final read: signed reads that still wait for
#: the other reader or for adjudication are not plotted yet ("No signed reads yet" said otherwise).
EMPTY_TEXT = "No final reads yet (a subject is plotted once its reads agree or are adjudicated)"


def _empty(width: int, height: int) -> str:
    return (f'<text class="empty" x="{width / 2}" y="{height * 0.72:.0f}" text-anchor="middle" font-size="13">'
            f"{_text(EMPTY_TEXT)}</text>")


def _axis(y, left: float, right: float, ticks: Sequence[float]) -> list[str]:  # type: ignore[no-untyped-def]
    parts = []
    for tick in sorted(set(ticks)):
        dashed = ' stroke-dasharray="4 3"' if tick in (-30, 20) else ""
        stroke = "#444" if tick == 0 else "#bbb"
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                     f'stroke="{stroke}"{dashed}/>')
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 3:.1f}" font-size="10" text-anchor="end">'
                     f"{tick:+.0f} %</text>")
    return parts
