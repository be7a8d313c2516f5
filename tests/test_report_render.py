"""The report writers: the HTML page, the CSV tables, the SVG charts and the JSON and text
summaries, on hand-made reports.

The reports here are built by hand (no store): a week with two sources and two clients, a
rejected file, a duplicate, a quarantined one, a file in progress; the same with discrepancies and
a gap; and an empty one. The HTML is checked as a parsed tree, the CSV through ``csv.reader``, and
the page as Chromium draws it (tests/chromium.py): the chart colours must really be on screen.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest
from lxml import etree
from PIL import Image

from gateway.accounting.reports import svg as svg_chart
from gateway.accounting.reports.csv import CSV_TABLES, STAMP_COLUMNS, sek, write_report_csv
from gateway.accounting.reports.html import (
    CAPITAL_COLOURS,
    FILE_COLOURS,
    render_report_html,
    write_report_html,
)
from gateway.accounting.reports.json import summary_json
from gateway.accounting.reports.model import (
    TALLY_COUNTS,
    AttentionCase,
    CapitalByState,
    Discrepancy,
    FileTally,
    JournalLine,
    LatencySummary,
    Report,
    ReportStamp,
    RuleTally,
    SequenceGap,
    format_ore,
)
from gateway.accounting.reports.svg import Series, format_count
from gateway.accounting.reports.text import write_summary
from tests.chromium import screenshot

HOSTILE = "<script>alert(1)</script>"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
# 06:30 UTC on 28 November is 07:30 in Stockholm (CET, +01:00).
GENERATED = datetime(2026, 11, 28, 6, 30, 5, tzinfo=UTC)
STAMP = ReportStamp(GENERATED, "0.1.0", "1", SHA, "Europe/Stockholm")
MONDAY = date(2026, 11, 23)


def tally(
    day: date,
    source: str,
    client: str,
    *,
    accepted: int = 0,
    partially_accepted: int = 0,
    rejected: int = 0,
    duplicate: int = 0,
    quarantined: int = 0,
    in_progress: int = 0,
    journaled: tuple[int, int] = (0, 0),
    case_rejected: tuple[int, int] = (0, 0),
    case_duplicate: tuple[int, int] = (0, 0),
) -> FileTally:
    """A balanced row: files, cases and capital in are the sums of where they went.
    The case tuples are (cases, öre)."""
    return FileTally(
        day,
        source,
        client,
        files=accepted + partially_accepted + rejected + duplicate + quarantined + in_progress,
        accepted=accepted,
        partially_accepted=partially_accepted,
        rejected=rejected,
        duplicate=duplicate,
        quarantined=quarantined,
        in_progress=in_progress,
        cases=journaled[0] + case_rejected[0] + case_duplicate[0],
        cases_journaled=journaled[0],
        cases_rejected=case_rejected[0],
        cases_duplicate=case_duplicate[0],
        capital_in_ore=journaled[1] + case_rejected[1] + case_duplicate[1],
        capital_journaled_ore=journaled[1],
        capital_rejected_ore=case_rejected[1],
        capital_duplicate_ore=case_duplicate[1],
    )


def day(n: int) -> date:
    return MONDAY + timedelta(days=n)


def at(n: int, hour: int, minute: int = 0) -> datetime:
    """Day n of the week at hour:minute UTC."""
    return datetime(day(n).year, day(n).month, day(n).day, hour, minute, tzinfo=UTC)


def realistic_report() -> Report:
    """A working week: two sources, two clients, every outcome at least once."""
    tallies = [
        tally(day(0), "erp", "lst-exempel", accepted=4, journaled=(31, 41_250_050)),
        tally(
            day(0),
            "sftp-ekonomi",
            "tv-exempel",
            accepted=2,
            rejected=1,
            journaled=(12, 8_870_000),
            case_rejected=(3, 1_210_000),
        ),
        tally(
            day(1),
            "erp",
            "lst-exempel",
            accepted=5,
            partially_accepted=1,
            journaled=(44, 52_310_025),
            case_rejected=(2, 1_030_000),
        ),
        tally(
            day(1),
            "sftp-ekonomi",
            "tv-exempel",
            accepted=3,
            duplicate=1,
            journaled=(18, 14_400_000),
            case_duplicate=(6, 4_800_000),
        ),
        tally(
            day(2),
            "erp",
            "lst-exempel",
            accepted=3,
            rejected=2,
            quarantined=1,
            journaled=(22, 30_125_000),
            case_rejected=(9, 7_450_000),
        ),
        tally(day(2), "sftp-ekonomi", "tv-exempel", accepted=4, journaled=(27, 19_990_000)),
        tally(
            day(3),
            "erp",
            "lst-exempel",
            accepted=6,
            partially_accepted=2,
            journaled=(52, 61_400_075),
            case_rejected=(4, 2_200_000),
        ),
        tally(
            day(3),
            "sftp-ekonomi",
            "tv-exempel",
            accepted=2,
            rejected=1,
            journaled=(9, 6_300_000),
            case_rejected=(5, 3_000_000),
        ),
        tally(
            day(4),
            "erp",
            "lst-exempel",
            accepted=4,
            duplicate=1,
            in_progress=1,
            journaled=(35, 38_000_000),
            case_duplicate=(31, 41_250_050),
        ),
        tally(day(4), "sftp-ekonomi", "tv-exempel", accepted=3, journaled=(21, 17_650_001)),
    ]
    journals = [
        JournalLine(
            "lst-exempel-j1",
            "lst-exempel",
            1,
            "delivered",
            75,
            93_560_075,
            at(1, 15),
            at(1, 15),
            at(1, 15, 2),
            "lst-exempel-000001.xml",
        ),
        JournalLine(
            "lst-exempel-j2", "lst-exempel", 2, "approved", 74, 91_525_075, at(3, 15), at(3, 16), None, None
        ),
        JournalLine(
            "tv-exempel-j1",
            "tv-exempel",
            1,
            "delivered",
            57,
            43_260_000,
            at(2, 15),
            at(2, 15),
            at(2, 15, 1),
            "tv-exempel-000001.xml",
        ),
        JournalLine("tv-exempel-j2", "tv-exempel", 2, "sealed", 30, 23_950_001, at(4, 15), None, None, None),
        JournalLine("lst-exempel-j3", "lst-exempel", None, "open", 35, 38_000_000, None, None, None, None),
    ]
    capital_by_state = [
        CapitalByState("open", 35, 38_000_000),
        CapitalByState("sealed", 30, 23_950_001),
        CapitalByState("approved", 73, 90_525_075),
        CapitalByState("delivered", 132, 136_820_075),
        CapitalByState("withdrawn", 1, 1_000_000),
    ]
    rules = [
        RuleTally(day(0), "tv-exempel", "M02", "error", 1, 3),
        RuleTally(day(1), "lst-exempel", "A01", "error", 1, 2),
        RuleTally(day(2), "lst-exempel", "M02", "error", 2, 5),
        RuleTally(day(2), "lst-exempel", "F03", "error", 1, 4),
        RuleTally(day(2), "lst-exempel", "F08", "error", 1, 1),
        RuleTally(day(3), "lst-exempel", "B04", "error", 2, 4),
        RuleTally(day(3), "tv-exempel", "M02", "error", 1, 5),
        RuleTally(day(3), "tv-exempel", "M10", "warning", 3, 7),
        RuleTally(day(4), "lst-exempel", "M16", "warning", 1, 1),
    ]
    latencies = [
        LatencySummary("drop-to-receipt", 52, 2.4, 8.1, 31.0),
        LatencySummary("seal-to-delivery", 2, 70.0, 192.0, 192.0),
    ]
    attention = [
        AttentionCase(
            "LST-2026-0512",
            "lst-exempel",
            "lst-exempel-j2",
            "850315-XXXX",
            480_000,
            False,
            "Storgatan 1, 123 45 Exempelstad",
        ),
        AttentionCase("LST-2026-0513", "lst-exempel", "lst-exempel-j2", "780612-XXXX", 1_250_050, True, None),
    ]
    return Report(
        period_from=day(0),
        period_to=day(6),
        client=None,
        stamp=STAMP,
        tallies=tallies,
        journals=journals,
        capital_by_state=capital_by_state,
        gaps=[],
        discrepancies=[],
        rules=rules,
        latencies=latencies,
        attention=attention,
    )


def unbalanced_report() -> Report:
    """The realistic week with a row that does not add up, a missing receipt and a journal gap."""
    report = realistic_report()
    tallies = list(report.tallies)
    tallies[4] = replace(tallies[4], files=tallies[4].files + 1)  # one file nobody accounted for
    return replace(
        report,
        tallies=tallies,
        discrepancies=[
            Discrepancy(
                "file-counts",
                "2026-11-25 erp lst-exempel",
                "7 filer mottagna men 6 redovisade.",
                "7 files received but 6 accounted for.",
            ),
            Discrepancy(
                "receipt-missing",
                "lst-exempel-2026-11-25.xml",
                "Filen saknar kvittens.",
                "The file has no receipt.",
            ),
        ],
        gaps=[SequenceGap("tv-exempel", (3, 4, 5, 9))],
    )


def empty_report() -> Report:
    return Report(day(0), day(6), "lst-exempel", STAMP, [], [], [], [], [], [], [])


def parse(report: Report) -> lxml.html.HtmlElement:
    out = io.BytesIO()
    write_report_html(out, report)
    return lxml.html.document_fromstring(out.getvalue())


def text_of(element: lxml.html.HtmlElement) -> str:
    # Only ASCII white space: the thin spaces in numbers (U+202F) are part of what is checked.
    return re.sub(r"[ \t\r\n]+", " ", element.text_content()).strip()


# --- HTML ----------------------------------------------------------------------------------------


def test_the_page_is_utf8_html5_with_the_bilingual_title() -> None:
    page = render_report_html(realistic_report())
    assert page.startswith(b"<!DOCTYPE html>")
    tree = lxml.html.document_fromstring(page)
    assert tree.xpath("//meta[@charset='utf-8']")
    assert tree.xpath("//style")
    assert text_of(tree.xpath("//h1")[0]) == "Avstämning / Reconciliation"
    header = text_of(tree.xpath("//header")[0])
    assert "2026-11-23 – 2026-11-29" in header
    assert "alla / all" in header
    assert "å" in page.decode("utf-8")  # real UTF-8, not entities or mojibake


def test_the_green_box_when_everything_is_accounted_for() -> None:
    tree = parse(realistic_report())
    (box,) = tree.xpath("//*[@id='status']")
    assert box.get("class") == "status good"
    assert "Allt avstämt / Everything accounted for" in text_of(box)
    assert "Ej avstämt" not in text_of(tree)
    assert not tree.xpath("//tr[contains(@class, 'unbalanced')]")


def test_discrepancies_and_gaps_come_first_in_a_red_box() -> None:
    report = unbalanced_report()
    tree = parse(report)
    (main,) = tree.xpath("//main")
    # The box is the first thing after the page header: before key figures, charts and tables.
    assert [child.tag for child in main][:2] == ["header", "section"]
    box = main[1]
    assert box.get("class") == "status bad"
    text = text_of(box)
    assert "Ej avstämt / Not accounted for" in text
    assert "Allt avstämt" not in text_of(tree)
    for item in report.discrepancies:
        for part in (item.kind, item.subject, item.message_sv, item.message_en):
            assert part in text
    assert "tv-exempel" in text
    assert "3–5, 9" in text  # the missing journal numbers, as ranges
    # The unbalanced row, and the total it spoils, are marked (and say so in words, not only red).
    unbalanced = tree.xpath("//table[contains(@class, 'tallies')]//tr[contains(@class, 'unbalanced')]")
    assert [text_of(row) for row in unbalanced if "why" in row.get("class")] == [
        "✗ Går inte ihop / Does not balance: filer / files 7 ≠ 6",
        "✗ Går inte ihop / Does not balance: filer / files 48 ≠ 47",
    ]
    assert [text_of(cell) for cell in unbalanced[0]][:5] == ["2026-11-25", "erp", "lst-exempel", "7", "3"]


def test_only_gaps_also_make_the_red_box() -> None:
    report = replace(realistic_report(), gaps=[SequenceGap("lst-exempel", (2,))])
    (box,) = parse(report).xpath("//*[@id='status']")
    assert box.get("class") == "status bad"
    assert "Journal numbers missing: 2" in text_of(box)


def test_the_total_row_holds_every_number_of_the_total() -> None:
    report = realistic_report()
    total = report.total
    tree = parse(report)
    (row,) = tree.xpath("//table[contains(@class, 'tallies')]/tfoot/tr")
    cells = [text_of(cell) for cell in row.xpath("td")]
    expected = [
        format_ore(getattr(total, name)) if name.endswith("_ore") else format_count(getattr(total, name))
        for name in TALLY_COUNTS
    ]
    assert cells[3 : 3 + len(TALLY_COUNTS)] == expected
    assert total.files == 47 and total.capital_in_ore == 351_235_201  # the fixture is what we think
    # One body row per tally, in order.
    rows = tree.xpath("//table[contains(@class, 'tallies')]/tbody/tr[not(contains(@class, 'why'))]")
    assert len(rows) == len(report.tallies)
    assert [text_of(r.xpath("td")[1]) for r in rows] == [t.source for t in report.tallies]


def test_key_figures() -> None:
    report = realistic_report()
    cards = parse(report).xpath("//section[@class='figures']/div")
    figures = {text_of(card[0]): text_of(card[1]) for card in cards}
    assert figures == {
        "Filer in / Files in": "47",
        "Ärenden in / Cases in": "331",
        "Kapital in / Capital in": f"{format_ore(report.total.capital_in_ore)}kr",
        "Kapital journalfört / Capital journaled": f"{format_ore(report.total.capital_journaled_ore)}kr",
        "Kapital levererat / Capital delivered": f"{format_ore(93_560_075 + 43_260_000)}kr",
        "Journaler förseglade / Journals sealed": "4",
        "Journaler godkända / Journals approved": "3",
        "Journaler levererade / Journals delivered": "2",
    }


def test_the_stamp_is_shown_in_the_reports_time_zone() -> None:
    tree = parse(realistic_report())
    header, footer = text_of(tree.xpath("//header")[0]), text_of(tree.xpath("//footer")[0])
    assert "2026-11-28 07:30:05" in header and "Europe/Stockholm" in header
    assert "2026-11-28T07:30:05+01:00" in footer
    for value in ("0.1.0", SHA):
        assert value in footer
    assert "regelversion / rules 1" in footer
    # Journal times too: sealed 15:00 UTC is 16:00 in Stockholm.
    journals = text_of(tree.xpath("//table")[-3])
    assert "2026-11-24 16:00" in journals and "2026-11-24 16:02" in journals


def test_sections_in_order() -> None:
    headings = [text_of(h) for h in parse(realistic_report()).xpath("//h2")]
    assert headings == [
        "✓ Allt avstämt / Everything accounted for",
        "Filer per dag / Files per day",
        "Kapital per dag / Capital per day",
        "Vanligaste orsakerna till underkännande / Top rejection reasons",
        "Var det journalförda kapitalet är nu / Where the journaled capital is now",
        "Per uppdragsgivare / Per client",
        "Avstämning per dag, källa och uppdragsgivare / Reconciliation per day, source and client",
        "Journaler / Journals",
        "Ledtider / Latencies",
        "Ärenden som väntar på en person / Cases waiting for a person",
        "Filer / Files",
    ]


def test_charts_are_inline_svg_with_exact_tooltips() -> None:
    report = realistic_report()
    tree = parse(report)
    charts = tree.xpath("//svg")
    assert len(charts) == 4
    titles = [text_of(t) for t in tree.xpath("//svg//rect/title")]
    # Monday's accepted files, exact capital and the rule chart's per-client counts.
    assert "2026-11-23 (mån) · Godkända / Accepted (36): 6 fil(er) / file(s)" in titles
    assert f"2026-11-27 (fre) · Dubbletter / Duplicates: {format_ore(41_250_050)} kr" in titles
    assert "M02 · tv-exempel: 8 anmärkning(ar) / finding(s)" in titles
    assert f"Kapital / Capital · Levererad / Delivered: {format_ore(136_820_075)} kr" in titles
    # Warnings do not reject: M10 is in the rule table, not in the chart.
    assert not [t for t in titles if t.startswith("M10")]
    assert "M10" in text_of(tree)
    fills = {rect.get("fill") for rect in tree.xpath("//svg//rect[title]")}
    assert set(FILE_COLOURS.values()) <= fills
    assert set(CAPITAL_COLOURS.values()) <= fills


def test_rule_table_counts_per_day() -> None:
    tree = parse(realistic_report())
    (table,) = [t for t in tree.xpath("//table") if "Regel" in text_of(t.xpath("thead")[0])]
    rows = {text_of(r.xpath("td")[0]): [text_of(c) for c in r.xpath("td")] for r in table.xpath("tbody/tr")}
    # Days with findings: Mon, Tue, Wed, Thu, Fri; M02 had 3 on Monday, 5 on Wednesday, 5 on Thursday.
    assert rows["M02"] == ["M02", "Fel / Error", "3", "0", "5", "5", "0", "13"]
    assert rows["M10"][1] == "Varning / Warning"
    assert next(iter(rows)) == "M02"  # most frequent first


def test_latencies_and_attention() -> None:
    report = realistic_report()
    report = replace(
        report, latencies=[*report.latencies, LatencySummary("seal-to-delivery", 0, None, None, None)]
    )
    tree = parse(report)
    latency, attention = tree.xpath("//table")[-2:]
    rows = [[text_of(c) for c in r.xpath("td")] for r in latency.xpath("tbody/tr")]
    assert rows[0] == ["Fil till kvittens / File to receipt", "52", "2,4 s", "8,1 s", "31 s"]
    assert rows[1] == [
        "Försegling till leverans / Seal to delivery",
        "2",
        "1 min 10 s",
        "3 min 12 s",
        "3 min 12 s",
    ]
    assert rows[2][2:] == ["–", "–", "–"]
    cases = [[text_of(c) for c in r.xpath("td")] for r in attention.xpath("tbody/tr")]
    assert cases[0] == [
        "LST-2026-0512",
        "lst-exempel",
        "lst-exempel-j2",
        "850315-XXXX",
        format_ore(480_000),
        "Storgatan 1, 123 45 Exempelstad",
    ]
    assert cases[1][-1] == "Skyddad adress / Protected address"
    assert cases[1][3] == "780612-XXXX"


def test_hostile_text_is_escaped() -> None:
    report = unbalanced_report()
    tallies = [replace(t, source=HOSTILE) for t in report.tallies]
    nasty = '"><img src=x onerror=alert(1)>'
    report = replace(
        report,
        tallies=tallies,
        discrepancies=[Discrepancy("x", HOSTILE, nasty, "</title></svg><script>alert(2)</script>")],
        rules=[*report.rules, RuleTally(day(0), nasty, "</text><script>", "error", 1, 99)],
        journals=[replace(report.journals[0], file_name="bad\x00name\udcff.xml")],  # NUL, undecodable byte
    )
    page = render_report_html(report)
    tree = lxml.html.document_fromstring(page)
    assert not tree.xpath("//script | //img | //*[@onerror]")
    assert b"<script" not in page and b"<img" not in page
    assert HOSTILE in text_of(tree)
    assert nasty in text_of(tree)
    assert "bad\ufffdname\ufffd.xml" in text_of(tree)
    # The chart labels are escaped too: the rule code is text inside the SVG, not markup.
    assert any(t.text == "</text><script>" for t in tree.xpath("//svg//text"))


def test_nothing_refers_outside_the_page() -> None:
    for report in (realistic_report(), unbalanced_report(), empty_report()):
        page = render_report_html(report)
        assert b"http://" not in page and b"https://" not in page
        assert b"url(" not in page and b"@import" not in page and b"<script" not in page
        tree = lxml.html.document_fromstring(page)
        assert not tree.xpath("//@src | //@href | //link | //iframe | //object | //embed")


def test_the_empty_report() -> None:
    tree = parse(empty_report())
    assert tree.xpath("//*[@id='status']")[0].get("class") == "status quiet"  # "No files arrived", not green
    assert "Uppdragsgivare / Client lst-exempel" in text_of(tree.xpath("//header")[0])
    assert len(tree.xpath("//svg")) == 4
    assert not tree.xpath("//svg//rect[title]")  # no bars, and so no legends either
    assert [text_of(t) for t in tree.xpath("//svg/text")] == [svg_chart.NO_DATA] * 4
    assert "Inga filer i perioden / No files in the period" in text_of(tree)
    total_row = tree.xpath("//table[contains(@class, 'tallies')]/tfoot/tr")[0]
    assert "0,00" in text_of(total_row)


def test_a_one_day_report_in_another_time_zone() -> None:
    report = realistic_report()
    report = replace(
        report,
        period_from=day(0),
        period_to=day(0),
        tallies=[t for t in report.tallies if t.day == day(0)],
        stamp=replace(STAMP, timezone="America/New_York"),
    )
    tree = parse(report)
    assert "2026-11-28 01:30:05 EST (America/New_York)" in text_of(tree.xpath("//header")[0])
    assert len(tree.xpath("//svg")[0].xpath(".//g[@class='labels']/text[not(@font-size)]")) == 1


def test_a_long_period_shows_only_days_with_files() -> None:
    report = replace(realistic_report(), period_from=date(2026, 1, 1), period_to=date(2026, 12, 31))
    chart = parse(report).xpath("//svg")[0]
    labels = [t.text for t in chart.xpath(".//g[@class='labels']/text[not(@font-size)]")]
    assert labels == ["23/11", "24/11", "25/11", "26/11", "27/11"]


# --- CSV -----------------------------------------------------------------------------------------


def read_csv(report: Report, table: str) -> list[list[str]]:
    out = io.StringIO(newline="")
    write_report_csv(out, report, table)
    return list(csv.reader(io.StringIO(out.getvalue(), newline="")))


def test_csv_tables_have_a_header_rows_and_the_stamp() -> None:
    report = realistic_report()
    expected_rows = {
        "avstamning": len(report.tallies),
        "journaler": len(report.journals),
        "regler": len(report.rules),
        "latens": len(report.latencies),
        "filer": len(report.files),
        "nyckeltal": 15,
        "uppdragsgivare": 2,
        "orsaker": 6,  # five error codes, M02 from two clients
        "kapital": len(report.capital_by_state),
        "avvikelser": 0,
    }
    assert set(CSV_TABLES) == set(expected_rows)
    for table in CSV_TABLES:
        header, *rows = read_csv(report, table)
        assert tuple(header[-3:]) == STAMP_COLUMNS == ("gateway_version", "regelversion", "konfig_sha256")
        assert len(rows) == expected_rows[table]
        for row in rows:
            assert len(row) == len(header)
            assert row[-3:] == ["0.1.0", "1", SHA]


def test_csv_reconciliation_rows() -> None:
    report = unbalanced_report()
    header, *rows = read_csv(report, "avstamning")
    assert header == [
        "day",
        "source",
        "client",
        "files",
        "accepted",
        "partially_accepted",
        "rejected",
        "duplicate",
        "quarantined",
        "in_progress",
        "cases",
        "cases_journaled",
        "cases_rejected",
        "cases_duplicate",
        "capital_in_sek",
        "capital_journaled_sek",
        "capital_rejected_sek",
        "capital_duplicate_sek",
        "balanced",
        "gateway_version",
        "regelversion",
        "konfig_sha256",
    ]
    first = dict(zip(header, rows[0], strict=True))
    assert first["day"] == "2026-11-23"
    assert first["source"] == "erp" and first["client"] == "lst-exempel"
    assert first["files"] == "4" and first["cases_journaled"] == "31"
    assert first["capital_in_sek"] == "412500.50"
    assert [row[header.index("balanced")] for row in rows].count("nej") == 1
    assert rows[4][header.index("balanced")] == "nej"
    # The sums of the exact decimals are the total in öre.
    total = sum(int(row[header.index("capital_in_sek")].replace(".", "")) for row in rows)
    assert total == report.total.capital_in_ore


def test_csv_amounts_are_exact_kronor() -> None:
    assert [sek(n) for n in (0, 1, 10, 99, 100, 123_450, -1, -123_450, 10**17 + 1)] == [
        "0.00",
        "0.01",
        "0.10",
        "0.99",
        "1.00",
        "1234.50",
        "-0.01",
        "-1234.50",
        "1000000000000000.01",
    ]
    report = replace(
        realistic_report(), tallies=[tally(day(0), "erp", "lst-exempel", accepted=1, journaled=(1, 1))]
    )
    header, row = read_csv(report, "avstamning")
    assert row[header.index("capital_journaled_sek")] == "0.01"
    assert row[header.index("capital_rejected_sek")] == "0.00"


def test_csv_journals_with_times_in_the_report_zone() -> None:
    header, *rows = read_csv(realistic_report(), "journaler")
    assert header[:-3] == [
        "journal_id",
        "client",
        "sequence",
        "state",
        "case_count",
        "capital_sek",
        "sealed_at",
        "approved_at",
        "delivered_at",
        "file_name",
    ]
    assert rows[0][:-3] == [
        "lst-exempel-j1",
        "lst-exempel",
        "1",
        "delivered",
        "75",
        "935600.75",
        "2026-11-24T16:00:00+01:00",
        "2026-11-24T16:00:00+01:00",
        "2026-11-24T16:02:00+01:00",
        "lst-exempel-000001.xml",
    ]
    assert rows[4][2] == "" and rows[4][6:10] == ["", "", "", ""]  # the open journal


def test_csv_rules_and_latencies() -> None:
    header, *rows = read_csv(realistic_report(), "regler")
    assert header[:-3] == ["day", "client", "code", "severity", "files", "findings"]
    assert rows[0][:-3] == ["2026-11-23", "tv-exempel", "M02", "error", "1", "3"]
    report = replace(
        realistic_report(),
        latencies=[
            LatencySummary("seal-to-delivery", 0, None, None, None),
            LatencySummary("x", 1, 0.1, 0.25, 1 / 3),
        ],
    )
    header, *rows = read_csv(report, "latens")
    assert header[:-3] == ["name", "count", "median_seconds", "p95_seconds", "max_seconds"]
    assert rows[0][:-3] == ["seal-to-delivery", "0", "", "", ""]
    assert rows[1][:-3] == ["x", "1", "0.100", "0.250", "0.333"]


def test_csv_keeps_text_that_looks_like_a_formula_inert() -> None:
    report = replace(
        realistic_report(), tallies=[tally(day(0), '=HYPERLINK("x")', '@client,"quoted"\nline', accepted=1)]
    )
    _, row = read_csv(report, "avstamning")
    assert row[1] == '\'=HYPERLINK("x")'
    assert row[2] == '\'@client,"quoted"\nline'  # commas, quotes and newlines survive the round trip


def test_csv_unknown_table_and_empty_report() -> None:
    with pytest.raises(ValueError, match="unknown report table"):
        write_report_csv(io.StringIO(), realistic_report(), "nope")
    for table in CSV_TABLES:
        header, *rows = read_csv(empty_report(), table)
        assert header[-3:] == list(STAMP_COLUMNS)
        if table == "nyckeltal":
            # Every key figure is there, as 0: a share of nothing is empty, not 0 and not 100.
            values = {row[0]: row[1] for row in rows}
            assert values["files"] == "0" and values["capital_in_sek"] == "0.00"
            assert values["capital_journaled_percent"] == ""
        else:
            assert rows == [], table


def csv_rows(report: Report, table: str) -> list[dict[str, str]]:
    header, *rows = read_csv(report, table)
    return [dict(zip(header[:-3], row[:-3], strict=True)) for row in rows]


def test_csv_key_figures_are_the_pages() -> None:
    figures = {row["figure"]: row["value"] for row in csv_rows(realistic_report(), "nyckeltal")}
    assert figures == {
        "files": "47",
        "files_accepted": "36",
        "cases": "331",
        "cases_journaled": "271",
        "capital_in_sek": "3512352.01",
        "capital_journaled_sek": "2902951.51",
        "capital_journaled_percent": "82.6",  # 2 902 951,51 of 3 512 352,01
        # The journals delivered in the period: lst-exempel-j1 and tv-exempel-j1.
        "delivered_capital_sek": "1368200.75",
        # Sealed, approved and delivered in the period, whatever their state now.
        "journals_sealed": "4",
        "journals_approved": "3",
        "journals_delivered": "2",
        "discrepancies": "0",
        "sequence_gaps": "0",
        "waiting_for_a_person": "0",
        "cases_waiting_for_review": "0",
    }
    figures = {row["figure"]: row["value"] for row in csv_rows(unbalanced_report(), "nyckeltal")}
    assert (figures["discrepancies"], figures["sequence_gaps"]) == ("2", "1")


def test_csv_figures_per_client_in_and_out() -> None:
    rows = {row["client"]: row for row in csv_rows(realistic_report(), "uppdragsgivare")}
    assert list(rows) == ["lst-exempel", "tv-exempel"]
    ours = rows["lst-exempel"]
    # Summed over five days by hand: 4 + 6 + 6 + 8 + 6 files; in progress and quarantined count.
    assert (ours["files"], ours["accepted"], ours["quarantined"], ours["in_progress"]) == (
        "30",
        "22",
        "1",
        "1",
    )
    assert (ours["cases"], ours["cases_journaled"], ours["cases_rejected"]) == ("230", "184", "15")
    assert ours["capital_journaled_sek"] == "2230851.50"
    assert (ours["journals_delivered"], ours["delivered_capital_sek"]) == ("1", "935600.75")
    assert (rows["tv-exempel"]["files"], rows["tv-exempel"]["delivered_capital_sek"]) == ("17", "432600.00")
    # A client whose journal went out in the period but who sent nothing in it is still listed.
    quiet = replace(
        realistic_report(), tallies=[t for t in realistic_report().tallies if t.client == "tv-exempel"]
    )
    rows = {row["client"]: row for row in csv_rows(quiet, "uppdragsgivare")}
    assert (rows["lst-exempel"]["files"], rows["lst-exempel"]["journals_delivered"]) == ("0", "1")


def test_csv_top_rejection_reasons_count_errors_only_per_client() -> None:
    rows = [tuple(row.values()) for row in csv_rows(realistic_report(), "orsaker")]
    assert rows == [
        ("1", "M02", "13", "tv-exempel", "8"),  # 3 on Monday and 5 on Thursday
        ("1", "M02", "13", "lst-exempel", "5"),
        ("2", "B04", "4", "lst-exempel", "4"),  # a tie: by code
        ("3", "F03", "4", "lst-exempel", "4"),
        ("4", "A01", "2", "lst-exempel", "2"),
        ("5", "F08", "1", "lst-exempel", "1"),
    ]  # M10 and M16 are warnings: they reject nothing
    many = replace(
        realistic_report(),
        rules=[RuleTally(day(0), "lst-exempel", f"X{n:02d}", "error", 1, n) for n in range(1, 13)],
    )
    rows = [tuple(row.values()) for row in csv_rows(many, "orsaker")]
    assert [row[1] for row in rows] == [f"X{n:02d}" for n in range(12, 2, -1)]  # the ten most frequent


def test_csv_capital_now_in_state_order_with_its_shares() -> None:
    report = realistic_report()
    shuffled = replace(report, capital_by_state=list(reversed(report.capital_by_state)))
    for each in (report, shuffled):
        rows = [tuple(row.values()) for row in csv_rows(each, "kapital")]
        # Of 2 902 951,51 kr in all.
        assert rows == [
            ("open", "35", "380000.00", "13.1"),
            ("sealed", "30", "239500.01", "8.3"),
            ("approved", "73", "905250.75", "31.2"),
            ("delivered", "132", "1368200.75", "47.1"),
            ("withdrawn", "1", "10000.00", "0.3"),
        ]


def test_csv_discrepancies_gaps_and_what_waits_for_a_person() -> None:
    report = replace(
        unbalanced_report(),
        waiting=[
            Discrepancy("file-quarantined", "kund_198503159819.xml", "Fil 7 i karantän", "File 7 quarantined")
        ],
    )
    rows = [tuple(row.values()) for row in csv_rows(report, "avvikelser")]
    assert rows == [
        (
            "not-accounted-for",
            "file-counts",
            "2026-11-25 erp lst-exempel",
            "7 filer mottagna men 6 redovisade.",
            "7 files received but 6 accounted for.",
        ),
        (
            "not-accounted-for",
            "receipt-missing",
            "lst-exempel-2026-11-25.xml",
            "Filen saknar kvittens.",
            "The file has no receipt.",
        ),
        (
            "not-accounted-for",
            "sequence-gap",
            "tv-exempel",
            "Journalnummer saknas: 3–5, 9",
            "Journal numbers missing: 3–5, 9",
        ),
        # Masked, as on the page: ERP systems name files after people.
        (
            "waiting-for-a-person",
            "file-quarantined",
            "kund_850315-XXXX.xml",
            "Fil 7 i karantän",
            "File 7 quarantined",
        ),
    ]


# --- JSON and text summaries ---------------------------------------------------------------------


def test_json_summary_has_the_pages_figures() -> None:
    summary = json.loads(json.dumps(summary_json(realistic_report(), [])))
    assert summary["key_figures"]["journals_sealed"] == 4
    assert summary["key_figures"]["capital_journaled_percent"] == 82.6
    assert summary["key_figures"]["delivered_capital_ore"] == summary["delivered_capital_ore"] == 136_820_075
    per_client = {client["client"]: client for client in summary["per_client"]}
    assert per_client["lst-exempel"]["files"] == 30 and per_client["lst-exempel"]["journals_delivered"] == 1
    assert per_client["tv-exempel"]["delivered_capital_ore"] == 43_260_000
    assert summary["top_rejection_reasons"][0] == {
        "code": "M02",
        "findings": 13,
        "by_client": {"tv-exempel": 8, "lst-exempel": 5},
    }
    assert [reason["code"] for reason in summary["top_rejection_reasons"]] == [
        "M02",
        "B04",
        "F03",
        "A01",
        "F08",
    ]
    # The rule table's totals, warnings too: a code that ever stopped anything is an error.
    rules = {rule["code"]: rule for rule in summary["findings_per_rule"]}
    assert rules["M10"] == {"code": "M10", "severity": "warning", "findings": 7, "files": 3}
    assert rules["M02"]["severity"] == "error" and rules["M02"]["files"] == 4
    assert summary["capital_by_state"]["open"] == {
        "cases": 35,
        "capital_ore": 38_000_000,
        "share_percent": 13.1,
    }
    assert summary["journals_total"] == {"count": 5, "cases": 271, "capital_ore": 290_295_151}
    empty = summary_json(empty_report(), [])
    assert empty["key_figures"]["capital_journaled_percent"] is None and empty["per_client"] == []


def test_a_code_that_is_an_error_once_is_an_error_on_the_page_and_in_the_json() -> None:
    rules = [
        RuleTally(day(0), "lst-exempel", "M16", "warning", 1, 1),
        RuleTally(day(1), "tv-exempel", "M16", "error", 1, 1),
        RuleTally(day(2), "lst-exempel", "M16", "warning", 1, 1),
    ]
    report = replace(realistic_report(), rules=rules)
    (row,) = summary_json(report, [])["findings_per_rule"]
    assert (row["severity"], row["findings"]) == ("error", 3)
    (table,) = [t for t in parse(report).xpath("//table") if "Regel" in text_of(t.xpath("thead")[0])]
    assert [text_of(c) for c in table.xpath("tbody/tr/td")][:2] == ["M16", "Fel / Error"]


def test_text_summary_puts_what_is_not_accounted_for_first() -> None:
    out = io.StringIO()
    write_summary(unbalanced_report(), [Path("r.html")], out)
    lines = out.getvalue().splitlines()
    assert lines[1] == "NOT ACCOUNTED FOR (3):"
    assert lines[2] == "  [sequence-gap] tv-exempel: journal number(s) 3, 4, 5, 9 never used"
    assert "Delivered in the period: 1\u202f368\u202f200,75 kr in 2 journal(s)" in lines
    assert lines[-1] == "written: r.html"


# --- SVG charts ----------------------------------------------------------------------------------


def test_chart_with_no_data_says_so() -> None:
    for chart in (svg_chart.stacked_columns, svg_chart.horizontal_bars):
        for categories, series in (([], []), (["a", "b"], [Series("x", svg_chart.BLUE, (0, 0))])):
            svg = chart(categories, series, title="T")
            assert [t.text for t in svg.iter("text")] == [svg_chart.NO_DATA]
            assert not svg.xpath(".//rect[title]")
            assert svg.findtext("title") == "T"


def test_chart_bars_legend_and_tooltips() -> None:
    series = [
        Series("Godkända", svg_chart.BLUISH_GREEN, (3, 0, 5)),
        Series("Underkända", svg_chart.VERMILLION, (1, 2, 0)),
    ]
    svg = svg_chart.stacked_columns(
        ["1/11", "2/11", "3/11"], series, title="Filer", format_value=lambda n: f"{n} st"
    )
    bars = svg.xpath(".//g[@class='bars']/rect")
    assert len(bars) == 4  # zero parts are not drawn
    assert [b.findtext("title") for b in bars] == [
        "1/11 · Godkända: 3 st",
        "1/11 · Underkända: 1 st",
        "2/11 · Underkända: 2 st",
        "3/11 · Godkända: 5 st",
    ]
    assert [t.text for t in svg.xpath(".//g[@class='legend']/text")] == ["Godkända", "Underkända"]
    assert [t.text for t in svg.xpath(".//g[@class='axis']/text")] == [
        "0 st",
        "1 st",
        "2 st",
        "3 st",
        "4 st",
        "5 st",
    ]
    # The stack is drawn to scale: 4 files reach four fifths of the 5 at the top of the axis.
    assert float(bars[0].get("height")) + float(bars[1].get("height")) == pytest.approx(220 * 4 / 5, abs=0.02)
    # Same data, same bytes.
    assert svg_chart.to_string(svg) == svg_chart.to_string(
        svg_chart.stacked_columns(
            ["1/11", "2/11", "3/11"], series, title="Filer", format_value=lambda n: f"{n} st"
        )
    )


def test_chart_one_category_and_horizontal() -> None:
    series = [
        Series(s, c, (n,))
        for s, c, n in (("open", svg_chart.YELLOW, 5), ("delivered", svg_chart.BLUISH_GREEN, 15))
    ]
    svg = svg_chart.horizontal_bars(["Kapital"], series, title="Läge")
    bars = svg.xpath(".//g[@class='bars']/rect")
    assert len(bars) == 2
    assert float(bars[1].get("width")) == pytest.approx(3 * float(bars[0].get("width")), abs=0.02)
    assert float(bars[1].get("x")) == pytest.approx(
        float(bars[0].get("x")) + float(bars[0].get("width")), abs=0.02
    )
    column = svg_chart.stacked_columns(["only"], series, title="En")
    assert len(column.xpath(".//g[@class='bars']/rect")) == 2


def test_chart_labels_are_escaped() -> None:
    label = '<b>&"x"</b>'
    series = [Series(label, svg_chart.BLUE, (1,))]
    for chart in (svg_chart.stacked_columns, svg_chart.horizontal_bars):
        markup = svg_chart.to_string(chart([HOSTILE], series, title=label))
        assert "<script" not in markup and "<b>" not in markup
        assert "&lt;script&gt;" in markup and "&lt;b&gt;&amp;" in markup
        tree = lxml.html.fragment_fromstring(markup)
        assert not tree.xpath("//script | //b")
    long = svg_chart.horizontal_bars(["x" * 60], series, title="t")
    (text,) = long.xpath(".//g[@class='labels']/text[title]")
    assert text.text == "x" * 27 + "…" and text.findtext("title") == "x" * 60


def test_chart_refuses_data_it_cannot_draw() -> None:
    with pytest.raises(ValueError, match="2 values for 3 categories"):
        svg_chart.stacked_columns(["a", "b", "c"], [Series("s", svg_chart.BLUE, (1, 2))], title="t")
    with pytest.raises(ValueError, match="negative"):
        svg_chart.horizontal_bars(["a"], [Series("s", svg_chart.BLUE, (-1,))], title="t")


def test_nice_ticks() -> None:
    assert svg_chart.nice_ticks(0) == (0,)
    assert svg_chart.nice_ticks(1) == (0, 1)
    assert svg_chart.nice_ticks(7) == (0, 2, 4, 6, 8)
    assert svg_chart.nice_ticks(10) == (0, 2, 4, 6, 8, 10)
    assert svg_chart.nice_ticks(4_815_050) == (0, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000)
    assert svg_chart.nice_ticks(11) == (0, 5, 10, 15)


def test_standalone_svg_document() -> None:
    svg = svg_chart.stacked_columns(["a"], [Series("s", svg_chart.BLUE, (1,))], title="t")
    document = etree.fromstring(svg_chart.to_document(svg))
    assert document.tag == "{http://www.w3.org/2000/svg}svg"
    assert document.find("{http://www.w3.org/2000/svg}title") is not None


# --- what Chromium draws -------------------------------------------------------------------------


def colour_pixels(png: Path, hex_colour: str, tolerance: int = 6) -> int:
    """Pixels within ``tolerance`` per channel of the colour (anti-aliased edges do not count)."""
    target = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    total = 0
    for n, rgb in colours:
        assert isinstance(rgb, tuple)  # an RGB image's colours are (r, g, b) triples
        if all(abs(c - t) <= tolerance for c, t in zip(rgb, target, strict=True)):
            total += n
    return total


@pytest.mark.chromium
@pytest.mark.integration
def test_chromium_draws_the_charts(tmp_path: Path) -> None:
    shots = {}
    for name, report in (
        ("full", realistic_report()),
        ("bad", unbalanced_report()),
        ("empty", empty_report()),
    ):
        html = tmp_path / f"{name}.html"
        html.write_bytes(render_report_html(report))
        shots[name] = tmp_path / f"{name}.png"
        screenshot(html, shots[name])
        with Image.open(shots[name]) as image:
            assert image.size == (1280, 2400)
    accepted, rejected = FILE_COLOURS["accepted"], FILE_COLOURS["rejected"]
    assert colour_pixels(shots["full"], accepted) > 3000
    assert colour_pixels(shots["full"], rejected) > 500
    assert colour_pixels(shots["full"], FILE_COLOURS["quarantined"]) > 100
    # The red box's border colour is on screen only when something is not accounted for.
    assert colour_pixels(shots["bad"], "#B42318") > 500
    assert colour_pixels(shots["full"], "#B42318") < 20
    # No data, no bars.
    assert colour_pixels(shots["empty"], accepted) < 20
    assert colour_pixels(shots["empty"], rejected) < 20


def test_a_period_without_files_says_so_and_one_with_a_quarantined_file_is_not_green() -> None:
    import dataclasses

    from gateway.accounting.reports.model import Discrepancy

    report = realistic_report()
    empty = dataclasses.replace(report, tallies=[], journals=[], capital_by_state=[], rules=[])
    assert next(text_of(h) for h in parse(empty).xpath("//h2")) == "Inga filer kom / No files arrived"
    waiting = dataclasses.replace(
        report,
        waiting=[
            Discrepancy(
                "file-quarantined", "poison.xml", "Fil 7 ligger i karantän", "File 7 is in quarantine"
            )
        ],
    )
    page = parse(waiting)
    assert next(text_of(h) for h in page.xpath("//h2")) == "Väntar på en handläggare / Waiting for a person"
    assert page.xpath("//section[@id='status']/@class") == ["status warn"]
    assert not waiting.settled and waiting.balanced
