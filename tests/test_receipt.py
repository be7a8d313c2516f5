"""The receipt writer: every receipt validates against kvittens-1.xsd and says what happened."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from gateway.domain.rules import RULESET_VERSION
from gateway.formats.receipt import (
    GENESIS_SHA256,
    ReceiptFormatError,
    ReceiptStamp,
    read_case_findings,
    read_receipt_facts,
    receipt_file_name,
    write_receipt,
)
from gateway.formats.schemas import KVITTENS, load_schema
from gateway.service.validation import FileReport, ValidationSettings, validate_file
from tests.conftest import EXAMPLE, TODAY, broken_copy

NS = {"k": "urn:inkasso-gateway:kvittens:1"}
STAMP = ReceiptStamp(
    receipt_id="K-0001",
    created=datetime(2026, 11, 25, 8, 0, tzinfo=UTC),
    received=datetime(2026, 11, 25, 7, 59, tzinfo=UTC),
    source="erp",
    previous_sha256=GENESIS_SHA256,
    gateway_version="0.1.0",
    ruleset_version=RULESET_VERSION,
    config_sha256=hashlib.sha256(b"config").hexdigest(),
)


def _receipt(report: FileReport, **kwargs: object) -> etree._Element:
    out = io.BytesIO()
    write_receipt(out, report, STAMP, **kwargs)  # type: ignore[arg-type]
    document = etree.fromstring(out.getvalue())
    schema = load_schema(KVITTENS)
    assert schema.validate(document), schema.error_log
    return document


def test_accepted_file_receipt_lists_every_case_and_the_accepted_total() -> None:
    report = validate_file(EXAMPLE, ValidationSettings(today=TODAY))
    receipt = _receipt(report, journal_id="lst-exempel-j1")

    assert receipt.findtext("k:Status", namespaces=NS) == "Godkand"
    assert (
        receipt.findtext("k:Fil/k:Sha256", namespaces=NS) == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    )
    assert receipt.findtext("k:Fil/k:Storlek", namespaces=NS) == str(EXAMPLE.stat().st_size)
    assert receipt.findtext("k:Fil/k:FilId", namespaces=NS) == "LST-EXEMPEL-20261124-01"
    references = [
        case.findtext("k:ArendeReferens", namespaces=NS) for case in receipt.iterfind("k:Arende", NS)
    ]
    assert references == ["LST-2026-0412", "LST-2026-0419", "LST-2026-0425"]
    journals = [case.findtext("k:JournalId", namespaces=NS) for case in receipt.iterfind("k:Arende", NS)]
    assert journals == ["lst-exempel-j1"] * 3  # every accepted case names the journal it joined
    assert receipt.findtext("k:Summering/k:AntalGodkanda", namespaces=NS) == "3"
    assert receipt.findtext("k:Summering/k:SummaGodkantKapitalbelopp", namespaces=NS) == "37850.50"
    assert receipt.findtext("k:ForegaendeKvittensSha256", namespaces=NS) == GENESIS_SHA256
    assert receipt.findtext("k:Gateway/k:Regelversion", namespaces=NS) == RULESET_VERSION


def test_partly_accepted_file_receipt_carries_findings_in_both_languages(tmp_path: Path) -> None:
    broken = broken_copy(
        tmp_path,
        {
            "<Identitet>850315-9819</Identitet>": "<Identitet>850315-9818</Identitet>",
            "<AntalArenden>3</AntalArenden>": "<AntalArenden>3</AntalArenden>",
        },
    )
    report = validate_file(broken, ValidationSettings(today=TODAY))
    receipt = _receipt(report)

    assert receipt.findtext("k:Status", namespaces=NS) == "DelvisGodkand"
    first = receipt.find("k:Arende[1]", NS)
    assert first is not None
    assert first.findtext("k:Status", namespaces=NS) == "Underkand"
    remark = first.find("k:Anmarkning", NS)
    assert remark is not None
    assert remark.findtext("k:Regel", namespaces=NS) == "M02"
    assert remark.findtext("k:Allvarlighet", namespaces=NS) == "Fel"
    assert remark.findtext("k:Plats", namespaces=NS) == "/Arendefil/Arende[1]/Motpart[1]/Identitet"
    assert remark.findtext("k:Rad", namespaces=NS) == "19"
    assert "850315-XXXX" in (remark.findtext("k:Meddelande", namespaces=NS) or "")
    assert "850315-XXXX" in (remark.findtext("k:MeddelandeEn", namespaces=NS) or "")
    assert b"9818" not in etree.tostring(receipt)
    assert receipt.findtext("k:Summering/k:AntalUnderkanda", namespaces=NS) == "1"
    assert receipt.findtext("k:Summering/k:SummaGodkantKapitalbelopp", namespaces=NS) == "33050.50"


def test_unreadable_file_receipt_still_validates(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.xml"
    garbage.write_bytes(b"\x00\x01 not xml at all <<<")
    receipt = _receipt(validate_file(garbage, ValidationSettings(today=TODAY)))
    assert receipt.findtext("k:Status", namespaces=NS) == "Underkand"
    assert receipt.findtext("k:Anmarkning/k:Regel", namespaces=NS) == "F01"
    assert receipt.find("k:Uppdragsgivare", NS) is None


def test_overlong_values_are_shortened_to_fit_the_receipt_schema(tmp_path: Path) -> None:
    broken = broken_copy(tmp_path, {"<ArendeReferens>LST-2026-0412<": "<ArendeReferens>" + "R" * 300 + "<"})
    report = validate_file(broken, ValidationSettings(today=TODAY))
    receipt = _receipt(report)
    reference = receipt.findtext("k:Arende[1]/k:ArendeReferens", namespaces=NS)
    assert reference is not None
    assert len(reference) == 100
    assert receipt.findtext("k:Arende[1]/k:Anmarkning/k:Regel", namespaces=NS) == "S01"


@pytest.mark.parametrize(
    ("original", "expected_start"),
    [
        ("export 2026-11-24.xml", "export_2026-11-24.xml."),
        ("../../etc/passwd", "_.._etc_passwd."),
        ("...hidden.xml", "hidden.xml."),
        ("utbetalning-åäö.xml", "utbetalning-åäö.xml."),
    ],
)
def test_receipt_file_name_is_safe_and_names_the_hash(original: str, expected_start: str) -> None:
    name = receipt_file_name(original, "ab" * 32)
    assert name.startswith(expected_start)
    assert name.endswith(".abababababab.kvittens.xml")
    assert "/" not in name


def test_a_written_receipt_reads_back_its_chain_link_and_a_case_s_findings(tmp_path: Path) -> None:
    broken = broken_copy(tmp_path, {"850315-9819": "850315-9818"})  # M02 on the first case
    report = validate_file(broken, ValidationSettings(today=TODAY))
    path = tmp_path / "r.kvittens.xml"
    with path.open("wb") as out:
        write_receipt(out, report, STAMP)
    facts = read_receipt_facts(path)
    assert (facts.file_sha256, facts.previous_sha256, facts.earlier_receipt) == (
        report.sha256,
        GENESIS_SHA256,
        None,
    )
    assert [code for code, _, _ in read_case_findings(path, "LST-2026-0412")] == ["M02"]
    assert read_case_findings(path, "LST-2026-0419") == []
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ReceiptFormatError):
        read_receipt_facts(path)
