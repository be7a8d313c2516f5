"""The page, the CSV files and the JSON summary of one real report carry the same figures.

One day of mixed traffic (tests/test_reports.py: two clients, rejections, a duplicate, a
quarantined file, two delivered journals) plus an original lost from the archive, reported by the
`report` command as an operator runs it. Each figure is read back out of each rendering (the HTML
parsed with lxml, the CSV files with the csv module, the JSON from what the command printed), never
from the model, so a renderer that computes a figure its own way, or leaves one out, fails here.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lxml_html

from gateway import cli
from gateway.accounting.reports.model import TALLY_COUNTS
from tests import test_reports
from tests.test_reports import Traffic

# The day of mixed traffic, as a fixture of this module too.
traffic = test_reports.traffic

#: What the page's key-figure cards show, by the name the CSV and the JSON give them.
KEY_CARDS = {
    "Filer in / Files in": "files",
    "Ärenden in / Cases in": "cases",
    "Kapital in / Capital in": "capital_in_ore",
    "Kapital journalfört / Capital journaled": "capital_journaled_ore",
    "Kapital levererat / Capital delivered": "delivered_capital_ore",
    "Journaler förseglade / Journals sealed": "journals_sealed",
    "Journaler godkända / Journals approved": "journals_approved",
    "Journaler levererade / Journals delivered": "journals_delivered",
}
KEY_FIGURES = (*KEY_CARDS.values(), "files_accepted", "cases_journaled", "capital_journaled_percent")
#: The per-client table's columns on the page.
CLIENT_COLUMNS = (
    "files",
    "cases",
    "cases_journaled",
    "cases_rejected",
    "capital_in_ore",
    "capital_journaled_ore",
    "journals_delivered",
    "delivered_capital_ore",
)

Figures = dict[str, Any]


# --- reading numbers as each rendering writes them -----------------------------------------------


def _page_count(text: str) -> int:
    """``1 234`` (thin-space thousands) as the page shows a count."""
    return int(text.strip().replace("\u202f", ""))


def _page_ore(text: str) -> int:
    """``12 345,60`` kronor as the page shows them, in öre."""
    return int(Decimal(text.strip().removesuffix("kr").replace("\u202f", "").replace(",", ".")) * 100)


def _page_percent(text: str) -> str:
    """``59,9 %`` as ``59.9``."""
    return text.strip().removesuffix("%").strip().replace(",", ".")


def _csv_ore(text: str) -> int:
    return int(Decimal(text) * 100)


def _text(element: Any) -> str:
    return re.sub(r"[ \t\r\n]+", " ", element.text_content()).strip()


# --- the page ------------------------------------------------------------------------------------


def _section(page: Any, heading: str) -> Any:
    return next(
        s for s in page.iter("section") if s.find("h2") is not None and heading in _text(s.find("h2"))
    )


def _body_rows(table: Any) -> list[list[str]]:
    return [[_text(cell) for cell in row.xpath("td")] for row in table.xpath("tbody/tr")]


def figures_on_the_page(path: Path) -> Figures:
    page = lxml_html.fromstring(path.read_bytes())

    key: dict[str, Any] = {}
    for card in page.xpath("//section[@class='figures']/div"):
        name = KEY_CARDS[_text(card[0])]
        value = card.xpath("div[@class='value']")[0].text
        key[name] = _page_ore(value) if name.endswith("_ore") else _page_count(value)
        note = card.xpath("div[@class='note']")
        if name == "files":
            key["files_accepted"] = _page_count(_text(note[0]).split(" godkända")[0])
        elif name == "cases":
            key["cases_journaled"] = _page_count(_text(note[0]).split(" journalförda")[0])
        elif name == "capital_journaled_ore":
            key["capital_journaled_percent"] = (
                _page_percent(_text(note[0]).split(" av in")[0]) if note else ""
            )

    box = page.xpath("//section[@id='status']")[0]
    counted = re.search(r"(\d+) avvikelse\(r\) och (\d+) lucka", _text(box))
    discrepancies, gaps = (int(counted[1]), int(counted[2])) if counted else (0, 0)
    # The box lists every discrepancy, every gap and everything that waits for a person.
    status = (discrepancies, gaps, len(box.xpath(".//li")) - discrepancies - gaps)

    (tally_total,) = page.xpath("//table[contains(@class, 'tallies')]/tfoot/tr")
    cells = [_text(cell) for cell in tally_total.xpath("td")][3:]
    totals = {
        name: _page_ore(cell) if name.endswith("_ore") else _page_count(cell)
        for name, cell in zip(TALLY_COUNTS, cells, strict=True)
    }

    per_client = {
        row[0]: tuple(
            _page_ore(cell) if name.endswith("_ore") else _page_count(cell)
            for name, cell in zip(CLIENT_COLUMNS, row[1:], strict=True)
        )
        for row in _body_rows(_section(page, "Per uppdragsgivare").xpath(".//table")[0])
    }

    reasons_card = _section(page, "Vanligaste orsakerna")
    chart = reasons_card.xpath(".//svg")[0]
    by_code: dict[str, dict[str, int]] = defaultdict(dict)
    for title in chart.xpath(".//g[@class='bars']/rect/title"):
        code, client, findings = re.fullmatch(
            r"(.+) · (.+): (\S+) anmärkning\(ar\) / finding\(s\)", title.text
        ).groups()
        by_code[code][client] = _page_count(findings)
    labels = chart.xpath(".//g[@class='labels']/text")
    # Each bar's label (anchored at its end), then the total written beside the bar.
    codes = [label.text for label in labels if label.get("text-anchor") == "end"]
    code_totals = [_page_count(label.text) for label in labels if label.get("font-size") == "10"]
    top_reasons = [(code, total, by_code[code]) for code, total in zip(codes, code_totals, strict=True)]

    rule_table = next(t for t in reasons_card.xpath(".//table") if "Regel" in _text(t.xpath("thead")[0]))
    rules = {
        row[0]: ("error" if row[1] == "Fel / Error" else "warning", _page_count(row[-1]))
        for row in _body_rows(rule_table)
    }

    capital_table = _section(page, "Var det journalförda kapitalet").xpath(".//table")[0]
    capital_now = {
        row[0].split(" / ")[1].lower(): (_page_count(row[1]), _page_ore(row[2]), _page_percent(row[3]))
        for row in _body_rows(capital_table)
    }

    journals_foot = [_text(cell) for cell in _section(page, "Journaler / Journals").xpath(".//tfoot/tr/td")]
    journals_total = (_page_count(journals_foot[4]), _page_ore(journals_foot[5]))

    return {
        "key": key,
        "status": status,
        "totals": totals,
        "per_client": per_client,
        "top_reasons": top_reasons,
        "rules": rules,
        "capital_now": capital_now,
        "journals_total": journals_total,
    }


# --- the CSV files -------------------------------------------------------------------------------


def _table(folder: Path, name: str) -> list[dict[str, str]]:
    (path,) = folder.glob(f"*.{name}.csv")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _csv_value(row: dict[str, str], name: str) -> int:
    column = name.removesuffix("_ore") + "_sek" if name.endswith("_ore") else name
    return _csv_ore(row[column]) if name.endswith("_ore") else int(row[column])


def figures_in_the_csv_files(folder: Path) -> Figures:
    named = {row["figure"]: row["value"] for row in _table(folder, "nyckeltal")}
    key = {
        name: named[name] if name.endswith("_percent") else _csv_value(named, name) for name in KEY_FIGURES
    }
    problems = _table(folder, "avvikelser")
    unaccounted = [row for row in problems if row["section"] == "not-accounted-for"]
    gaps = sum(1 for row in unaccounted if row["kind"] == "sequence-gap")
    status = (
        len(unaccounted) - gaps,
        gaps,
        sum(1 for row in problems if row["section"] == "waiting-for-a-person"),
    )
    # The key-figure table counts them too, and must agree with the list.
    assert (
        int(named["discrepancies"]),
        int(named["sequence_gaps"]),
        int(named["waiting_for_a_person"]),
    ) == status

    totals = {
        name: sum(_csv_value(row, name) for row in _table(folder, "avstamning")) for name in TALLY_COUNTS
    }
    per_client = {
        row["client"]: tuple(_csv_value(row, name) for name in CLIENT_COLUMNS)
        for row in _table(folder, "uppdragsgivare")
    }

    top_reasons: list[tuple[str, int, dict[str, int]]] = []
    for row in _table(folder, "orsaker"):
        if not top_reasons or top_reasons[-1][0] != row["code"]:
            assert int(row["rank"]) == len(top_reasons) + 1
            top_reasons.append((row["code"], int(row["findings"]), {}))
        top_reasons[-1][2][row["client"]] = int(row["client_findings"])

    # The rule table on the page is the regler rows summed over days and clients.
    rules: dict[str, tuple[str, int]] = {}
    for row in _table(folder, "regler"):
        severity, findings = rules.get(row["code"], ("warning", 0))
        rules[row["code"]] = (
            "error" if "error" in (severity, row["severity"]) else "warning",
            findings + int(row["findings"]),
        )

    capital_now = {
        row["state"]: (int(row["cases"]), _csv_ore(row["capital_sek"]), row["share_percent"])
        for row in _table(folder, "kapital")
    }
    journals = _table(folder, "journaler")
    journals_total = (
        sum(int(row["case_count"]) for row in journals),
        sum(_csv_ore(row["capital_sek"]) for row in journals),
    )
    return {
        "key": key,
        "status": status,
        "totals": totals,
        "per_client": per_client,
        "top_reasons": top_reasons,
        "rules": rules,
        "capital_now": capital_now,
        "journals_total": journals_total,
    }


# --- the JSON summary ----------------------------------------------------------------------------


def _json_percent(value: float | None) -> str:
    return "" if value is None else str(value)


def figures_in_the_json(summary: dict[str, Any]) -> Figures:
    key_figures = summary["key_figures"]
    key = {name: key_figures[name] for name in KEY_FIGURES}
    key["capital_journaled_percent"] = _json_percent(key_figures["capital_journaled_percent"])
    status = (
        len(summary["discrepancies"]),
        len(summary["sequence_gaps"]),
        len(summary["waiting_for_a_person"]),
    )
    assert (
        key_figures["discrepancies"],
        key_figures["sequence_gaps"],
        key_figures["waiting_for_a_person"],
    ) == status
    return {
        "key": key,
        "status": status,
        "totals": summary["totals"],
        "per_client": {
            client["client"]: tuple(client[name] for name in CLIENT_COLUMNS)
            for client in summary["per_client"]
        },
        "top_reasons": [
            (reason["code"], reason["findings"], reason["by_client"])
            for reason in summary["top_rejection_reasons"]
        ],
        "rules": {
            rule["code"]: (rule["severity"], rule["findings"]) for rule in summary["findings_per_rule"]
        },
        "capital_now": {
            state: (item["cases"], item["capital_ore"], _json_percent(item["share_percent"]))
            for state, item in summary["capital_by_state"].items()
        },
        "journals_total": (summary["journals_total"]["cases"], summary["journals_total"]["capital_ore"]),
    }


# --- the test ------------------------------------------------------------------------------------


def test_the_page_the_csv_files_and_the_json_show_the_same_figures(
    traffic: Traffic, capsys: pytest.CaptureFixture[str]
) -> None:
    day = traffic.day
    next(day.folders.archive.glob("*/*")).unlink()  # an original lost: one discrepancy to count
    code = cli.main(
        [
            "report",
            "--from",
            "2026-11-25",
            "--to",
            "2026-11-25",
            "--format",
            "json",
            "--config",
            str(day.config.path),
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    assert code == 1  # not accounted for
    written = [Path(path) for path in summary["written"]]
    (page,) = [path for path in written if path.suffix == ".html"]

    on_the_page = figures_on_the_page(page)
    in_the_csv = figures_in_the_csv_files(page.parent)
    in_the_json = figures_in_the_json(summary)

    # What is compared is worth comparing: two clients, several reasons, journals out, a problem.
    assert set(on_the_page["per_client"]) == {"lst-exempel", "(okänd)"}
    assert len(on_the_page["top_reasons"]) >= 5
    assert {client for _, _, by_client in on_the_page["top_reasons"] for client in by_client} == {
        "lst-exempel",
        "(okänd)",
    }
    assert on_the_page["key"]["journals_delivered"] == 2 and on_the_page["journals_total"][1] > 0
    assert on_the_page["status"] == (1, 0, 1)  # the lost original; the quarantined file waits
    assert on_the_page["capital_now"]["delivered"][2] == "100.0"
    for figure in on_the_page:
        assert in_the_csv[figure] == on_the_page[figure], f"CSV and page differ in {figure}"
        assert in_the_json[figure] == on_the_page[figure], f"JSON and page differ in {figure}"
