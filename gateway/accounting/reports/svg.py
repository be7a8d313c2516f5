"""Small inline SVG charts for the reconciliation report: stacked columns and horizontal bars.

Pure functions from numbers to an ``lxml`` element: no clock, no randomness, no float noise in the
output (coordinates are rounded to two decimals), so the same data always gives the same bytes.
The elements carry no namespace: they are meant to sit inside an HTML5 page, whose parser puts
``<svg>`` in the SVG namespace by itself (and a page without ``xmlns`` URLs has no URL at all).
:func:`to_string` serialises one for such a page; :func:`to_document` gives a standalone ``.svg``.

Every text (labels, legend, tooltips) goes in as element text or an attribute value, so lxml
escapes it; labels may come from file names and source names. Values are integers (counts, öre):
the caller formats them, so a tooltip can show the exact amount while the axis shows round ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lxml import etree

__all__ = [
    "BLACK",
    "BLUE",
    "BLUISH_GREEN",
    "FONT_STACK",
    "GREY",
    "NO_DATA",
    "ORANGE",
    "PALETTE",
    "REDDISH_PURPLE",
    "SKY_BLUE",
    "VERMILLION",
    "YELLOW",
    "Series",
    "clean_text",
    "format_count",
    "horizontal_bars",
    "nice_ticks",
    "stacked_columns",
    "to_document",
    "to_string",
]

# The Okabe–Ito palette (Okabe & Ito 2008, "Color Universal Design"): eight colours that stay
# distinguishable with every common colour-vision deficiency. GREY is the neutral extra for
# "nothing decided yet" (files in progress, withdrawn cases). Upper-case hex, as tests compare them.
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
BLUISH_GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
REDDISH_PURPLE = "#CC79A7"
BLACK = "#000000"
GREY = "#999999"
#: The order in which colours go to series that have no meaning of their own (e.g. clients).
PALETTE: tuple[str, ...] = (BLUE, ORANGE, SKY_BLUE, REDDISH_PURPLE, YELLOW, BLUISH_GREEN, VERMILLION, BLACK)

#: The system's own UI font: nothing to download, and it looks native everywhere.
FONT_STACK = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif'
NO_DATA = "Inga data / No data"

_TEXT = "#3c4043"  # labels: dark grey, softer than black next to the coloured bars
_MUTED = "#6b7075"  # tick labels
_GRID = "#e3e5e8"
_AXIS = "#9aa0a6"
_FONT_SIZE = 11.0
# Average advance of a character at _FONT_SIZE in a sans-serif UI font. SVG cannot measure text
# before it is rendered, so layout (margins, legend wrapping, label thinning) uses this estimate.
_CHAR_WIDTH = 6.4
_LEGEND_ROW = 18.0
_SWATCH = 10.0

# What XML 1.0 (and so lxml) cannot carry: C0 controls other than tab/newline/return, and lone
# surrogates (a file name with undecodable bytes arrives from os.fsdecode with them).
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean_text(text: str) -> str:
    """``text`` with every character that XML/HTML cannot carry replaced by U+FFFD."""
    return _UNSAFE.sub("\ufffd", text)


def format_count(value: int) -> str:
    """A whole number with thin-space thousands, as :func:`gateway.accounting.reports.model.format_ore` does."""
    return f"{value:,}".replace(",", "\u202f")


@dataclass(frozen=True, slots=True)
class Series:
    """One stacked layer: its legend label, its colour, and one value per category."""

    label: str
    colour: str
    values: tuple[int, ...]


def nice_ticks(maximum: int, *, target_count: int = 5) -> tuple[int, ...]:
    """Round tick values from 0 to at least ``maximum``: steps of 1, 2 or 5 times a power of ten.

    Integer arithmetic only, so ticks in öre are exact and the same on every machine.
    """
    if maximum <= 0:
        return (0,)
    wanted = -(-maximum // target_count)  # the smallest step that reaches maximum in target_count
    magnitude = 10 ** (len(str(wanted)) - 1)
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= wanted)
    top = -(-maximum // step) * step
    return tuple(range(0, top + 1, step))


def _n(value: float) -> str:
    # Two decimals at most and no trailing zeros: stable text for coordinates.
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _text_width(text: str, size: float = _FONT_SIZE) -> float:
    return len(text) * _CHAR_WIDTH * size / _FONT_SIZE


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(
        parent, tag, {key.rstrip("_").replace("_", "-"): v for key, v in attrs.items()}
    )
    if text is not None:
        element.text = clean_text(text)
    return element


def _svg(width: float, height: float, title: str) -> etree._Element:
    svg = etree.Element(
        "svg",
        {
            "class": "chart",
            "width": _n(width),
            "height": _n(height),
            "viewBox": f"0 0 {_n(width)} {_n(height)}",
            "role": "img",
            "aria-label": clean_text(title),
            "font-family": FONT_STACK,
            "font-size": _n(_FONT_SIZE),
        },
    )
    _sub(svg, "title", title)
    return svg


def _empty(width: float, title: str) -> etree._Element:
    height = 96.0
    svg = _svg(width, height, title)
    _sub(
        svg,
        "rect",
        x="0.5",
        y="0.5",
        width=_n(width - 1),
        height=_n(height - 1),
        rx="6",
        fill="#f6f7f8",
        stroke=_GRID,
    )
    _sub(
        svg,
        "text",
        NO_DATA,
        x=_n(width / 2),
        y=_n(height / 2 + 4),
        text_anchor="middle",
        fill=_MUTED,
        font_size="13",
    )
    return svg


def _has_data(categories: Sequence[str], series: Sequence[Series]) -> bool:
    return bool(categories) and any(value > 0 for s in series for value in s.values)


def _check(categories: Sequence[str], series: Sequence[Series]) -> None:
    for s in series:
        if len(s.values) != len(categories):
            raise ValueError(
                f"series {s.label!r} has {len(s.values)} values for {len(categories)} categories"
            )
        if any(value < 0 for value in s.values):
            # A stacked bar cannot show a negative part honestly; the report never has one.
            raise ValueError(f"series {s.label!r} has a negative value")


def _legend(svg: etree._Element, series: Sequence[Series], left: float, width: float, top: float) -> float:
    """Swatches and labels in rows that wrap at ``width``; returns the height used."""
    x, y = left, top
    group = _sub(svg, "g", class_="legend")
    for s in series:
        item_width = _SWATCH + 5 + _text_width(s.label) + 16
        if x > left and x + item_width > left + width:
            x, y = left, y + _LEGEND_ROW
        _sub(
            group, "rect", x=_n(x), y=_n(y + 2), width=_n(_SWATCH), height=_n(_SWATCH), rx="2", fill=s.colour
        )
        _sub(group, "text", s.label, x=_n(x + _SWATCH + 5), y=_n(y + 11), fill=_TEXT)
        x += item_width
    return y - top + _LEGEND_ROW if series else 0.0


def _segment(
    parent: etree._Element, s: Series, category: str, value: int, fmt: Callable[[int], str], **geometry: float
) -> None:
    rect = _sub(
        parent,
        "rect",
        fill=s.colour,
        stroke="#ffffff",
        stroke_width="0.75",
        **{k: _n(v) for k, v in geometry.items()},
    )
    # The tooltip: the exact number, not the rounded one the axis suggests.
    _sub(rect, "title", f"{category} · {s.label}: {fmt(value)}")


def stacked_columns(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    format_value: Callable[[int], str] = format_count,
    format_short: Callable[[int], str] | None = None,
    category_titles: Sequence[str] | None = None,
    width: int = 560,
    plot_height: int = 220,
) -> etree._Element:
    """Vertical columns, one per category (e.g. a day), each a stack of the series' values.

    ``format_value`` writes the exact value in tooltips; ``format_short`` the round tick labels
    and column totals (default: ``format_value``). ``category_titles`` are longer names for the
    tooltips (e.g. the full date where the axis shows ``24/11``). Empty data (no categories, or
    only zeros) gives a box saying :data:`NO_DATA` and no legend.
    """
    _check(categories, series)
    if not _has_data(categories, series):
        return _empty(width, title)
    short = format_short or format_value
    names = list(category_titles) if category_titles is not None else list(categories)
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    ticks = nice_ticks(max(totals))
    left = 10 + max(_text_width(short(t)) for t in ticks)
    right = 10.0
    plot_width = width - left - right

    # Legend first (on top), so the chart's height depends on how many rows it wraps into.
    svg = _svg(width, 0, title)
    legend_height = _legend(svg, series, left, plot_width, 4)
    top = 4 + legend_height + 14  # room for the column totals above the highest column
    bottom = top + plot_height
    height = bottom + 24
    svg.set("height", _n(height))
    svg.set("viewBox", f"0 0 {width} {_n(height)}")

    scale = plot_height / ticks[-1]
    axis = _sub(svg, "g", class_="axis", fill=_MUTED, text_anchor="end")
    for tick in ticks:
        y = bottom - tick * scale
        _sub(
            axis,
            "line",
            x1=_n(left),
            x2=_n(width - right),
            y1=_n(y),
            y2=_n(y),
            stroke=_GRID if tick else _AXIS,
        )
        _sub(axis, "text", short(tick), x=_n(left - 6), y=_n(y + 4))

    slot = plot_width / len(categories)
    bar = min(slot * 0.72, 56.0)
    # Thin the x labels so that they never overlap: every k-th one, always the first.
    label_every = max(1, -(-int(max(_text_width(c) for c in categories) + 8) // max(1, int(slot))))
    bars = _sub(svg, "g", class_="bars")
    labels = _sub(svg, "g", class_="labels", fill=_TEXT, text_anchor="middle")
    for i, category in enumerate(categories):
        x = left + slot * i + (slot - bar) / 2
        y = bottom
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            h = value * scale
            y -= h
            _segment(bars, s, names[i], value, format_value, x=x, y=y, width=bar, height=h)
        centre = x + bar / 2
        if i % label_every == 0:
            _sub(labels, "text", category, x=_n(centre), y=_n(bottom + 16))
        total = short(totals[i])
        if totals[i] > 0 and _text_width(total, 10) + 2 <= slot:
            _sub(labels, "text", total, x=_n(centre), y=_n(y - 4), font_size="10", fill=_MUTED)
    return svg


def horizontal_bars(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    format_value: Callable[[int], str] = format_count,
    format_short: Callable[[int], str] | None = None,
    category_titles: Sequence[str] | None = None,
    width: int = 560,
    bar_height: int = 20,
    show_totals: bool = True,
) -> etree._Element:
    """Horizontal bars, one per category (top to bottom in the given order), stacked by series.

    One series gives plain bars; one category gives a single stacked bar (a share of a whole).
    Long category labels are cut with "…" (the tooltip has them whole). Formatting and empty
    data as in :func:`stacked_columns`.
    """
    _check(categories, series)
    if not _has_data(categories, series):
        return _empty(width, title)
    short = format_short or format_value
    names = list(category_titles) if category_titles is not None else list(categories)
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    ticks = nice_ticks(max(totals))
    max_label = 28  # characters; a source or file name can be as long as it likes
    shown = [c if len(c) <= max_label else c[: max_label - 1] + "…" for c in categories]
    left = 12 + max(_text_width(c) for c in shown)
    right = 12 + max(_text_width(short(t)) for t in ticks) / 2
    if show_totals:
        right = max(right, 8 + max(_text_width(short(t), 10) for t in totals))
    plot_width = width - left - right

    svg = _svg(width, 0, title)
    legend_height = _legend(svg, series, left, plot_width, 4) if len(series) > 1 else 0.0
    top = 4 + legend_height + 6
    row = bar_height + 10
    bottom = top + row * len(categories)
    height = bottom + 22
    svg.set("height", _n(height))
    svg.set("viewBox", f"0 0 {width} {_n(height)}")

    scale = plot_width / ticks[-1]
    axis = _sub(svg, "g", class_="axis", fill=_MUTED, text_anchor="middle")
    for tick in ticks:
        x = left + tick * scale
        _sub(axis, "line", x1=_n(x), x2=_n(x), y1=_n(top), y2=_n(bottom), stroke=_GRID if tick else _AXIS)
        _sub(axis, "text", short(tick), x=_n(x), y=_n(bottom + 15))

    bars = _sub(svg, "g", class_="bars")
    labels = _sub(svg, "g", class_="labels", fill=_TEXT)
    for i, category in enumerate(categories):
        y = top + row * i + 5
        x = left
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            w = value * scale
            _segment(bars, s, names[i], value, format_value, x=x, y=y, width=w, height=bar_height)
            x += w
        label = _sub(
            labels, "text", shown[i], x=_n(left - 8), y=_n(y + bar_height / 2 + 4), text_anchor="end"
        )
        if shown[i] != category:
            _sub(label, "title", names[i])
        if show_totals and totals[i] > 0:
            _sub(
                labels,
                "text",
                short(totals[i]),
                x=_n(x + 5),
                y=_n(y + bar_height / 2 + 4),
                font_size="10",
                fill=_MUTED,
            )
    return svg


def to_string(svg: etree._Element) -> str:
    """The chart as markup for an HTML5 page (no namespace declaration: HTML does not need one)."""
    return etree.tostring(svg, method="html", encoding="unicode")


def to_document(svg: etree._Element) -> bytes:
    """The chart as a standalone ``.svg`` file: a copy of it in the SVG namespace, UTF-8."""
    namespace = "http://www.w3.org/2000/svg"  # an identifier, not fetched by anything
    copy = etree.fromstring(etree.tostring(svg))
    for element in copy.iter():
        if isinstance(element.tag, str):
            element.tag = f"{{{namespace}}}{element.tag}"
    etree.cleanup_namespaces(copy, top_nsmap={None: namespace})
    return etree.tostring(copy, xml_declaration=True, encoding="utf-8")
