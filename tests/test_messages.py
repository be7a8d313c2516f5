"""The wording of findings: Swedish without the parser's English, English as helpful as Swedish.

Schema (S01, F03) and syntax (F01) findings start as libxml2's English sentences. The ERP operator
who fixes the export reads one of the two languages, so each must say the same: which element, what
the schema expects, the value found, the line. These tests run every hostile and invalid sample, and
a set of typical export mistakes made from the example file, and check the wording of what comes out.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from gateway.domain.findings import Finding
from gateway.formats import schema_messages
from gateway.service.validation import FileReport, ValidationSettings, validate_file

DATA = Path(__file__).parent / "data"
EXAMPLE = Path(__file__).parent.parent / "examples" / "lst-exempel-2026-11-24.xml"
SETTINGS = ValidationSettings(today=date(2026, 11, 25))
SAMPLES = sorted(
    [p for p in (DATA / "invalid").iterdir() if p.suffix in (".xml", ".zip")]
    + [p for p in (DATA / "hostile").iterdir() if p.suffix == ".xml"]
)
NAMESPACE = "{urn:inkasso-gateway:arendefil:1}"

#: Words of libxml2's (and Python's) English that never occur in a Swedish sentence.
ENGLISH_WORDS = frozenset(
    {
        "the", "is", "are", "not", "of", "and", "or", "with", "this", "that", "than", "has", "which",
        "only", "must", "should", "expected", "expecting", "tag", "invalid", "value", "allowed",
        "missing", "found", "line", "column", "empty", "document", "content", "type", "attribute",
        "mismatch", "premature", "end", "defined", "entity", "character", "error", "name", "file",
        "encoding", "required", "length", "pattern", "facet", "element-only",
    }
)  # fmt: skip
#: libxml2's own phrases, checked as they are written (case-insensitively).
LIBXML2_PHRASES = (
    "opening and ending tag mismatch",
    "starttag:",
    "endtag:",
    "document is empty",
    "premature end of data",
    "not well-formed",
    "xmlparse",
    "entityref",
    "attvalue",
    "pcdata",
    "extra content",
    "is not a valid value",
    "is not accepted by the pattern",
    "is not an element of the set",
    "this element is not expected",
    "missing child element",
    "[facet",
    "invalid bytes",
    "parser message",
)
#: The English may be somewhat shorter (it is a terser language), never much shorter.
MIN_ENGLISH_RATIO = 0.6


def _findings(report: FileReport) -> list[Finding]:
    return [*report.verdict.findings, *(f for case in report.verdict.cases for f in case.findings)]


def _show(findings: list[Finding]) -> str:
    return "\n".join(f"{f.code} {f.path}:\n  sv: {f.message_sv}\n  en: {f.message_en}" for f in findings)


def _english_in_swedish(message: str) -> list[str]:
    """The English words and libxml2 phrases in a Swedish message, values from the file set aside."""
    lowered = message.lower()
    found = [phrase for phrase in LIBXML2_PHRASES if phrase in lowered]
    # Values quoted from the file ('Exempelsson & Son') and XML written out (<?xml version="1.0"?>,
    # encoding="UTF-8") may be in any language.
    unquoted = re.sub(r"<[^>]*>|[\w:]+=\"[^\"]*\"|'[^']*'", " ", message)
    found += [word for word in re.findall(r"[A-Za-z][A-Za-z-]*", unquoted) if word.lower() in ENGLISH_WORDS]
    return found


def _facts(message: str) -> set[str]:
    """What a message says that does not depend on the language: quoted values and numbers."""
    return set(re.findall(r"'[^']*'", message)) | set(re.findall(r"\d+", message))


def _assert_well_worded(finding: Finding) -> None:
    english = _english_in_swedish(finding.message_sv)
    assert not english, f"{finding.code}: English {english} in the Swedish message: {finding.message_sv}"
    assert len(finding.message_en) >= MIN_ENGLISH_RATIO * len(finding.message_sv), (
        f"{finding.code}: the English says less than the Swedish:\n"
        f"  sv: {finding.message_sv}\n  en: {finding.message_en}"
    )
    missing = _facts(finding.message_sv) - _facts(finding.message_en)
    assert not missing, f"{finding.code}: the English lacks {missing}:\n{_show([finding])}"


# -- every sample --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_message_of_every_sample_is_well_worded(path: Path) -> None:
    for finding in _findings(validate_file(path, SETTINGS)):
        _assert_well_worded(finding)


def test_the_check_sees_what_the_tester_reported() -> None:
    """The check itself: the messages the tester saw before the fix would fail it."""
    assert _english_in_swedish(
        "Filen är inte välformad XML (rad 25): Opening and ending tag mismatch: Efternamn line 24 and Person"
    )
    assert _english_in_swedish("Filen är inte välformad XML (rad 1): StartTag: invalid element name")
    assert _english_in_swedish("Schemafel i fältet Ranta: Character content is not allowed")
    assert not _english_in_swedish("Värdet 'Kommun' i fältet Motpart/Typ är inte tillåtet.")


# -- FilId: the characters and the length ----------------------------------------------------------


@pytest.mark.parametrize("file_id", ["LST EXEMPEL/2026", "L" * 65], ids=["characters", "65-characters"])
def test_bad_file_id_names_the_allowed_characters_and_the_length(tmp_path: Path, file_id: str) -> None:
    path = tmp_path / "filid.xml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8").replace("LST-EXEMPEL-20261124-01", file_id), "utf-8")
    findings = [f for f in validate_file(path, SETTINGS).verdict.findings if f.path.endswith("/FilId")]
    assert findings, "a bad FilId gives an F03"
    for finding in findings:
        assert finding.code == "F03"
        _assert_well_worded(finding)
        for message in (finding.message_sv, finding.message_en):
            for part in ("A-Z", "a-z", "0-9", ". _ : -", "64"):
                assert part in message, f"{part!r} missing from: {message}"
            assert "FilId" in message, message
    if len(file_id) > 64:
        assert any("65" in f.message_sv and "65" in f.message_en for f in findings), _show(findings)
    else:
        (finding,) = findings
        assert "mellanslag" in finding.message_sv and "'/'" in finding.message_sv, finding.message_sv
        assert "space" in finding.message_en and "'/'" in finding.message_en, finding.message_en


# -- typical export mistakes -----------------------------------------------------------------------

#: (replace, with, words both messages must hold besides the element's name)
SCHEMA_MISTAKES = [
    (
        "<Skapad>2026-11-24T22:15:00+01:00</Skapad>",
        "<Skapad>2026-11-24 22:15</Skapad>",
        ["'2026-11-24 22:15'"],
    ),
    ("<Lopnummer>1</Lopnummer>", "<Lopnummer>0</Lopnummer>", ["'0'", "1"]),
    (
        "<Organisationsnummer>202100-0001</Organisationsnummer>",
        "<Organisationsnummer>2021-0001</Organisationsnummer>",
        ["'2021-0001'", "NNNNNN-NNNN"],
    ),
    ("<Typ>Privat</Typ>", "<Typ>Kommun</Typ>", ["'Kommun'", "'Privat'", "'Foretag'", "Motpart/Typ"]),
    ("<Identitet>850315-9819</Identitet>", "<Identitet>19850315-9819-12345678</Identitet>", ["22", "20"]),
    ("<Fakturadatum>2026-08-12</Fakturadatum>", "<Fakturadatum>2026-02-30</Fakturadatum>", ["'2026-02-30'"]),
    (
        "<Fakturadatum>2026-08-12</Fakturadatum>",
        "<Fakturadatum>2026-08-12Z</Fakturadatum>",
        ["'2026-08-12Z'"],
    ),
    ('valuta="SEK">4800.00<', 'valuta="SEK">4800,00<', ["'4800,00'", "4800.00"]),
    ('valuta="SEK">4800.00<', 'valuta="sek">4800.00<', ["'sek'", "valuta", "SEK", "4217"]),
    ('valuta="SEK">4800.00<', 'valuta="SEK">1234567890123456789<', ["'1234567890123456789'", "18"]),
    ('<Ranta typ="rantelagen"/>', '<Ranta typ="fast"/>', ["'fast'", "'rantelagen'", "'avtalad'"]),
    ('<Ranta typ="rantelagen"/>', "<Ranta/>", ["typ"]),
    ('<Ranta typ="rantelagen"/>', '<Ranta typ="rantelagen">3 %</Ranta>', ["Ranta"]),
    ("<Efternamn>Exempelsson</Efternamn>", "", ["Efternamn"]),
    ("<Postnummer>11122</Postnummer>", "", ["Postnummer"]),
    ("<Postort>Stockholm</Postort>", "<Postort>Stockholm</Postort><Land>se</Land>", ["'se'", "SE"]),
    ("<Kundnummer>K-10442</Kundnummer>", "<Kundnummer>K-10442</Kundnummer>text", ["Arende"]),
]


@pytest.mark.parametrize(
    ("old", "new", "facts"), SCHEMA_MISTAKES, ids=lambda v: v if isinstance(v, str) else ""
)
def test_schema_message_says_the_same_in_both_languages(
    tmp_path: Path, old: str, new: str, facts: list[str]
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "mistake.xml"
    path.write_text(text.replace(old, new, 1), "utf-8")
    findings = [f for f in _findings(validate_file(path, SETTINGS)) if f.code in ("S01", "F03")]
    assert findings, "the mistake gives a schema finding"
    for finding in findings:
        _assert_well_worded(finding)
        # A schema message this module knows gives the same facts, no more, in both languages.
        assert _facts(finding.message_sv) == _facts(finding.message_en), _show([finding])
        element = finding.path.rsplit("/", 1)[-1].lstrip("@")
        element = re.sub(r"\[\d+\]$", "", element)
        for message in (finding.message_sv, finding.message_en):
            assert element in message, f"{element} missing from: {message}"
            for fact in facts:
                assert fact in message, f"{fact} missing from: {message}"


#: (replace, with, the line of the F01 finding)
SYNTAX_MISTAKES = [
    ("<Efternamn>Exempelsson</Efternamn>", "<Efternamn>Exempelsson</Efternam>", 23),
    ("<Efternamn>Exempelsson</Efternamn>", "<Efternamn>Exempelsson", 24),
    ("<Efternamn>Exempelsson</Efternamn>", "<Efternamn>a < b</Efternamn>", 23),
    ("<Efternamn>Exempelsson</Efternamn>", "<Efternamn>Exempelsson & Son</Efternamn>", 23),
    ("<Efternamn>Exempelsson</Efternamn>", "<Efternamn>Exempelsson &nbsp;</Efternamn>", 23),
    ("<Efternamn>Exempelsson</Efternamn>", "<Efternamn>&#1;</Efternamn>", 23),
    ('<Ranta typ="rantelagen"/>', "<Ranta typ=rantelagen/>", 39),
    ('<Ranta typ="rantelagen"/>', '<Ranta typ="rantelagen" typ="avtalad"/>', 39),
    ('<Ranta typ="rantelagen"/>', '<x:Ranta typ="rantelagen"/>', 39),
    ('<Ranta typ="rantelagen"/>', "<!-- a -- b -->", 39),
    ('<Ranta typ="rantelagen"/>', "<!-- never closed ", 110),
    ("</Arendefil>", "</Arendefil>\n<Extra/>", 110),
    ("</Arendefil>", "", 110),
    ('<?xml version="1.0" encoding="UTF-8"?>', '\n<?xml version="1.0" encoding="UTF-8"?>', 2),
]


@pytest.mark.parametrize(
    ("old", "new", "line"), SYNTAX_MISTAKES, ids=lambda v: v if isinstance(v, str) else ""
)
def test_syntax_error_is_told_in_swedish_with_its_line(tmp_path: Path, old: str, new: str, line: int) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "broken.xml"
    path.write_text(text.replace(old, new, 1), "utf-8")
    (finding,) = validate_file(path, SETTINGS).verdict.findings
    assert finding.code == "F01"
    assert finding.line == line, _show([finding])
    _assert_well_worded(finding)
    assert f"(rad {line}" in finding.message_sv, finding.message_sv
    assert f"(line {line}" in finding.message_en, finding.message_en
    # The operator learns what is wrong, not only that something is.
    assert ": " in finding.message_sv, finding.message_sv
    # The English keeps the parser's own words for whoever searches for them.
    assert "Parser message: " in finding.message_en, finding.message_en


@pytest.mark.parametrize(
    "message",
    [
        "Document is empty, line 1, column 1",
        "Premature end of data in tag Arendefil line 3, line 110, column 1",
        "Opening and ending tag mismatch: Efternamn line 24 and Person, line 25, column 16",
        "StartTag: invalid element name, line 23, column 10",
        "Some error libxml2 may add one day, line 7, column 3",
    ],
)
def test_libxml2_syntax_message_is_translated(message: str) -> None:
    swedish, english = schema_messages.syntax_error(message, 7)
    assert not _english_in_swedish(swedish), swedish
    assert "rad 7" in swedish and "line 7" in english
    assert english.endswith(message), english


def test_unknown_schema_error_gets_a_swedish_sentence() -> None:
    swedish, english = schema_messages.translate(
        f"Element '{NAMESPACE}Kapitalbelopp': Something libxml2 may say one day about '12'.",
        "/Arendefil/Arende[1]/Fordran[1]/Kapitalbelopp",
    )
    assert not _english_in_swedish(swedish), swedish
    assert "Fordran/Kapitalbelopp" in swedish and "Fordran/Kapitalbelopp" in english
    assert "'12'" in swedish and "Something libxml2 may say one day" in english
