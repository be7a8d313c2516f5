"""The reconciliation report as one self-contained HTML page: ``write_report_html(out, report)``.

One file that opens anywhere, offline, and prints: UTF-8, inline ``<style>``, inline SVG charts
(:mod:`gateway.accounting.reports.svg`), no JavaScript, and no reference to anything outside the page
(no URL, no external ``src``/``href``, no web font). The page is built as an lxml tree and
serialised with ``method="html"``: every text from the report (source names, file names,
messages) is escaped by the serialiser, never pasted into markup.

Headings are bilingual, Swedish first. What is not accounted for comes first, in a red box; then
the key figures, four charts, and the tables an auditor works from. Times are shown in the
report's own time zone (``report.stamp.timezone``).

A renderer only: every figure on the page (sums, shares, per-client and per-rule figures, the top
rejection reasons) comes from :mod:`gateway.accounting.reports.model`, as the CSV and JSON do.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import BinaryIO
from zoneinfo import ZoneInfo

from lxml import etree

from gateway.accounting.reports import svg as svg_chart
from gateway.accounting.reports.model import TALLY_COUNTS, Discrepancy, FileTally, Report, format_ore
from gateway.accounting.reports.svg import Series, clean_text, format_count
from gateway.domain.identity import mask_identities

__all__ = [
    "CAPITAL_COLOURS",
    "FILE_COLOURS",
    "STATE_COLOURS",
    "render_report_html",
    "write_report_html",
]

# What each outcome looks like, the same in every chart: green is good, vermillion is rejected,
# purple is a duplicate, orange is quarantine, grey is not decided yet.
FILE_COLOURS: dict[str, str] = {
    "accepted": svg_chart.BLUISH_GREEN,
    "partially_accepted": svg_chart.SKY_BLUE,
    "rejected": svg_chart.VERMILLION,
    "duplicate": svg_chart.REDDISH_PURPLE,
    "quarantined": svg_chart.ORANGE,
    "in_progress": svg_chart.GREY,
}
CAPITAL_COLOURS: dict[str, str] = {
    "capital_journaled_ore": svg_chart.BLUISH_GREEN,
    "capital_rejected_ore": svg_chart.VERMILLION,
    "capital_duplicate_ore": svg_chart.REDDISH_PURPLE,
}
STATE_COLOURS: dict[str, str] = {
    "open": svg_chart.YELLOW,
    "sealed": svg_chart.SKY_BLUE,
    "approved": svg_chart.BLUE,
    "delivered": svg_chart.BLUISH_GREEN,
    "withdrawn": svg_chart.GREY,
}

_FILE_LABELS: dict[str, tuple[str, str]] = {
    "accepted": ("Godkända", "Accepted"),
    "partially_accepted": ("Delvis godkända", "Partially accepted"),
    "rejected": ("Underkända", "Rejected"),
    "duplicate": ("Dubbletter", "Duplicates"),
    "quarantined": ("Karantän", "Quarantined"),
    "in_progress": ("Pågår", "In progress"),
}
_CAPITAL_LABELS: dict[str, tuple[str, str]] = {
    "capital_journaled_ore": ("Journalfört", "Journaled"),
    "capital_rejected_ore": ("Underkänt", "Rejected"),
    "capital_duplicate_ore": ("Dubbletter", "Duplicates"),
}
_STATE_LABELS: dict[str, tuple[str, str]] = {
    "open": ("Öppen", "Open"),
    "sealed": ("Förseglad", "Sealed"),
    "approved": ("Godkänd", "Approved"),
    "delivered": ("Levererad", "Delivered"),
    "withdrawn": ("Återkallad", "Withdrawn"),
}
_LATENCY_LABELS: dict[str, tuple[str, str]] = {
    "drop-to-receipt": ("Fil till kvittens", "File to receipt"),
    "seal-to-delivery": ("Försegling till leverans", "Seal to delivery"),
}
_SEVERITY_LABELS: dict[str, tuple[str, str]] = {"error": ("Fel", "Error"), "warning": ("Varning", "Warning")}
_WEEKDAYS = ("mån", "tis", "ons", "tor", "fre", "lör", "sön")
#: A period up to this long gets one column per calendar day (quiet days show as gaps); a longer
#: one only the days with files, so that a year's report stays readable.
_MAX_CALENDAR_DAYS = 62
# Chart widths in SVG units, chosen so that at a 1280 px window (the screenshot, a laptop) one SVG
# unit is one CSS pixel: the charts' 11 px text stays 11 px. Narrower windows scale them down.
_HALF_WIDTH = 570
_FULL_WIDTH = 1190
_SPLIT_WIDTH = 700
_DASH = "–"
#: Files listed on the page (all of them are in the .filer.csv beside it).
FILES_SHOWN = 500

_CSS = """
:root {
  --ink: #1d2125; --muted: #5f6670; --faint: #8a9199; --line: #e3e5e8; --bg: #f4f5f7; --card: #ffffff;
  --bad: #b42318; --bad-bg: #fef3f2; --bad-line: #fda29b;
  --good: #067647; --good-bg: #ecfdf3; --good-line: #abefc6;
  --warn: #b54708; --warn-bg: #fffaeb; --warn-line: #fedf89;
  --accent: #0b5394;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 15px/1.5 FONT_STACK; }
main { max-width: 1320px; margin: 0 auto; padding: 28px 24px 40px; }
h1, h2, h3 { line-height: 1.25; margin: 0; }
h1 { font-size: 28px; font-weight: 700; letter-spacing: -0.01em; }
h2 { font-size: 18px; font-weight: 650; margin-bottom: 12px; }
h1 .en, h2 .en, h3 .en { color: var(--faint); font-weight: 400; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.92em; }
.page-header { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 12px 32px; align-items: flex-end;
  padding-bottom: 18px; margin-bottom: 22px; border-bottom: 1px solid var(--line); }
.eyebrow { color: var(--accent); font-size: 12px; font-weight: 600; letter-spacing: 0.08em; text-transform: uppercase; margin-bottom: 4px; }
.period { font-size: 17px; margin-top: 6px; color: var(--ink); }
.period .label { color: var(--muted); }
.stamp { display: grid; grid-template-columns: auto auto; gap: 2px 12px; margin: 0; font-size: 12.5px; color: var(--muted); }
.stamp dt { text-align: right; }
.stamp dd { margin: 0; color: var(--ink); font-variant-numeric: tabular-nums; }
.status { border-radius: 10px; padding: 16px 20px; margin-bottom: 22px; border: 1px solid; }
.status h2 { margin-bottom: 4px; font-size: 20px; }
.status p { margin: 0; }
.status.bad { background: var(--bad-bg); border-color: var(--bad-line); border-left: 6px solid var(--bad); }
.status.bad h2, .status.bad h2 .en { color: var(--bad); }
.status.good { background: var(--good-bg); border-color: var(--good-line); border-left: 6px solid var(--good); }
.status.good h2, .status.good h2 .en { color: var(--good); }
.status.warn { background: var(--warn-bg); border-color: var(--warn-line); border-left: 6px solid var(--warn); }
.status.warn h2, .status.warn h2 .en { color: var(--warn); }
.status.quiet { background: #f8fafc; border-color: #e2e8f0; border-left: 6px solid #94a3b8; }
.status ul { margin: 12px 0 0; padding: 0; list-style: none; }
.status li { background: #fff; border: 1px solid var(--bad-line); border-radius: 8px; padding: 10px 14px; margin-top: 8px; }
.status li .what { font-weight: 600; }
.status li .kind { display: inline-block; background: var(--bad); color: #fff; border-radius: 4px; padding: 0 6px;
  margin-right: 8px; font-size: 12px; }
.status li p { margin: 4px 0 0; }
.en { color: var(--muted); }
.figures { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 12px; margin-bottom: 22px; }
.figure { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; }
.figure .label { font-size: 12.5px; color: var(--muted); }
.figure .value { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; white-space: nowrap; margin-top: 2px; }
.figure .unit { font-size: 14px; font-weight: 500; color: var(--muted); margin-left: 4px; }
.figure .note { font-size: 12px; color: var(--faint); }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; margin-bottom: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; margin: 0 0 16px; }
.charts .card { margin: 0; }
.card .intro { margin: -6px 0 10px; font-size: 13px; color: var(--muted); }
svg.chart { display: block; width: 100%; height: auto; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 7px; border-bottom: 1px solid var(--line); vertical-align: baseline; }
th { text-align: left; font-weight: 600; font-size: 12px; background: #f8f9fa; vertical-align: top; }
th .en { display: block; font-weight: 400; font-size: 10.5px; color: var(--faint); }
thead tr.group th { text-align: center; border-bottom: 2px solid var(--line); background: #eef0f3; }
th.num, td.num { text-align: right; white-space: nowrap; }
td.mono, td.nowrap, td.state { white-space: nowrap; }
table.tallies { font-size: 12px; }
table.tallies th, table.tallies td { padding: 4px 5px; }
table.compact { width: auto; min-width: 50%; }
tr.why td { padding-top: 0; font-size: 12px; }
td.zero { color: #c0c5cb; }
tbody tr:nth-child(even) td { background: #fbfbfc; }
tfoot td { font-weight: 650; border-top: 2px solid var(--ink); border-bottom: 0; background: #fff; }
tr.unbalanced td, tfoot tr.unbalanced td { background: var(--bad-bg); color: var(--bad); }
tr.unbalanced td:first-child { box-shadow: inset 4px 0 0 var(--bad); }
tbody tr.unbalanced td { background: var(--bad-bg); }
.flag { font-weight: 700; }
.ok { color: var(--good); }
.badge { display: inline-block; border-radius: 999px; padding: 0 8px; font-size: 12px; background: #eef0f3; color: var(--ink); }
.badge.protected { background: #fff4e5; color: #8a4b00; border: 1px solid #f5c58a; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.empty { color: var(--faint); font-style: italic; }
.split { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 20px; align-items: center; }
footer { margin-top: 28px; padding-top: 14px; border-top: 1px solid var(--line); color: var(--muted); font-size: 12px; }
footer code { color: var(--ink); }
@media (max-width: 900px) {
  .figures { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  .charts, .split { grid-template-columns: minmax(0, 1fr); }
}
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { background: #fff; font-size: 10pt; }
  main { max-width: none; padding: 0; }
  .card, .figure, .status { break-inside: avoid; }
  .table-wrap { overflow: visible; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
}
""".replace("FONT_STACK", svg_chart.FONT_STACK)


def write_report_html(out: BinaryIO, report: Report) -> None:
    """Write ``report`` to ``out`` as one self-contained UTF-8 HTML5 page."""
    out.write(render_report_html(report))


def render_report_html(report: Report) -> bytes:
    """The page as bytes (what :func:`write_report_html` writes)."""
    page = _Page(report)
    return etree.tostring(page.build(), method="html", encoding="utf-8", doctype="<!DOCTYPE html>")


# --- small builders ------------------------------------------------------------------------------


def _el(
    parent: etree._Element, tag: str, text: str | None = None, *, cls: str | None = None, **attrs: str
) -> etree._Element:
    """A child element; ``text`` is escaped by the serialiser (and cleaned of what HTML cannot carry)."""
    element = etree.SubElement(
        parent, tag, {key.rstrip("_").replace("_", "-"): clean_text(v) for key, v in attrs.items()}
    )
    if cls:
        element.set("class", cls)
    if text is not None:
        element.text = clean_text(text)
    return element


def _bilingual(
    parent: etree._Element, tag: str, sv: str, en: str, *, cls: str | None = None
) -> etree._Element:
    """``Svenska / English``, the English part in a quieter span."""
    element = _el(parent, tag, sv + " ", cls=cls)
    _el(element, "span", f"/ {en}", cls="en", lang="en")
    return element


def _th(row: etree._Element, sv: str, en: str | None = None, *, num: bool = False, colspan: int = 1) -> None:
    # Swedish on top, English underneath in small type: the column stays narrow.
    cell = _el(row, "th", sv + (" " if en else ""), cls="num" if num else None, scope="col")
    if colspan > 1:
        cell.set("colspan", str(colspan))
    if en:
        _el(cell, "span", en, cls="en", lang="en")


def _td(
    row: etree._Element, text: str, *, num: bool = False, cls: str | None = None, title: str | None = None
) -> etree._Element:
    classes = " ".join(c for c in ("num" if num else None, cls) if c) or None
    cell = _el(row, "td", text, cls=classes)
    if title:
        cell.set("title", clean_text(title))
    return cell


def _count_cell(row: etree._Element, value: int, *, title: str | None = None) -> None:
    _td(row, format_count(value), num=True, cls="zero" if value == 0 else None, title=title)


def _kr_short(ore: int) -> str:
    """Whole kronor when the amount is whole (axis ticks are), else the exact amount."""
    return format_count(ore // 100) if ore % 100 == 0 else format_ore(ore)


def _percent(value: float | None) -> str:
    """``51,2 %``, or a dash for a share of nothing."""
    return _DASH if value is None else f"{value:.1f} %".replace(".", ",")


def _kr_exact(ore: int) -> str:
    return f"{format_ore(ore)} kr"


def _duration(seconds: float | None) -> str:
    """Seconds for a person: ``0,8 s``, ``42 s``, ``3 min 12 s``, ``2 h 05 min``, ``1 d 3 h``."""
    if seconds is None:
        return _DASH
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".", ",")
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _label(labels: dict[str, tuple[str, str]], key: str) -> str:
    sv, en = labels.get(key, (key, key))
    return sv if sv == en else f"{sv} / {en}"


def _short_day(day: date) -> str:
    return f"{day.day}/{day.month}"


def _long_day(day: date) -> str:
    return f"{day.isoformat()} ({_WEEKDAYS[day.weekday()]})"


# --- the page ------------------------------------------------------------------------------------


class _Page:
    """Builds the page tree for one report; one method per section, in page order."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.total = report.total
        self.zone = ZoneInfo(report.stamp.timezone)
        self.zone_name = report.stamp.timezone

    # Times ------------------------------------------------------------------------------------

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def when(self, moment: datetime | None) -> str:
        return _DASH if moment is None else self.local(moment).strftime("%Y-%m-%d %H:%M")

    def days(self) -> list[date]:
        """The chart's x axis: every day of a short period, else the days with files."""
        seen = set(self.report.per_day)
        first, last = self.report.period_from, self.report.period_to
        span = (last - first).days + 1
        if 0 < span <= _MAX_CALENDAR_DAYS:
            seen.update(first + timedelta(days=i) for i in range(span))
        return sorted(seen)

    # Page -------------------------------------------------------------------------------------

    def build(self) -> etree._Element:
        report = self.report
        html = etree.Element("html", lang="sv")
        head = _el(html, "head")
        _el(head, "meta", charset="utf-8")
        _el(head, "meta", name="viewport", content="width=device-width, initial-scale=1")
        _el(head, "meta", name="generator", content=f"inkasso-gateway {report.stamp.gateway_version}")
        _el(
            head,
            "title",
            f"Avstämning / Reconciliation {report.period_from.isoformat()}{_DASH}{report.period_to.isoformat()}",
        )
        _el(head, "style", _CSS)
        main = _el(_el(html, "body"), "main")
        self.header(main)
        self.status(main)
        self.figures(main)
        charts = _el(main, "div", cls="charts")
        self.files_chart(charts)
        self.capital_chart(charts)
        self.rules_section(main)
        self.capital_state_section(main)
        self.clients_table(main)
        self.tallies_table(main)
        self.journals_table(main)
        self.latency_table(main)
        self.attention_table(main)
        self.files_table(main)
        self.footer(main)
        return html

    def header(self, main: etree._Element) -> None:
        report, stamp = self.report, self.report.stamp
        header = _el(main, "header", cls="page-header")
        left = _el(header, "div")
        _el(left, "div", "inkasso-gateway · Avstämningsrapport / Reconciliation report", cls="eyebrow")
        _bilingual(left, "h1", "Avstämning", "Reconciliation")
        period = _el(left, "div", cls="period")
        _el(period, "span", "Period ", cls="label")
        _el(
            period, "strong", f"{report.period_from.isoformat()} {_DASH} {report.period_to.isoformat()}"
        ).tail = "  ·  "
        _el(period, "span", "Uppdragsgivare / Client ", cls="label")
        _el(period, "strong", report.client if report.client is not None else "alla / all")
        stamp_list = _el(header, "dl", cls="stamp")
        generated = self.local(stamp.generated_at)
        for term, value in (
            ("Skapad / Generated", f"{generated:%Y-%m-%d %H:%M:%S} {generated:%Z} ({self.zone_name})"),
            ("Gateway", stamp.gateway_version),
            ("Regelversion / Rules", stamp.ruleset_version),
            # The first 12 hex digits identify it at a glance; the footer has all 64.
            ("Konfiguration / Config", f"sha256 {stamp.config_sha256[:12]}…"),
        ):
            _el(stamp_list, "dt", term)
            _el(stamp_list, "dd", value)

    def status(self, main: etree._Element) -> None:
        report = self.report
        if report.balanced and report.waiting:
            box = _el(main, "section", cls="status warn", id="status", role="status")
            _bilingual(box, "h2", "Väntar på en handläggare", "Waiting for a person")
            _el(box, "p", "Allt är redovisat, men detta är inte klart och görs inte klart av sig självt. ")
            _el(
                box[-1],
                "span",
                "Everything is accounted for, but this is not done and will not finish on its own.",
                cls="en",
                lang="en",
            )
            self._items(box, report.waiting)
            return
        if report.balanced and report.empty:
            box = _el(main, "section", cls="status quiet", id="status")
            _bilingual(box, "h2", "Inga filer kom", "No files arrived")
            _el(box, "p", "Ingen fil togs emot under perioden. ")
            _el(box[-1], "span", "No file was received in the period.", cls="en", lang="en")
            return
        if not report.discrepancies and not report.gaps:
            box = _el(main, "section", cls="status good", id="status")
            _bilingual(box, "h2", "✓ Allt avstämt", "Everything accounted for")
            _el(box, "p", "Varje fil, varje ärende och varje krona i perioden är redovisad. ")
            _el(
                box[-1],
                "span",
                "Every file, case and krona in the period is accounted for.",
                cls="en",
                lang="en",
            )
            return
        figures = report.key_figures
        box = _el(main, "section", cls="status bad", id="status", role="alert")
        _bilingual(box, "h2", "⚠ Ej avstämt", "Not accounted for")
        summary = f"{figures.discrepancies} avvikelse(r) och {figures.sequence_gaps} lucka/luckor i journalnumreringen. "
        _el(box, "p", summary)
        _el(
            box[-1],
            "span",
            f"{figures.discrepancies} discrepancy(ies) and {figures.sequence_gaps} gap(s) in journal numbering.",
            cls="en",
            lang="en",
        )
        items = self._items(box, [*report.discrepancies, *report.waiting])
        for gap in report.gaps:
            li = _el(items, "li")
            what = _el(li, "div", cls="what")
            _el(what, "span", "sequence-gap", cls="kind mono")
            _el(what, "span", gap.client)
            _el(li, "p", gap.message_sv, lang="sv")
            _el(li, "p", gap.message_en, cls="en", lang="en")

    @staticmethod
    def _items(box: etree._Element, found: Sequence[Discrepancy]) -> etree._Element:
        items = _el(box, "ul")
        for item in found:
            li = _el(items, "li")
            what = _el(li, "div", cls="what")
            _el(what, "span", item.kind, cls="kind mono")
            # Masked here too: a subject may quote a file name, and file names hold personnummer.
            _el(what, "span", mask_identities(item.subject))
            _el(li, "p", mask_identities(item.message_sv), lang="sv")
            _el(li, "p", mask_identities(item.message_en), cls="en", lang="en")
        return items

    def figures(self, main: etree._Element) -> None:
        figures = self.report.key_figures
        share = None
        if figures.capital_journaled_percent is not None:
            share = f"{_percent(figures.capital_journaled_percent)} av in / of in"
        cards: list[tuple[str, str, str, str | None, str | None]] = [
            (
                "Filer in",
                "Files in",
                format_count(figures.files),
                None,
                f"{format_count(figures.files_accepted)} godkända / accepted",
            ),
            (
                "Ärenden in",
                "Cases in",
                format_count(figures.cases),
                None,
                f"{format_count(figures.cases_journaled)} journalförda / journaled",
            ),
            ("Kapital in", "Capital in", format_ore(figures.capital_in_ore), "kr", None),
            (
                "Kapital journalfört",
                "Capital journaled",
                format_ore(figures.capital_journaled_ore),
                "kr",
                share,
            ),
            (
                "Kapital levererat",
                "Capital delivered",
                format_ore(figures.delivered_capital_ore),
                "kr",
                "journaler levererade i perioden / journals delivered in the period",
            ),
            ("Journaler förseglade", "Journals sealed", format_count(figures.journals_sealed), None, None),
            ("Journaler godkända", "Journals approved", format_count(figures.journals_approved), None, None),
            (
                "Journaler levererade",
                "Journals delivered",
                format_count(figures.journals_delivered),
                None,
                None,
            ),
        ]
        grid = _el(main, "section", cls="figures", aria_label="Nyckeltal / Key figures")
        for sv, en, value, unit, note in cards:
            card = _el(grid, "div", cls="figure")
            _bilingual(card, "div", sv, en, cls="label")
            number = _el(card, "div", value, cls="value")
            if unit:
                _el(number, "span", unit, cls="unit")
            if note:
                _el(card, "div", note, cls="note")

    def _chart_card(
        self, parent: etree._Element, sv: str, en: str, intro: str | None = None
    ) -> etree._Element:
        card = _el(parent, "section", cls="card")
        _bilingual(card, "h2", sv, en)
        if intro:
            _el(card, "p", intro, cls="intro")
        return card

    def files_chart(self, parent: etree._Element) -> None:
        card = self._chart_card(
            parent, "Filer per dag", "Files per day", "Antal filer efter utfall / Number of files by outcome"
        )
        days = self.days()
        per_day = self._per_day(days)
        series = [
            Series(
                f"{_label(_FILE_LABELS, key)} ({format_count(getattr(self.total, key))})",
                colour,
                tuple(getattr(per_day[d], key) for d in days),
            )
            for key, colour in FILE_COLOURS.items()
        ]
        card.append(
            svg_chart.stacked_columns(
                [_short_day(d) for d in days],
                series,
                title="Filer per dag / Files per day",
                format_value=lambda n: f"{format_count(n)} fil(er) / file(s)",
                format_short=format_count,
                category_titles=[_long_day(d) for d in days],
                width=_HALF_WIDTH,
            )
        )

    def capital_chart(self, parent: etree._Element) -> None:
        card = self._chart_card(
            parent, "Kapital per dag", "Capital per day", "Kronor efter utfall / Kronor by outcome"
        )
        days = self.days()
        per_day = self._per_day(days)
        series = [
            Series(_label(_CAPITAL_LABELS, key), colour, tuple(getattr(per_day[d], key) for d in days))
            for key, colour in CAPITAL_COLOURS.items()
        ]
        card.append(
            svg_chart.stacked_columns(
                [_short_day(d) for d in days],
                series,
                title="Kapital per dag (kr) / Capital per day (SEK)",
                format_value=_kr_exact,
                format_short=_kr_short,
                category_titles=[_long_day(d) for d in days],
                width=_HALF_WIDTH,
            )
        )

    def _per_day(self, days: Sequence[date]) -> dict[date, FileTally]:
        # Sources and clients summed per day: the charts show the whole flow (a quiet day as 0).
        sums = self.report.per_day
        return {day: sums.get(day, FileTally(day, "", "")) for day in days}

    def rules_section(self, main: etree._Element) -> None:
        card = self._chart_card(
            main,
            "Vanligaste orsakerna till underkännande",
            "Top rejection reasons",
            "Anmärkningar av typen fel per regel, de tio vanligaste, per uppdragsgivare (varningar underkänner inte). "
            "/ Error findings per rule, the ten most frequent, by client (warnings do not reject).",
        )
        reasons = self.report.top_rejection_reasons
        series = [
            Series(
                client,
                svg_chart.PALETTE[i % len(svg_chart.PALETTE)],
                tuple(reason.by_client.get(client, 0) for reason in reasons),
            )
            for i, client in enumerate(self.report.rejection_clients)
        ]
        card.append(
            svg_chart.horizontal_bars(
                [reason.code for reason in reasons],
                series,
                title="Vanligaste orsakerna till underkännande / Top rejection reasons",
                format_value=lambda n: f"{format_count(n)} anmärkning(ar) / finding(s)",
                format_short=format_count,
                width=_FULL_WIDTH,
            )
        )
        self.rules_table(card)

    def rules_table(self, card: etree._Element) -> None:
        _bilingual(card, "h3", "Anmärkningar per regel och dag", "Findings per rule and day").set(
            "style", "margin: 18px 0 8px; font-size: 15px"
        )
        if not self.report.rules:
            _el(card, "p", "Inga anmärkningar / No findings", cls="empty")
            return
        days = self.report.rule_days
        table = _el(_el(card, "div", cls="table-wrap"), "table")
        head = _el(_el(table, "thead"), "tr")
        _th(head, "Regel", "Rule")
        _th(head, "Typ", "Severity")
        for day in days:
            _th(head, _short_day(day), _WEEKDAYS[day.weekday()], num=True)
        _th(head, "Summa", "Total", num=True)
        body = _el(table, "tbody")
        for rule in self.report.rules_by_code:
            row = _el(body, "tr")
            _td(row, rule.code, cls="mono")
            _td(row, _label(_SEVERITY_LABELS, rule.severity))
            for day in days:
                n = rule.findings_per_day.get(day, 0)
                _count_cell(
                    row,
                    n,
                    title=f"{day.isoformat()}: {n} anmärkning(ar) i {rule.files_per_day.get(day, 0)} fil(er) / finding(s) in file(s)",
                )
            _count_cell(row, rule.findings)

    def capital_state_section(self, main: etree._Element) -> None:
        card = self._chart_card(
            main,
            "Var det journalförda kapitalet är nu",
            "Where the journaled capital is now",
            "Ärenden journalförda i perioden, efter journalens läge i dag / Cases journaled in the period, by their journal's state now",
        )
        rows = self.report.capital_now
        split = _el(card, "div", cls="split")
        chart_box = _el(split, "div")
        series = [
            Series(
                _label(_STATE_LABELS, row.state),
                STATE_COLOURS.get(row.state, svg_chart.BLACK),
                (row.capital_ore,),
            )
            for row in rows
        ]
        chart_box.append(
            svg_chart.horizontal_bars(
                ["Kapital / Capital"],
                series,
                title="Journalfört kapital efter läge / Journaled capital by state",
                format_value=_kr_exact,
                format_short=_kr_short,
                width=_SPLIT_WIDTH,
                bar_height=40,
                show_totals=False,  # the table beside it has the total
            )
        )
        table = _el(_el(split, "div", cls="table-wrap"), "table")
        head = _el(_el(table, "thead"), "tr")
        _th(head, "Läge", "State")
        _th(head, "Ärenden", "Cases", num=True)
        _th(head, "Kapital, kr", "Capital, SEK", num=True)
        _th(head, "Andel", "Share", num=True)
        body = _el(table, "tbody")
        for row in rows:
            tr = _el(body, "tr")
            first = _el(tr, "td", cls="state")
            _el(
                first,
                "span",
                "",
                cls="swatch",
                style=f"background: {STATE_COLOURS.get(row.state, svg_chart.BLACK)}",
            )
            _el(first, "span", _label(_STATE_LABELS, row.state))
            _count_cell(tr, row.cases)
            _td(tr, format_ore(row.capital_ore), num=True)
            _td(tr, _percent(row.share_percent), num=True)
        if not rows:
            _el(_el(body, "tr"), "td", "Inga data / No data", cls="empty", colspan="4")
        total = self.report.capital_now_total
        foot = _el(_el(table, "tfoot"), "tr")
        _td(foot, "Summa / Total")
        _count_cell(foot, total.cases)
        _td(foot, format_ore(total.capital_ore), num=True)
        _td(foot, _percent(total.share_percent), num=True)

    def clients_table(self, main: etree._Element) -> None:
        """Cases and kronor per client over the whole period, in and out."""
        card = self._chart_card(
            main,
            "Per uppdragsgivare",
            "Per client",
            "Filer, ärenden och kapital in under perioden, och journaler levererade i perioden / Files, cases "
            "and capital in during the period, and journals delivered in the period",
        )
        clients = self.report.per_client
        table = _el(_el(card, "div", cls="table-wrap"), "table")
        head = _el(_el(table, "thead"), "tr")
        _th(head, "Uppdragsgivare", "Client")
        _th(head, "Filer", "Files", num=True)
        _th(head, "Ärenden in", "Cases in", num=True)
        _th(head, "Journalförda", "Journaled", num=True)
        _th(head, "Underkända", "Rejected", num=True)
        _th(head, "Kapital in, kr", "Capital in, SEK", num=True)
        _th(head, "Journalfört, kr", "Journaled, SEK", num=True)
        _th(head, "Levererade journaler", "Journals delivered", num=True)
        _th(head, "Levererat, kr", "Delivered, SEK", num=True)
        body = _el(table, "tbody")
        for figures in clients:
            tally = figures.tally
            row = _el(body, "tr")
            _td(row, figures.client)
            for value in (tally.files, tally.cases, tally.cases_journaled, tally.cases_rejected):
                _count_cell(row, value)
            _td(row, format_ore(tally.capital_in_ore), num=True)
            _td(row, format_ore(tally.capital_journaled_ore), num=True)
            _count_cell(row, figures.journals_delivered)
            _td(row, format_ore(figures.delivered_capital_ore), num=True)
        if not clients:
            _el(_el(body, "tr"), "td", "Inga data / No data", cls="empty", colspan="9")

    def tallies_table(self, main: etree._Element) -> None:
        card = self._chart_card(
            main,
            "Avstämning per dag, källa och uppdragsgivare",
            "Reconciliation per day, source and client",
            "Filer in = godkända + delvis + underkända + dubbletter + karantän + pågår; ärenden och kapital in = journalfört + underkänt + dubbletter. "
            "/ Files in = the sum of the outcomes; cases and capital in = journaled + rejected + duplicate.",
        )
        table = _el(_el(card, "div", cls="table-wrap"), "table", cls="tallies")
        thead = _el(table, "thead")
        group = _el(thead, "tr", cls="group")
        _th(group, "", colspan=3)
        _th(group, "Filer", "Files", colspan=7)
        _th(group, "Ärenden", "Cases", colspan=4)
        _th(group, "Kapital, kr", "Capital, SEK", colspan=4)
        head = _el(thead, "tr")
        for sv, en, num in _TALLY_COLUMNS:
            _th(head, sv, en, num=num)
        body = _el(table, "tbody")
        for tally in self.report.tallies:
            self._tally_row(body, tally, tally.day.isoformat(), tally.source, tally.client)
        if not self.report.tallies:
            _el(
                _el(body, "tr"),
                "td",
                "Inga filer i perioden / No files in the period",
                cls="empty",
                colspan=str(len(_TALLY_COLUMNS)),
            )
        self._tally_row(_el(table, "tfoot"), self.total, "Summa / Total", "", "")

    def _tally_row(
        self, parent: etree._Element, tally: FileTally, day: str, source: str, client: str
    ) -> None:
        row = _el(parent, "tr", cls="tally" if tally.balanced else "tally unbalanced")
        _td(row, day, cls="nowrap" if source or client else None)
        _td(row, source)
        _td(row, client)
        for name in TALLY_COUNTS:
            value: int = getattr(tally, name)
            if name.endswith("_ore"):
                _td(row, format_ore(value), num=True, cls="zero" if value == 0 else None)
            else:
                _count_cell(row, value)
        if tally.balanced:
            return
        # Say which identity fails and by how much, in words: red alone does not print or read aloud.
        why = []
        if tally.files != tally.files_accounted:
            why.append(f"filer / files {tally.files} ≠ {tally.files_accounted}")
        if tally.cases != tally.cases_accounted:
            why.append(f"ärenden / cases {tally.cases} ≠ {tally.cases_accounted}")
        if tally.capital_in_ore != tally.capital_accounted_ore:
            why.append(
                f"kapital / capital {format_ore(tally.capital_in_ore)} ≠ {format_ore(tally.capital_accounted_ore)}"
            )
        note = _el(parent, "tr", cls="unbalanced why")
        _td(note, "", cls="nowrap")
        cell = _td(note, "", cls="flag")
        cell.set("colspan", str(len(_TALLY_COLUMNS) - 1))
        _el(cell, "strong", "✗ Går inte ihop / Does not balance: ")
        _el(cell, "span", "; ".join(why))

    def journals_table(self, main: etree._Element) -> None:
        card = self._chart_card(main, "Journaler", "Journals")
        journals = self.report.journals
        table = _el(_el(card, "div", cls="table-wrap"), "table")
        head = _el(_el(table, "thead"), "tr")
        for sv, en, num in (
            ("Journal", None, False),
            ("Uppdragsgivare", "Client", False),
            ("Nr", "No.", True),
            ("Läge", "State", False),
            ("Ärenden", "Cases", True),
            ("Kapital, kr", "Capital, SEK", True),
            ("Förseglad", "Sealed", False),
            ("Godkänd", "Approved", False),
            ("Levererad", "Delivered", False),
            ("Fil", "File", False),
        ):
            _th(head, sv, en, num=num)
        body = _el(table, "tbody")
        for j in journals:
            row = _el(body, "tr")
            _td(row, j.journal_id, cls="mono")
            _td(row, j.client)
            _td(row, _DASH if j.sequence is None else str(j.sequence), num=True)
            state = _el(row, "td", cls="state")
            _el(
                state,
                "span",
                "",
                cls="swatch",
                style=f"background: {STATE_COLOURS.get(j.state, svg_chart.BLACK)}",
            )
            _el(state, "span", _label(_STATE_LABELS, j.state))
            _count_cell(row, j.case_count)
            _td(row, format_ore(j.capital_ore), num=True)
            for moment in (j.sealed_at, j.approved_at, j.delivered_at):
                _td(row, self.when(moment), cls="mono").set("style", "white-space: nowrap")
            _td(row, j.file_name or _DASH, cls="mono")
        if not journals:
            _el(
                _el(body, "tr"),
                "td",
                "Inga journaler i perioden / No journals in the period",
                cls="empty",
                colspan="10",
            )
            return
        foot = _el(_el(table, "tfoot"), "tr")
        _td(foot, "Summa / Total")
        for _ in range(3):
            _td(foot, "")
        _count_cell(foot, self.report.journal_cases)
        _td(foot, format_ore(self.report.journal_capital_ore), num=True)
        for _ in range(4):
            _td(foot, "")

    def latency_table(self, main: etree._Element) -> None:
        card = self._chart_card(main, "Ledtider", "Latencies")
        table = _el(_el(card, "div", cls="table-wrap"), "table", cls="compact")
        head = _el(_el(table, "thead"), "tr")
        _th(head, "Mätning", "Measure")
        _th(head, "Antal", "Count", num=True)
        _th(head, "Median", None, num=True)
        _th(head, "95:e percentilen", "95th percentile", num=True)
        _th(head, "Längst", "Max", num=True)
        body = _el(table, "tbody")
        for latency in self.report.latencies:
            row = _el(body, "tr")
            _td(row, _label(_LATENCY_LABELS, latency.name), title=latency.name)
            _count_cell(row, latency.count)
            for seconds in (latency.median_seconds, latency.p95_seconds, latency.max_seconds):
                _td(row, _duration(seconds), num=True, title=_DASH if seconds is None else f"{seconds:.3f} s")
        if not self.report.latencies:
            _el(_el(body, "tr"), "td", "Inga data / No data", cls="empty", colspan="5")

    def files_table(self, main: etree._Element) -> None:
        """The period's files, for matching against an ERP's export log (all of them in .filer.csv)."""
        card = self._chart_card(main, "Filer", "Files")
        files = self.report.files
        if not len(files):
            _el(card, "p", "Inga filer / No files", cls="empty")
            return
        table = _el(_el(card, "div", cls="table-wrap"), "table")
        head = _el(_el(table, "thead"), "tr")
        _th(head, "Fil", "File")
        _th(head, "Källa", "Source")
        _th(head, "Mottagen", "Received")
        _th(head, "SHA-256")
        _th(head, "Status")
        _th(head, "Godkända", "Accepted", num=True)
        _th(head, "Underkända", "Rejected", num=True)
        _th(head, "Kvittens", "Receipt")
        body = _el(table, "tbody")
        for shown, line in enumerate(files):
            if shown == FILES_SHOWN:
                break
            row = _el(body, "tr")
            _td(row, mask_identities(line.name), cls="mono")
            _td(row, line.source)
            _td(row, f"{self.local(line.received_at):%Y-%m-%d %H:%M:%S}")
            _td(row, line.sha256[:12], cls="mono", title=line.sha256)
            _td(row, line.status)
            _count_cell(row, line.cases_accepted)
            _count_cell(row, line.cases_rejected)
            _td(row, mask_identities(line.receipt or _DASH), cls="mono")
        if len(files) > FILES_SHOWN:
            more = len(files) - FILES_SHOWN
            _el(
                card,
                "p",
                f"… och {more} filer till i .filer.csv / … and {more} more files in .filer.csv",
                cls="note",
            )

    def attention_table(self, main: etree._Element) -> None:
        card = self._chart_card(main, "Ärenden som väntar på en person", "Cases waiting for a person")
        cases = self.report.attention
        if not cases:
            _el(card, "p", "Inga ärenden väntar / No cases waiting", cls="empty")
            return
        table = _el(_el(card, "div", cls="table-wrap"), "table")
        head = _el(_el(table, "thead"), "tr")
        _th(head, "Ärende", "Case")
        _th(head, "Uppdragsgivare", "Client")
        _th(head, "Journal")
        _th(head, "Identitet", "Identity")
        _th(head, "Kapital, kr", "Capital, SEK", num=True)
        _th(head, "Adress", "Address")
        body = _el(table, "tbody")
        for case in cases:
            row = _el(body, "tr")
            _td(row, mask_identities(case.reference), cls="mono")
            _td(row, case.client)
            _td(row, case.journal_id, cls="mono")
            _td(row, case.masked_identity, cls="mono")
            _td(row, format_ore(case.capital_ore), num=True)
            address = _el(row, "td")
            if case.protected or case.address is None:
                _el(
                    address,
                    "span",
                    "Skyddad adress / Protected address" if case.protected else _DASH,
                    cls="badge protected" if case.protected else None,
                )
            else:
                address.text = clean_text(case.address)
        more = self.report.attention_total - len(cases)
        if more > 0:
            _el(
                card,
                "p",
                f"… och {more} ärenden till; se `journal show` / … and {more} more cases; see `journal show`",
                cls="note",
            )

    def footer(self, main: etree._Element) -> None:
        stamp = self.report.stamp
        footer = _el(main, "footer")
        generated = self.local(stamp.generated_at)
        footer.text = clean_text(
            f"Skapad / Generated {generated.isoformat(timespec='seconds')} ({self.zone_name}) · "
            f"inkasso-gateway {stamp.gateway_version} · regelversion / rules {stamp.ruleset_version} · "
            "konfiguration / config sha256 "
        )
        _el(footer, "code", stamp.config_sha256)
        if self.report.chain_head:
            # Filed away with the report, the head anchors the receipt chain outside the gateway:
            # `audit verify --anchor` later proves no receipt up to it was rewritten.
            head = _el(footer, "span", " · kvittokedjans huvud / receipt chain head sha256 ")
            _el(head, "code", self.report.chain_head)


# The tally table's columns: (Swedish, English, numeric); the numbers are TALLY_COUNTS in order.
_TALLY_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("Dag", "Day", False),
    ("Källa", "Source", False),
    # A soft hyphen: the long word may break, so the 18 columns fit a laptop screen.
    ("Uppdrags\u00adgivare", "Client", False),
    ("In", "In", True),
    ("Godk.", "Accepted", True),
    ("Delvis", "Partial", True),
    ("Underk.", "Rejected", True),
    ("Dubbl.", "Dupl.", True),
    ("Karantän", "Quarant.", True),
    ("Pågår", "Pending", True),
    ("In", "In", True),
    ("Journalf.", "Journaled", True),
    ("Underk.", "Rejected", True),
    ("Dubbl.", "Dupl.", True),
    ("In", "In", True),
    ("Journalfört", "Journaled", True),
    ("Underkänt", "Rejected", True),
    ("Dubbl.", "Dupl.", True),
)
