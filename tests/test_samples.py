"""Sample case files for every rule code, run through the whole validation (reader, schema, rules).

``tests/data/valid/`` holds files that must pass with no finding at all, not even a warning.
``tests/data/invalid/<CODE>-<description>.(xml|zip|json|csv)`` holds at least one file per code that a single
file can show; the code in its name must appear among its findings, with the catalogue's severity
and its consequence (an error rejects the case, or the whole file for F-codes; a warning keeps it).
Codes that need earlier files (F04, F07, A05) are in ``test_history_rules.py``.

Every sample is validated as of 2026-11-25 with one configured client (202100-0001) and a postal
directory that knows 11122 Stockholm, so that F05 and M11 can show. Identity numbers are built from
Skatteverket's test series (birth numbers 980-999); a test below keeps it that way.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import zipfile
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from gateway.domain.findings import Finding, Severity
from gateway.domain.identity import is_placeholder
from gateway.domain.judging import CaseStatus, FileStatus
from gateway.domain.rules import all_rules
from gateway.formats.casecsv import load_mapping
from gateway.service.validation import FileReport, ValidationSettings, validate_file

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parent.parent / "examples"
TODAY = date(2026, 11, 25)
CLIENT = "2021000001"
SETTINGS = ValidationSettings(
    today=TODAY,
    clients=frozenset({CLIENT}),
    postal_directory={"11122": "Stockholm"},
)
NAMESPACE = "{urn:inkasso-gateway:arendefil:1}"

#: Severity per code as the rule catalogue (shared/docs/rules.md) gives it; "E/V" is both.
CATALOGUE_SEVERITY = {
    "F01": "E", "F02": "E", "F03": "E", "F04": "E", "F05": "E", "F06": "E", "F07": "V", "F08": "E",
    "F09": "E", "F10": "E", "F11": "E", "F12": "E",
    "S01": "E", "S02": "E", "S03": "E", "S04": "E",
    "A01": "E", "A02": "E", "A03": "E", "A04": "E", "A05": "E", "A06": "E",
    "M01": "E", "M02": "E", "M03": "E", "M04": "E", "M05": "E", "M06": "V", "M07": "E", "M08": "V",
    "M09": "E", "M10": "V", "M11": "V", "M12": "E", "M13": "V", "M14": "E", "M15": "V", "M16": "V",
    "R01": "E", "R02": "E/V", "R03": "E", "R04": "V", "R05": "E", "R06": "E", "R07": "E", "R08": "E",
    "R09": "V", "R10": "E", "R11": "V", "R12": "E",
}  # fmt: skip
#: Codes only earlier files can show: tested with a fake history in test_history_rules.py; and
#: F08 (quarantine), which only the daemon gives, after a file failed it several times.
NEEDS_HISTORY = frozenset({"F04", "F07", "A05", "F08"})
#: For a code that is error or warning ("E/V"), which one each sample shows.
SAMPLE_SEVERITY = {
    "R02-fordranavser-tom.xml": Severity.ERROR,
    "R02-fordranavser-allman.xml": Severity.WARNING,
}
#: Findings a sample cannot avoid besides its own code.
UNAVOIDABLE = {
    # An invoice dated after today cannot have fallen due before today.
    "R03-fakturadatum-i-framtiden.xml": {"R05"},
    # An Identitet too long for the schema is not a personnummer either.
    "S01-identitet-for-lang.xml": {"M02"},
}
SAMPLE_NAME = re.compile(r"^(?P<code>[FSAMR]\d\d)-[a-z0-9]+(?:-[a-z0-9]+)*\.(?:xml|zip|json|csv)$")
#: The CSV samples' columns (an Agresso-like open-items export, Windows-1252).
CSV_SETTINGS = dataclasses.replace(SETTINGS, csv_mapping=load_mapping(DATA / "csv-mapping.toml"))


def _samples(kind: str) -> list[Path]:
    return sorted(p for p in (DATA / kind).iterdir() if p.suffix in (".xml", ".zip", ".json", ".csv"))


VALID = _samples("valid")
INVALID = _samples("invalid")
ALL = VALID + INVALID


def _code(path: Path) -> str:
    return path.name.split("-", 1)[0]


@functools.cache
def _report(path: Path) -> FileReport:
    return validate_file(path, CSV_SETTINGS if path.suffix == ".csv" else SETTINGS)


def _all_findings(report: FileReport) -> list[Finding]:
    return [*report.verdict.findings, *(f for case in report.verdict.cases for f in case.findings)]


def _show(report: FileReport) -> str:
    """Every finding of a report, one a line, for assertion messages."""
    lines = [f"file status {report.verdict.status.value}"]
    lines += [f"  file {f.code} {f.severity.value} {f.path}: {f.message_en}" for f in report.verdict.findings]
    for case in report.verdict.cases:
        lines.append(f"  case {case.reference} {case.status.value}")
        lines += [f"    {f.code} {f.severity.value} {f.path}: {f.message_en}" for f in case.findings]
    return "\n".join(lines)


def _case_file_text(path: Path) -> str:
    """The case file's text (from a package: its one .xml member), however broken its encoding."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            data = b"".join(archive.read(n) for n in archive.namelist() if n.endswith(".xml"))
    else:
        data = path.read_bytes()
    return data.decode("utf-8", errors="replace")


def _person_numbers(path: Path) -> list[str]:
    """Every Identitet and Kundnummer in a sample that is written like a personal identity number."""
    text = _case_file_text(path)
    values = re.findall(r"<(?:Identitet|Kundnummer)>([^<]*)</", text)
    found = []
    for value in values:
        digits = "".join(c for c in value if c.isdigit())
        # An organisationsnummer has digits 3-4 of its ten at least 20 (or the prefix 16).
        if len(digits) in (10, 12) and int(digits[-8:-6]) < 20 and not digits.startswith("16"):
            found.append(value)
    return found


# -- valid samples -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_sample_is_accepted_without_any_finding(path: Path) -> None:
    report = _report(path)
    verdict = report.verdict
    assert verdict.status is FileStatus.ACCEPTED, _show(report)
    assert _all_findings(report) == [], _show(report)
    assert verdict.cases, "a valid sample holds at least one case"
    assert all(case.status is CaseStatus.ACCEPTED for case in verdict.cases), _show(report)
    assert verdict.accepted_capital == verdict.totals.capital_sum


def test_valid_package_holds_one_case_file_and_the_attachments_it_names() -> None:
    package = DATA / "valid" / "bilagor-i-paket.zip"
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
        case_files = [n for n in names if n.endswith(".xml")]
        assert len(case_files) == 1
        assert all("/" not in n for n in names)
        root = etree.fromstring(archive.read(case_files[0]))
        attachments = root.findall(f".//{NAMESPACE}Bilaga")
        assert {a.get("filnamn") for a in attachments} == set(names) - set(case_files)
        for attachment in attachments:
            content = archive.read(attachment.get("filnamn"))
            assert attachment.get("sha256") == hashlib.sha256(content).hexdigest()
            assert content.startswith((b"%PDF-", b"\x89PNG\r\n\x1a\n"))


# -- invalid samples -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_sample_is_named_after_a_registered_code(path: Path) -> None:
    match = SAMPLE_NAME.match(path.name)
    assert match, f"{path.name}: name it <CODE>-<short-description>.xml|zip, lower case ASCII"
    assert match["code"] in {r.code for r in all_rules()}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_sample_shows_its_code(path: Path) -> None:
    report = _report(path)
    assert _code(path) in {f.code for f in _all_findings(report)}, _show(report)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_sample_has_the_catalogue_severity_and_consequence(path: Path) -> None:
    code = _code(path)
    report = _report(path)
    verdict = report.verdict
    expected = SAMPLE_SEVERITY.get(path.name)
    if expected is None:
        assert CATALOGUE_SEVERITY[code] in ("E", "V"), f"say in SAMPLE_SEVERITY what {path.name} shows"
        expected = Severity.ERROR if CATALOGUE_SEVERITY[code] == "E" else Severity.WARNING
    ours = [f for f in _all_findings(report) if f.code == code]
    assert ours and all(f.severity is expected for f in ours), _show(report)

    if code.startswith("F"):
        assert [f for f in verdict.findings if f.code == code], "an F-code is a file-level finding"
        assert verdict.status is FileStatus.REJECTED, _show(report)
        assert all(case.status is CaseStatus.REJECTED for case in verdict.cases), _show(report)
        return
    holding = [case for case in verdict.cases if any(f.code == code for f in case.findings)]
    assert holding, f"{code} is a case-level finding\n{_show(report)}"
    if expected is Severity.ERROR:
        assert all(case.status is CaseStatus.REJECTED for case in holding), _show(report)
        assert verdict.status in (FileStatus.REJECTED, FileStatus.PARTIALLY_ACCEPTED), _show(report)
    else:
        assert all(case.status is CaseStatus.ACCEPTED for case in holding), _show(report)
        assert verdict.status is FileStatus.ACCEPTED, _show(report)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_sample_shows_only_its_code(path: Path) -> None:
    report = _report(path)
    allowed = {_code(path)} | UNAVOIDABLE.get(path.name, set())
    assert {f.code for f in _all_findings(report)} <= allowed, _show(report)


def test_cases_around_a_rejected_case_are_still_accepted() -> None:
    """A case-level error rejects that case only (A04 and R08 across cases of one file)."""
    for name in ("A04-arendereferens-upprepad.xml", "R08-fakturanummer-i-annat-arende.xml"):
        verdict = _report(DATA / "invalid" / name).verdict
        assert [case.status for case in verdict.cases] == [CaseStatus.ACCEPTED, CaseStatus.REJECTED]
        assert verdict.status is FileStatus.PARTIALLY_ACCEPTED


def test_every_code_has_an_invalid_sample() -> None:
    registered = {r.code for r in all_rules()}
    assert registered >= NEEDS_HISTORY
    covered = {_code(p) for p in INVALID}
    missing = sorted(registered - NEEDS_HISTORY - covered)
    assert not missing, f"add tests/data/invalid/<CODE>-<description>.xml for {missing}"


def test_registry_severities_match_the_catalogue() -> None:
    assert {r.code: r.severity for r in all_rules()} == CATALOGUE_SEVERITY


# -- every sample --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_finding_is_reported_twice(path: Path) -> None:
    report = _report(path)
    findings = _all_findings(report)
    assert len(set(findings)) == len(findings), _show(report)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_messages_never_show_a_personal_identity_number_in_full(path: Path) -> None:
    report = _report(path)
    for number in _person_numbers(path):
        digits = "".join(c for c in number if c.isdigit())
        last_four = digits[-4:]
        for finding in _all_findings(report):
            for message in (finding.message_sv, finding.message_en):
                # Digit groups standing on their own (a SHA-256 in hex is not one).
                for group in re.findall(r"(?<![0-9A-Za-z])\d+(?![0-9A-Za-z])", message):
                    assert not group.endswith(last_four) or len(group) not in (4, 10, 12), (
                        f"{finding.code} shows {number} unmasked: {message}"
                    )


def test_a_masked_number_shows_its_birth_date_only() -> None:
    report = _report(DATA / "invalid" / "M02-fel-kontrollsiffra.xml")
    (finding,) = _all_findings(report)
    assert "850315-XXXX" in finding.message_sv
    assert "850315-XXXX" in finding.message_en


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_sample_identities_come_from_the_test_series(path: Path) -> None:
    """Birth numbers 980-999 are never assigned to real people: keep every sample to them."""
    for number in _person_numbers(path):
        if is_placeholder(number):
            continue
        digits = "".join(c for c in number if c.isdigit())
        assert 980 <= int(digits[-4:-1]) <= 999, f"{path.name}: {number} is not from the test series"


def test_schema_message_names_the_allowed_values() -> None:
    """An enumeration error tells the operator what to write instead (Typ: Privat or Foretag)."""
    (finding,) = _all_findings(_report(DATA / "invalid" / "S01-okand-motpartstyp.xml"))
    for message in (finding.message_sv, finding.message_en):
        assert "Privat" in message and "Foretag" in message, message


def test_schema_message_names_the_length_and_the_limit() -> None:
    """A maxLength error tells the operator how long the value is and how long it may be (22, 20)."""
    report = _report(DATA / "invalid" / "S01-identitet-for-lang.xml")
    finding = next(f for f in _all_findings(report) if f.code == "S01")
    for message in (finding.message_sv, finding.message_en):
        assert "22" in message and "20" in message, message


# -- the examples a new user drops into an inbox -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "rejected"),
    [
        ("lst-exempel-2026-11-24.xml", FileStatus.ACCEPTED, {}),
        ("lst-exempel-agresso-2026-11-25.xml", FileStatus.ACCEPTED, {}),
        (
            "with-errors/lst-exempel-2026-11-25-blandad.xml",
            FileStatus.PARTIALLY_ACCEPTED,
            {"LST-2026-0431": {"M02"}, "LST-2026-0436": {"A01"}},
        ),
    ],
)
def test_examples_validate_as_their_comments_say(
    name: str, status: FileStatus, rejected: dict[str, set[str]]
) -> None:
    report = _report(EXAMPLES / name)
    verdict = report.verdict
    assert verdict.status is status, _show(report)
    assert verdict.findings == []
    assert {
        case.reference: {f.code for f in case.findings}
        for case in verdict.cases
        if case.status is CaseStatus.REJECTED
    } == rejected, _show(report)
    for case in verdict.cases:
        if case.status is CaseStatus.ACCEPTED:
            assert all(f.severity is Severity.WARNING for f in case.findings)


def test_a_syntax_error_is_told_without_the_parser_s_internals() -> None:
    (finding,) = _report(DATA / "invalid" / "F01-inte-valformad.xml").verdict.findings
    assert finding.message_en.endswith("Person, line 25, column 16"), finding.message_en
    assert "<string>" not in finding.message_sv + finding.message_en
