"""Reports, audit and trace over a day of mixed traffic, checked against counts made here.

The expected figures are computed from what the gateway published (every receipt) and from the
original files themselves (every Kapitalbelopp), never from the store the report reads.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree
from lxml import html as lxml_html

from gateway import cli
from gateway import config as config_module
from gateway.accounting.reports.build import build_report, write_report
from gateway.accounting.reports.model import format_ore
from gateway.adapters.folder import FolderTransport
from gateway.formats.journal import read_journal
from gateway.service.intake import Intake
from gateway.service.journals import JournalService
from gateway.store.sqlite import SqliteStore
from tests.conftest import EXAMPLE, REPO, SAMPLE_CONFIG, broken_copy
from tests.faults import plant
from tests.test_intake import KV, Gateway

DAY = date(2026, 11, 25)
MORNING = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
AGRESSO = REPO / "examples" / "lst-exempel-agresso-2026-11-25.xml"
MIXED = REPO / "examples" / "with-errors" / "lst-exempel-2026-11-25-blandad.xml"
UNKNOWN_CLIENT = REPO / "tests" / "data" / "invalid" / "F05-okand-uppdragsgivare.xml"
NOT_XML = REPO / "tests" / "data" / "invalid" / "F01-inte-valformad.xml"
AF = {"a": "urn:inkasso-gateway:arendefil:1"}


class Day(Gateway):
    """The in-process gateway with a clock that moves a minute per step."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.moment = MORNING
        self.intake = Intake(self.config, self.store, self.folders, clock=self.clock)
        self.journals = JournalService(
            self.config, self.store, self.folders, FolderTransport(self.folders.journals), clock=self.clock
        )

    def clock(self) -> datetime:
        self.moment += timedelta(minutes=1)
        return self.moment

    def seal_and_deliver(self) -> None:
        self.journals.seal()
        assert all(result.delivered for result in self.journals.deliver_approved())


@dataclass
class Traffic:
    day: Day
    dropped: dict[str, Path]  # sha256 -> the original as dropped


def _drop(day: Day, dropped: dict[str, Path], *files: Path) -> None:
    for file in files:
        dropped[hashlib.sha256(file.read_bytes()).hexdigest()] = file
    day.drop_and_process(*files)


@pytest.fixture
def traffic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Traffic:
    """Valid, partly valid, invalid, unreadable, a duplicate, a quarantined file, two journals."""
    (tmp_path / "gw").mkdir()
    day = Day(tmp_path / "gw")
    dropped: dict[str, Path] = {}
    _drop(day, dropped, EXAMPLE, MIXED, UNKNOWN_CLIENT, NOT_XML)
    day.seal_and_deliver()  # journal 1
    again = tmp_path / "same-bytes-new-name.xml"
    shutil.copyfile(EXAMPLE, again)
    _drop(day, dropped, again, AGRESSO)
    plant(monkeypatch, "raise", "poison")
    poison = broken_copy(tmp_path, {"LST-2026-0412": "LST-2026-9412"}, name="poison.xml")
    _drop(day, dropped, poison)
    for _ in range(2):  # attempts 2 and 3, then quarantine
        day.tick()
        for candidate in day.source.scan():
            day.intake.process(candidate, day.source)
    monkeypatch.undo()
    day.seal_and_deliver()  # journal 2
    return Traffic(day, dropped)


def _kronor(text: str | None) -> int:
    return int(Decimal(text or "0") * 100)


def _capital_in_file(path: Path) -> int:
    """Every case's Kapitalbelopp in an original, in öre (0 for a file that does not parse)."""
    try:
        root = etree.parse(str(path)).getroot()
    except etree.XMLSyntaxError:
        return 0
    return sum(_kronor(element.text) for element in root.iterfind("a:Arende/a:Fordran/a:Kapitalbelopp", AF))


def _expected(traffic: Traffic) -> dict[str, int]:
    """The day's figures, from the receipts and the originals alone."""
    counts = dict.fromkeys(
        ("files", "accepted", "partially_accepted", "rejected", "duplicate", "quarantined", "cases",
         "cases_journaled", "cases_rejected", "cases_duplicate", "capital_in_ore", "capital_journaled_ore",
         "capital_duplicate_ore"),
        0,
    )  # fmt: skip
    status_field = {
        "Godkand": "accepted",
        "DelvisGodkand": "partially_accepted",
        "Underkand": "rejected",
        "Dubblett": "duplicate",
    }
    case_field = {"Godkand": "cases_journaled", "Underkand": "cases_rejected", "Dubblett": "cases_duplicate"}
    for path in traffic.day.folders.receipts.glob("*/*.kvittens.xml"):
        if path.parent == traffic.day.folders.journal_receipts:
            continue
        receipt = etree.parse(str(path)).getroot()
        counts["files"] += 1
        status = receipt.findtext("k:Status", namespaces=KV) or ""
        quarantined = receipt.findtext("k:Anmarkning/k:Regel", namespaces=KV) == "F08"
        counts["quarantined" if quarantined else status_field[status]] += 1
        for case in receipt.iterfind("k:Arende", KV):
            counts["cases"] += 1
            counts[case_field[case.findtext("k:Status", namespaces=KV) or ""]] += 1
        counts["capital_journaled_ore"] += _kronor(
            receipt.findtext("k:Summering/k:SummaGodkantKapitalbelopp", namespaces=KV)
        )
        original = traffic.dropped[receipt.findtext("k:Fil/k:Sha256", namespaces=KV) or ""]
        if not quarantined:
            counts["capital_in_ore"] += _capital_in_file(original)
        if status == "Dubblett":
            counts["capital_duplicate_ore"] += _capital_in_file(original)
    return counts


def test_a_day_of_mixed_traffic_adds_up(traffic: Traffic) -> None:
    day = traffic.day
    # A file the gateway is working on right now: counted as in progress, not lost.
    day.store.claim_file(
        source="erp", name="halfway.xml", path="/x/halfway.xml", sha256="e" * 64, size=1, now=day.clock()
    )
    report = build_report(day.store, day.config, period_from=DAY, period_to=DAY, client=None, now=day.clock())
    expected = _expected(traffic)
    total = report.total

    assert report.balanced, report.discrepancies
    assert total.files == expected["files"] + 1 == 8
    assert total.in_progress == 1
    for name in ("accepted", "partially_accepted", "rejected", "duplicate", "quarantined", "cases",
                 "cases_journaled", "cases_rejected", "cases_duplicate", "capital_in_ore",
                 "capital_journaled_ore", "capital_duplicate_ore"):  # fmt: skip
        assert getattr(total, name) == expected[name], name
    assert expected["quarantined"] == 1 and expected["duplicate"] == 1 and expected["partially_accepted"] == 1
    assert (
        total.capital_rejected_ore
        == expected["capital_in_ore"] - expected["capital_journaled_ore"] - expected["capital_duplicate_ore"]
    )
    # Out: two journals, numbered 1 and 2, delivering every krona journaled today.
    delivered = report.delivered
    assert [journal.sequence for journal in delivered] == [1, 2] and not report.gaps
    sent_ore = 0
    for journal in delivered:
        _, _, totals = read_journal((day.folders.sent / (journal.file_name or "")).open("rb"))
        sent_ore += int(totals.capital * 100)
    assert report.delivered_capital_ore == sent_ore == expected["capital_journaled_ore"]
    assert {(s.state, s.capital_ore) for s in report.capital_by_state} == {("delivered", sent_ore)}
    # The unknown client's file is reported under "(okänd)", by the source it came from.
    assert any(row.client == "(okänd)" and row.rejected >= 1 for row in report.tallies)
    # Statistics: the rule codes that stopped cases, and both latencies measured.
    codes = {rule.code for rule in report.rules}
    assert {"F05", "F01", "F04", "F08"} <= codes
    latencies = {latency.name: latency for latency in report.latencies}
    assert latencies["drop-to-receipt"].count == 7
    assert latencies["seal-to-delivery"].count == 2 and (latencies["seal-to-delivery"].max_seconds or 0) > 0


def _run(day: Day, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main([*args, "--config", str(day.config.path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_report_command_writes_html_and_csv_and_exits_1_when_something_is_unaccounted(
    traffic: Traffic, capsys: pytest.CaptureFixture[str]
) -> None:
    day = traffic.day
    code, out = _run(day, "report", "--from", "2026-11-25", "--to", "2026-11-25", capsys=capsys)
    # Accounted for, but the quarantined file waits for a person: not green, not exit 0.
    assert code == 1 and "WAITING FOR A PERSON (1):" in out and "[file-quarantined] poison.xml" in out, out
    (quarantined,) = day.store.quarantined_files()
    day.store.resolve_quarantined(
        quarantined.id, by="Karin", resolution="asked for the file again", now=MORNING
    )
    code, out = _run(day, "report", "--from", "2026-11-25", "--to", "2026-11-25", capsys=capsys)
    assert code == 0, out
    assert "Everything accounted for" in out
    html = day.folders.reports / "avstamning-2026-11-25.html"
    assert html.is_file() and "<svg" in html.read_text(encoding="utf-8")
    with (day.folders.reports / "avstamning-2026-11-25.avstamning.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert sum(int(row["files"]) for row in rows) == 7
    assert all(row["konfig_sha256"] == day.config.sha256 for row in rows)
    # The file list, to match against an ERP's export log: one row per file, with its receipt.
    with (day.folders.reports / "avstamning-2026-11-25.filer.csv").open(encoding="utf-8-sig") as handle:
        files = list(csv.DictReader(handle))
    assert len(files) == 7 and {row["status"] for row in files} >= {"accepted", "quarantined", "duplicate"}
    assert all(row["receipt"].endswith(".kvittens.xml") and len(row["sha256"]) == 64 for row in files)
    assert "poison.xml" in html.read_text(encoding="utf-8")

    archived = next(day.folders.archive.glob("*/*"))
    archived.unlink()  # an original gone from the archive: not accounted for
    code, out = _run(day, "report", "--from", "2026-11-25", capsys=capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[1].startswith("NOT ACCOUNTED FOR") and "original-missing" in lines[2]


def _flip_one_byte(path: Path) -> bytes:
    original = path.read_bytes()
    position = original.index(b"<", len(original) // 2) + 1  # inside a tag name: still a file, now wrong
    path.write_bytes(original[:position] + bytes([original[position] ^ 0x01]) + original[position + 1 :])
    return original


def test_audit_verify_names_the_one_byte_that_changed(
    traffic: Traffic, capsys: pytest.CaptureFixture[str]
) -> None:
    day = traffic.day
    code, out = _run(day, "audit", "verify", capsys=capsys)
    assert code == 0 and out.startswith("OK: 7 receipt(s) in an unbroken chain"), out

    receipts = sorted(
        (
            p
            for p in day.folders.receipts.glob("*/*.kvittens.xml")
            if p.parent != day.folders.journal_receipts
        ),
        key=lambda p: p.stat().st_mtime_ns,
    )
    archived = next(day.folders.archive.glob("*/*"))
    sent = next(day.folders.sent.iterdir())
    for target, kind in (
        (receipts[1], "receipt-altered"),
        (archived, "original-altered"),
        (sent, "journal-altered"),
    ):
        original = _flip_one_byte(target)
        code, out = _run(day, "audit", "verify", capsys=capsys)
        assert code == 1
        first = out.splitlines()[0]
        assert first == f"BROKEN: {kind}: {target}", out
        target.write_bytes(original)
    assert _run(day, "audit", "verify", capsys=capsys)[0] == 0


@pytest.mark.slow
def test_audit_verify_finds_a_receipt_that_was_removed_or_forged(
    traffic: Traffic, capsys: pytest.CaptureFixture[str]
) -> None:
    day = traffic.day
    receipt = next(p for p in day.folders.receipts.glob("2026-11-25/*.kvittens.xml"))
    journal_receipt = day.folders.journal_receipts / "lst-exempel-000001.xml.kvittens.xml"
    forgeries = [
        receipt.with_name("forged.xml.abcdefabcdef.kvittens.xml"),  # beside the real ones
        day.folders.receipts / "undated" / "forged.kvittens.xml",  # in a folder of its own
        day.folders.archive / "2026-11-25" / "99-forged.xml",  # an original nobody received
        day.folders.sent / "lst-exempel-000009.xml",  # a journal nobody delivered
        day.folders.journal_receipts / "lst-exempel-000009.xml.kvittens.xml",
    ]
    for forged in forgeries:
        forged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(receipt, forged)
        code, out = _run(day, "audit", "verify", capsys=capsys)
        assert code == 1 and out.splitlines()[0].endswith(f"-unknown: {forged}"), out
        forged.unlink()

    # A journal receipt edited where the journal's SHA-256 is not (its case list, say).
    original = journal_receipt.read_bytes()
    assert b"LST-2026-0412" in original
    journal_receipt.write_bytes(original.replace(b"LST-2026-0412", b"LST-2026-0413"))
    code, out = _run(day, "audit", "verify", capsys=capsys)
    assert code == 1 and out.splitlines()[0] == f"BROKEN: journal-receipt-altered: {journal_receipt}", out
    journal_receipt.write_bytes(original)

    # A receipt that is no longer XML at all.
    original = receipt.read_bytes()
    receipt.write_bytes(original[: len(original) // 2])
    code, out = _run(day, "audit", "verify", capsys=capsys)
    assert code == 1 and f"receipt-unreadable: {receipt}" in out
    receipt.write_bytes(original)

    # Limited to a period: nothing written then, nothing to check, and said so.
    code, out = _run(day, "audit", "verify", "--from", "2026-12-01", capsys=capsys)
    assert code == 0 and out.startswith("OK: 0 receipt(s) in the period (none in the period)"), out
    assert _run(day, "audit", "verify", "--from", "2026-11-26", "--to", "2026-11-25", capsys=capsys)[0] == 2

    receipt.unlink()
    code, out = _run(day, "audit", "verify", capsys=capsys)
    assert code == 1 and out.splitlines()[0] == f"BROKEN: receipt-missing: {receipt}"


def test_audit_and_report_mask_a_personnummer_in_a_file_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gw").mkdir()
    day = Day(tmp_path / "gw")
    named = tmp_path / "kund_198503159819.xml"  # ERP systems do name files after people
    shutil.copyfile(EXAMPLE, named)
    day.drop_and_process(named)
    next(day.folders.archive.glob("*/*")).unlink()
    code, out = _run(day, "report", "--from", "2026-11-25", "--format", "json", capsys=capsys)
    assert code == 1 and "original-missing" in out
    code, audit_out = _run(day, "audit", "verify", capsys=capsys)
    code, trace_out = _run(day, "trace", named.name, capsys=capsys)
    page = next(day.folders.reports.glob("*.html")).read_text(encoding="utf-8")
    for text in (out, audit_out, trace_out, page):
        assert "8503159819" not in text and "850315-9819" not in text
    assert "850315-XXXX" in audit_out and "850315-XXXX" in page


def test_trace_follows_a_case_from_its_file_to_the_delivered_journal(
    traffic: Traffic, capsys: pytest.CaptureFixture[str]
) -> None:
    day = traffic.day
    code, out = _run(day, "trace", "LST-2026-0412", capsys=capsys)
    assert code == 0, out
    steps = out.splitlines()
    assert steps[0] == "Case LST-2026-0412 (client lst-exempel)"
    arrived = next(i for i, s in enumerate(steps) if f"arrived in file {EXAMPLE.name}" in s)
    joined = next(i for i, s in enumerate(steps) if "joined journal lst-exempel-j1" in s)
    sealed = next(i for i, s in enumerate(steps) if "sealed as number 1" in s)
    delivered = next(i for i, s in enumerate(steps) if "delivered as lst-exempel-000001.xml" in s)
    assert arrived < joined < sealed < delivered

    code, out = _run(day, "trace", "lst-exempel-000002", capsys=capsys)
    assert code == 0 and out.startswith("Journal lst-exempel-j2") and AGRESSO.name in out
    code, out = _run(day, "trace", "same-bytes-new-name.xml", capsys=capsys)
    assert code == 0 and f"received before: see receipt {EXAMPLE.name}." in out
    code, out = _run(day, "trace", "poison.xml", capsys=capsys)
    assert code == 0 and "quarantined" in out and "F08" in out
    code, out = _run(day, "trace", "no-such-thing", capsys=capsys)
    assert code == 1 and "nothing known" in out
    code, out = _run(day, "trace", "____________", capsys=capsys)  # not a LIKE pattern
    assert code == 1
    receipt = next(day.folders.receipts.glob(f"2026-11-25/{MIXED.name}.*.kvittens.xml"))
    code, out = _run(day, "trace", receipt.name, capsys=capsys)  # what an auditor has in hand
    assert code == 0 and out.startswith(f"File {MIXED.name}") and "judged partially-accepted" in out


def test_trace_shows_when_and_by_whom_a_case_was_withdrawn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gw").mkdir()
    day = Day(tmp_path / "gw")
    day.drop_and_process(EXAMPLE)
    code, _ = _run(
        day, "journal", "withdraw", "LST-2026-0419", "--reason", "Betald", "--by", "Olle", capsys=capsys
    )
    assert code == 0
    code, out = _run(day, "trace", "LST-2026-0419", capsys=capsys)
    assert code == 0
    withdrawn = next(line for line in out.splitlines() if "withdrawn" in line)
    assert re.match(r"  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  withdrawn", withdrawn), withdrawn  # with its time
    assert "withdrawn from journal lst-exempel-j1 by Olle: Betald" in withdrawn
    assert "not delivered yet" not in out  # the journal goes on without it


def test_a_daily_report_missed_while_stopped_is_written_at_start(tmp_path: Path) -> None:
    from gateway.bootstrap import wire
    from gateway.service.runner import LAST_SCHEDULED_REPORT, Daemon

    (tmp_path / "gateway.toml").write_text(SAMPLE_CONFIG, encoding="utf-8")
    config = config_module.load(tmp_path / "gateway.toml")
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    store = SqliteStore(tmp_path / "var" / "gateway.db")
    # The last nightly run was on the 22nd (the report of the 21st); stopped until the 25th.
    store.set_meta(LAST_SCHEDULED_REPORT, datetime(2026, 11, 22, 0, 30, tzinfo=UTC).isoformat())
    store.close()
    assert Daemon(config, wire(config), once=True, clock=lambda: now).run() == 0
    reports = tmp_path / "outbox" / "reports"
    assert sorted(p.name for p in reports.glob("*.html")) == [
        "avstamning-2026-11-22.html",
        "avstamning-2026-11-23.html",
        "avstamning-2026-11-24.html",
    ]
    for page in reports.glob("*.html"):
        page.unlink()
    assert Daemon(config, wire(config), once=True, clock=lambda: now).run() == 0
    assert not list(reports.glob("*.html"))  # done once: not again at the next start


def test_a_protected_identity_is_listed_for_review_masked_and_without_its_address(tmp_path: Path) -> None:
    protected = broken_copy(
        tmp_path,
        {
            "example.se</Epost>\n": "example.se</Epost>\n      <SkyddadePersonuppgifter>true</SkyddadePersonuppgifter>\n"
        },
        name="skyddad.xml",
    )
    (tmp_path / "gw").mkdir()
    day = Day(tmp_path / "gw")
    day.drop_and_process(protected)
    day.journals.seal()  # held for review: a protected identity (M16)
    report = build_report(day.store, day.config, period_from=DAY, period_to=DAY, client=None, now=day.clock())
    listed = {case.reference: case for case in report.attention}
    assert listed["LST-2026-0412"].protected and listed["LST-2026-0412"].address is None
    assert listed["LST-2026-0412"].masked_identity == "850315-XXXX"
    assert listed["LST-2026-0419"].address == "Industrivägen 12, 90326 Umeå"  # the others keep theirs
    html = write_report(report, day.folders.reports)[0]
    page = html.read_text(encoding="utf-8")
    assert "850315-XXXX" in page and "850315-9819" not in page and "8503159819" not in page
    assert "Storgatan 1" not in page and "Skyddad adress" in page


def test_the_page_has_cases_and_kronor_per_client_in_and_out(traffic: Traffic) -> None:
    day = traffic.day
    report = build_report(day.store, day.config, period_from=DAY, period_to=DAY, client=None, now=day.clock())
    page = lxml_html.fromstring(write_report(report, day.folders.reports)[0].read_bytes())
    section = next(s for s in page.iter("section") if "Per uppdragsgivare" in s.text_content())
    rows = {
        row[0].text_content(): [cell.text_content() for cell in row]
        for row in section.iterfind(".//tbody/tr")
    }
    expected = _expected(traffic)
    ours = rows["lst-exempel"]
    assert ours[3] == str(expected["cases_journaled"])
    assert ours[6] == format_ore(expected["capital_journaled_ore"])  # in ...
    assert ours[7:] == ["2", format_ore(expected["capital_journaled_ore"])]  # ... and out, to the öre
    assert rows["(okänd)"][1] == "3"  # an unknown client, an unreadable file, a quarantined one


def test_an_amount_too_large_for_any_case_is_rejected_with_a_receipt_and_still_adds_up(
    tmp_path: Path,
) -> None:
    huge = broken_copy(tmp_path, {">4800.00<": ">100000000000000000000.00<"}, name="huge.xml")
    (tmp_path / "gw").mkdir()
    day = Day(tmp_path / "gw")
    day.drop_and_process(huge)
    (receipt,) = day.receipts()
    assert receipt.findtext("k:Status", namespaces=KV) == "Underkand"  # S01 and F06, not quarantined
    assert receipt.findtext("k:Anmarkning/k:Regel", namespaces=KV) == "F06"
    report = build_report(day.store, day.config, period_from=DAY, period_to=DAY, client=None, now=day.clock())
    assert report.balanced and report.total.cases_rejected == 3 and report.total.quarantined == 0
    # The impossible amount counts as 0; the two others are there to the öre.
    assert report.total.capital_in_ore == report.total.capital_rejected_ore == 3_305_050


def test_writing_a_report_clears_what_a_killed_writer_left_and_nothing_else(traffic: Traffic) -> None:
    day = traffic.day
    folder = day.folders.reports
    folder.mkdir(parents=True, exist_ok=True)
    stale = folder / ".avstamning-2026-11-24.html.1234.5678.tmp"
    live = folder / ".avstamning-2026-11-25.html.4321.8765.tmp"
    for path in (stale, live):
        path.write_text("half", encoding="utf-8")
    os.utime(stale, (0, 0))
    report = build_report(day.store, day.config, period_from=DAY, period_to=DAY, client=None, now=day.clock())
    written = write_report(report, folder)
    assert not stale.exists() and live.exists()
    tables = "avstamning journaler regler latens filer nyckeltal uppdragsgivare orsaker kapital avvikelser"
    assert [p.name for p in written] == [
        "avstamning-2026-11-25.html",
        *(f"avstamning-2026-11-25.{table}.csv" for table in tables.split()),
    ]


def test_a_chain_head_kept_from_a_report_catches_a_rewrite_of_store_and_receipt_together(
    traffic: Traffic, capsys: pytest.CaptureFixture[str]
) -> None:
    day = traffic.day
    code, out = _run(day, "report", "--from", "2026-11-25", capsys=capsys)
    head = next(line for line in out.splitlines() if line.startswith("Receipt chain head: ")).split()[3]
    assert head == day.store.receipt_chain_head()
    page = next(day.folders.reports.glob("*.html")).read_text(encoding="utf-8")
    assert head in page
    assert _run(day, "audit", "verify", "--anchor", head, capsys=capsys)[0] == 0

    # Someone with write access to everything rewrites the newest receipt and the store to match.
    newest = day.folders.located(
        next(r.receipt_path or "" for r in day.store.receipt_chain() if r.receipt_sha256 == head)
    )
    assert b"<Status>Underkand</Status>" in newest.read_bytes()  # the quarantined file's
    rewritten = newest.read_bytes().replace(b"<Status>Underkand</Status>", b"<Status>Godkand</Status>")
    newest.write_bytes(rewritten)
    new_sha = hashlib.sha256(rewritten).hexdigest()
    with sqlite3.connect(day.store.path) as db:
        db.execute("UPDATE files SET receipt_sha256 = ? WHERE receipt_sha256 = ?", (new_sha, head))
        db.execute("UPDATE meta SET value = ? WHERE key = 'receipt_chain_head'", (new_sha,))
    assert _run(day, "audit", "verify", capsys=capsys)[0] == 0  # consistent with itself ...
    code, out = _run(day, "audit", "verify", "--anchor", head, capsys=capsys)
    assert code == 1 and out.splitlines()[0] == f"BROKEN: anchor-missing: {head}"  # ... not with the anchor


def test_audit_beside_a_delivery_never_takes_the_journal_in_flight_for_a_forgery(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon publishes a journal's file a moment before it records it as built; an audit run
    in that moment must not call the file forged (it was, 2 runs in 163, before)."""
    import threading

    (tmp_path / "gw").mkdir()
    day = Day(tmp_path / "gw")
    day.drop_and_process(EXAMPLE)
    day.journals.seal()
    published = threading.Event()
    original = SqliteStore.record_journal_built

    def slowly(self: SqliteStore, *args: object, **kwargs: object) -> None:
        published.set()  # the file is in var/sent now ...
        time.sleep(1.5)  # ... and the record of it comes a while later
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SqliteStore, "record_journal_built", slowly)
    delivery = threading.Thread(
        target=lambda: JournalService(
            day.config,
            SqliteStore(day.store.path),
            day.folders,
            FolderTransport(day.folders.journals),
            clock=day.clock,
        ).deliver_approved()
    )
    delivery.start()
    assert published.wait(10)
    code, out = _run(day, "audit", "verify", capsys=capsys)
    delivery.join()
    assert code == 0 and "forged" not in out, out


def test_a_period_no_timestamp_can_hold_is_a_usage_error_not_a_traceback(
    traffic: Traffic, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (("report", "--from", "0001-01-01"), ("audit", "verify", "--to", "0001-01-01")):
        code, out = _run(traffic.day, *args, capsys=capsys)
        assert code == 2, out
        assert "a day between 1970-01-01 and 9999-12-30" in out and "Traceback" not in out


def test_a_client_removed_from_the_configuration_keeps_its_open_journal_unsealed_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gw").mkdir()
    day = Day(tmp_path / "gw")
    day.drop_and_process(EXAMPLE)  # lst-exempel's open journal has cases
    other = """
[[clients]]
id = "lst-annat"
orgnr = "202100-6255"
name = "Länsstyrelsen i Annat län"
"""
    day.config.path.write_text(
        day.config.path.read_text(encoding="utf-8").replace(SAMPLE_CONFIG.split("[[sources]]")[0], other),
        encoding="utf-8",
    )
    code, out = _run(day, "config", "check", capsys=capsys)
    assert code == 0 and "WARNING: journal lst-exempel-j1" in out and "no longer configured" in out, out
    code, out = _run(day, "journal", "seal", capsys=capsys)
    assert code == 1 and "NOT sealed lst-exempel-j1: client 'lst-exempel' is no longer configured" in out, out
    code, out = _run(day, "journal", "list", capsys=capsys)
    assert "(open)" in out, "still open, still unnumbered"


def test_trace_follows_a_rejected_case_to_its_file_receipt_and_findings(
    traffic: Traffic, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(traffic.day, "trace", "LST-2026-0431", capsys=capsys)
    assert code == 0, out
    assert "Case LST-2026-0431 (rejected in file lst-exempel-2026-11-25-blandad.xml)" in out
    assert "rejected: not journaled; receipt" in out and "finding M02 (Fel)" in out
    assert "780612-XXXX" in out or "780612" not in out  # the identity in the message stays masked
