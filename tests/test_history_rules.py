"""Rules that need earlier files: F04 duplicate file, F07 sequence, A04/A05 case seen before, R08.

A fake :class:`History` (the protocol in gateway/domain/rules/registry.py) stands in for the store.
It answers only for the client's organisationsnummer as 10 digits, so these tests also show that
the gateway asks with the normalised number, whatever the file wrote.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from gateway.domain.findings import Finding, Severity
from gateway.domain.judging import CaseOutcome, CaseStatus, FileStatus, case_fingerprint
from gateway.domain.model import Case
from gateway.domain.rules import NoHistory
from gateway.service.validation import FileReport, ValidationSettings, validate_file

VALID = Path(__file__).parent / "data" / "valid"
TODAY = date(2026, 11, 25)
CLIENT = "2021000001"  # written 202100-0001 in the samples
EARLIER_RECEIPT = "KV-2026-11-24-000417"

#: One case (LST-2026-1101, claim 2026-20101), FilId LST-20261124-0101, Lopnummer 101.
ONE_CASE = VALID / "privat-personnummer.xml"
#: Two cases (LST-2026-1105 and LST-2026-1106), no Lopnummer.
TWO_CASES = VALID / "aktiebolag.xml"
#: A package with attachments: its SHA-256 is taken over the zip's bytes.
PACKAGE = VALID / "bilagor-i-paket.zip"


@dataclass
class FakeHistory:
    """Earlier files, as the store would answer; keys use the client's 10-digit number."""

    by_bytes: dict[str, str] = field(default_factory=dict)
    by_file_id: dict[tuple[str, str], str] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    fingerprints: dict[tuple[str, str], str] = field(default_factory=dict)
    claims: dict[tuple[str, str], str] = field(default_factory=dict)

    def receipt_for_bytes(self, sha256: str) -> str | None:
        return self.by_bytes.get(sha256)

    def receipt_for_file_id(self, client_orgnr: str, file_id: str) -> str | None:
        return self.by_file_id.get((client_orgnr, file_id))

    def last_sequence(self, client_orgnr: str) -> int | None:
        return self.sequences.get(client_orgnr)

    def accepted_case_fingerprint(self, client_orgnr: str, reference: str) -> str | None:
        return self.fingerprints.get((client_orgnr, reference))

    def case_for_claim_reference(self, client_orgnr: str, claim_reference: str) -> str | None:
        return self.claims.get((client_orgnr, claim_reference))


def _validate(path: Path, history: FakeHistory, *, strict_sequence: bool = False) -> FileReport:
    settings = ValidationSettings(
        today=TODAY,
        history=history,
        clients=frozenset({CLIENT}),
        strict_sequence=strict_sequence,
        fingerprint_cases=True,
    )
    return validate_file(path, settings)


def _fingerprints(path: Path) -> dict[str, str]:
    """Each case's content fingerprint by ArendeReferens, from a first run with no history."""
    seen: dict[str, str] = {}

    def remember(case: Case, outcome: CaseOutcome) -> None:
        seen[case.reference] = case_fingerprint(case)

    settings = ValidationSettings(
        today=TODAY, history=NoHistory(), clients=frozenset({CLIENT}), fingerprint_cases=True
    )
    report = validate_file(path, settings, on_case=remember)
    assert report.verdict.status is FileStatus.ACCEPTED
    return seen


def _codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def _all_codes(report: FileReport) -> set[str]:
    verdict = report.verdict
    return {f.code for f in verdict.findings} | {f.code for c in verdict.cases for f in c.findings}


def _variant(tmp_path: Path, source: Path, *replacements: tuple[str, str]) -> Path:
    """A copy of a sample with some text replaced (each replacement must apply)."""
    text = source.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    target = tmp_path / source.name
    target.write_text(text, encoding="utf-8")
    return target


def test_without_history_the_sample_is_accepted() -> None:
    report = _validate(ONE_CASE, FakeHistory())
    assert report.verdict.status is FileStatus.ACCEPTED
    assert _all_codes(report) == set()


# -- F04: the same file again --------------------------------------------------------------------


@pytest.mark.parametrize("path", [ONE_CASE, TWO_CASES, PACKAGE], ids=lambda p: p.name)
def test_F04_same_bytes_is_a_duplicate_naming_the_earlier_receipt(path: Path) -> None:
    history = FakeHistory(by_bytes={hashlib.sha256(path.read_bytes()).hexdigest(): EARLIER_RECEIPT})
    verdict = _validate(path, history).verdict
    assert verdict.status is FileStatus.DUPLICATE
    assert verdict.duplicate_of == EARLIER_RECEIPT
    (finding,) = verdict.findings
    assert finding.code == "F04"
    assert finding.severity is Severity.ERROR
    assert EARLIER_RECEIPT in finding.message_sv and EARLIER_RECEIPT in finding.message_en
    assert verdict.cases and all(case.status is CaseStatus.DUPLICATE for case in verdict.cases)
    assert verdict.accepted_count == 0


def test_F04_same_file_id_from_the_same_client_is_a_duplicate(tmp_path: Path) -> None:
    # Other bytes (a re-export with a changed comment), the same FilId.
    changed = _variant(tmp_path, ONE_CASE, ("<!--\n", "<!-- re-exported\n"))
    history = FakeHistory(by_file_id={(CLIENT, "LST-20261124-0101"): EARLIER_RECEIPT})
    verdict = _validate(changed, history).verdict
    assert verdict.status is FileStatus.DUPLICATE
    assert verdict.duplicate_of == EARLIER_RECEIPT
    assert _codes(verdict.findings) == ["F04"]
    assert verdict.findings[0].path == "/Arendefil/Filhuvud/FilId"
    assert all(case.status is CaseStatus.DUPLICATE for case in verdict.cases)


def test_F04_a_duplicate_is_not_also_told_its_lopnummer_repeats() -> None:
    sequence = int(etree.parse(str(ONE_CASE)).findtext("{*}Filhuvud/{*}Lopnummer") or 0)
    history = FakeHistory(
        by_bytes={hashlib.sha256(ONE_CASE.read_bytes()).hexdigest(): EARLIER_RECEIPT},
        sequences={CLIENT: sequence},  # its own number, recorded when it came the first time
    )
    assert sequence and _codes(_validate(ONE_CASE, history).verdict.findings) == ["F04"]


def test_F04_same_file_id_from_another_client_is_not_a_duplicate() -> None:
    history = FakeHistory(by_file_id={("5590001235", "LST-20261124-0101"): EARLIER_RECEIPT})
    report = _validate(ONE_CASE, history)
    assert report.verdict.status is FileStatus.ACCEPTED
    assert report.verdict.duplicate_of is None
    assert _all_codes(report) == set()


# -- F07: Lopnummer --------------------------------------------------------------------------------


def test_F07_the_next_number_is_fine() -> None:
    report = _validate(ONE_CASE, FakeHistory(sequences={CLIENT: 100}))
    assert report.verdict.status is FileStatus.ACCEPTED
    assert _all_codes(report) == set()


@pytest.mark.parametrize("previous", [99, 101, 150])
def test_F07_a_gap_or_repeat_is_a_warning_by_default(previous: int) -> None:
    verdict = _validate(ONE_CASE, FakeHistory(sequences={CLIENT: previous})).verdict
    (finding,) = verdict.findings
    assert finding.code == "F07"
    assert finding.severity is Severity.WARNING
    assert finding.path == "/Arendefil/Filhuvud/Lopnummer"
    assert str(previous + 1) in finding.message_en
    assert verdict.status is FileStatus.ACCEPTED
    assert all(case.status is CaseStatus.ACCEPTED for case in verdict.cases)


def test_F07_is_an_error_with_strict_sequence() -> None:
    verdict = _validate(ONE_CASE, FakeHistory(sequences={CLIENT: 99}), strict_sequence=True).verdict
    (finding,) = verdict.findings
    assert finding.code == "F07"
    assert finding.severity is Severity.ERROR
    assert verdict.status is FileStatus.REJECTED
    assert all(case.status is CaseStatus.REJECTED for case in verdict.cases)


def test_F07_without_lopnummer_nothing_is_checked() -> None:
    report = _validate(TWO_CASES, FakeHistory(sequences={CLIENT: 7}), strict_sequence=True)
    assert report.verdict.status is FileStatus.ACCEPTED
    assert _all_codes(report) == set()


# -- A04 / A05: a case accepted before ------------------------------------------------------------


def test_A04_a_case_accepted_before_with_the_same_content_is_a_duplicate() -> None:
    fingerprints = _fingerprints(TWO_CASES)
    history = FakeHistory(fingerprints={(CLIENT, "LST-2026-1105"): fingerprints["LST-2026-1105"]})
    verdict = _validate(TWO_CASES, history).verdict
    first, second = verdict.cases
    assert first.status is CaseStatus.DUPLICATE
    assert _codes(first.findings) == ["A04"]
    assert first.findings[0].path == "/Arendefil/Arende[1]/ArendeReferens"
    assert second.status is CaseStatus.ACCEPTED
    assert not second.findings
    assert verdict.findings == []
    assert [case.reference for case in verdict.cases if case.status is CaseStatus.ACCEPTED] == [
        "LST-2026-1106"
    ]


def test_A04_the_fingerprint_ignores_layout_and_position(tmp_path: Path) -> None:
    """The same case re-exported in a new file, at other lines and after another case, is a duplicate."""
    fingerprints = _fingerprints(ONE_CASE)
    moved = _variant(
        tmp_path,
        ONE_CASE,
        ("<FilId>LST-20261124-0101</FilId>", "<FilId>LST-20261125-0001</FilId>"),
        ("  <Arende>\n", "\n\n  <Arende>\n"),
        ("<Skapad>2026-11-24T22:15:00+01:00</Skapad>", "<Skapad>2026-11-25T22:15:00+01:00</Skapad>"),
    )
    history = FakeHistory(fingerprints={(CLIENT, "LST-2026-1101"): fingerprints["LST-2026-1101"]})
    verdict = _validate(moved, history).verdict
    (case,) = verdict.cases
    assert case.status is CaseStatus.DUPLICATE
    assert _codes(case.findings) == ["A04"]


def test_A05_a_case_accepted_before_with_other_content_is_rejected(tmp_path: Path) -> None:
    fingerprints = _fingerprints(ONE_CASE)
    changed = _variant(
        tmp_path,
        ONE_CASE,
        ("<FilId>LST-20261124-0101</FilId>", "<FilId>LST-20261125-0001</FilId>"),
        ("<Postnummer>11122</Postnummer>", "<Postnummer>11123</Postnummer>"),
    )
    history = FakeHistory(fingerprints={(CLIENT, "LST-2026-1101"): fingerprints["LST-2026-1101"]})
    verdict = _validate(changed, history).verdict
    (case,) = verdict.cases
    assert case.status is CaseStatus.REJECTED
    assert _codes(case.findings) == ["A05"]
    assert case.findings[0].severity is Severity.ERROR
    assert verdict.status is FileStatus.REJECTED


def test_A04_A05_another_clients_case_with_the_same_reference_does_not_count() -> None:
    fingerprints = _fingerprints(ONE_CASE)
    history = FakeHistory(fingerprints={("5590001235", "LST-2026-1101"): fingerprints["LST-2026-1101"]})
    report = _validate(ONE_CASE, history)
    assert report.verdict.status is FileStatus.ACCEPTED
    assert _all_codes(report) == set()


# -- R08: the same claim in another accepted case -------------------------------------------------


def test_R08_a_claim_number_already_in_another_accepted_case_is_rejected() -> None:
    history = FakeHistory(claims={(CLIENT, "2026-20101"): "LST-2026-0999"})
    verdict = _validate(ONE_CASE, history).verdict
    (case,) = verdict.cases
    assert case.status is CaseStatus.REJECTED
    assert _codes(case.findings) == ["R08"]
    (finding,) = case.findings
    assert finding.path == "/Arendefil/Arende[1]/Fordran[1]/Fakturanummer"
    assert "LST-2026-0999" in finding.message_en


def test_R08_a_diarienummer_already_in_another_accepted_case_is_rejected() -> None:
    path = VALID / "diarienummer-utan-fakturanummer.xml"
    history = FakeHistory(claims={(CLIENT, "525-3120-2026"): "LST-2026-0998"})
    (case,) = _validate(path, history).verdict.cases
    assert case.status is CaseStatus.REJECTED
    assert _codes(case.findings) == ["R08"]
    assert case.findings[0].path == "/Arendefil/Arende[1]/Fordran[1]/Diarienummer"


def test_R08_the_claim_in_the_same_case_accepted_before_is_no_conflict() -> None:
    # The case itself was accepted before with this claim: that is A04/A05's business, not R08's.
    history = FakeHistory(claims={(CLIENT, "2026-20101"): "LST-2026-1101"})
    report = _validate(ONE_CASE, history)
    assert report.verdict.status is FileStatus.ACCEPTED
    assert _all_codes(report) == set()
