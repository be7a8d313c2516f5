"""No personal identity number in full in any output: the free-text masker and `validate`'s output.

Every identity here is a test number, valid by construction: a birth date, a birth number in
980-999 (never given to real people in these tests) and the Luhn check digit.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from gateway.cli import EXIT_OK, EXIT_REJECTED, main
from gateway.domain.identity import luhn_check_digit, luhn_valid, mask_identities
from tests.conftest import EXAMPLE

AS_OF = ["--as-of", "2026-11-25"]


def _test_number(yymmdd: str, birth_number: int) -> tuple[str, str]:
    """(YYMMDD, last four) of a Luhn-valid test identity."""
    nine = f"{yymmdd}{birth_number:03d}"
    return yymmdd, nine[6:] + luhn_check_digit(nine)


#: Born 1962-03-04: 620304-984 + check digit.
BIRTH, LAST_FOUR = _test_number("620304", 984)
TEN = BIRTH + LAST_FOUR
#: A samordningsnummer (day + 60) and a person born 1921 (written with "+" from age 100).
COORD_BIRTH, COORD_LAST_FOUR = _test_number("620364", 991)
OLD_BIRTH, OLD_LAST_FOUR = _test_number("210510", 987)
#: The sample client's organisationsnummer, and a digest that holds a birth-date-shaped run.
ORGNR = "202100-0001"
SHA256 = hashlib.sha256(b"inkasso-gateway privacy test").hexdigest()
DIGEST_WITH_DIGITS = ("ab" + TEN + "cd" * 26)[:64]

SEPARATORS = {
    "none": "",
    "hyphen-minus": "-",
    "plus (100 years)": "+",
    "hyphen U+2010": "\u2010",
    "non-breaking hyphen U+2011": "\u2011",
    "figure dash U+2012": "\u2012",
    "en dash U+2013": "\u2013",
    "em dash U+2014": "\u2014",
    "minus sign U+2212": "\u2212",
    "dot": ".",
    "space": " ",
    "no-break space U+00A0": "\u00a0",
    "narrow no-break space U+202F": "\u202f",
    "slash": "/",
    "underscore": "_",
}

#: (label, text, YYMMDD, last four): each must come out with YYMMDD-XXXX and without the four.
MASKED = [
    *(
        (f"10 digits, {label}", f"{BIRTH}{sep}{LAST_FOUR}", BIRTH, LAST_FOUR)
        for label, sep in SEPARATORS.items()
    ),
    *(
        (f"12 digits, {label}", f"19{BIRTH}{sep}{LAST_FOUR}", BIRTH, LAST_FOUR)
        for label, sep in SEPARATORS.items()
    ),
    ("in a sentence", f"Gäldenär {BIRTH}\u2013{LAST_FOUR} har betalat.", BIRTH, LAST_FOUR),
    ("after letters", f"abc{TEN}", BIRTH, LAST_FOUR),
    ("after non-hex letters", f"kund{TEN}", BIRTH, LAST_FOUR),
    ("after letters, 12 digits", f"P19{TEN}", BIRTH, LAST_FOUR),
    ("before letters", f"{TEN}abc", BIRTH, LAST_FOUR),
    ("between letters", f"abc{BIRTH}-{LAST_FOUR}def", BIRTH, LAST_FOUR),
    ("before and after hex letters, 12 digits", f"ab19{TEN}cd", BIRTH, LAST_FOUR),
    ("in a file name", f"kund_{BIRTH}_{LAST_FOUR}.xml", BIRTH, LAST_FOUR),
    ("in a receipt name", f"kund_{TEN}.xml.3033a297494b.kvittens.xml", BIRTH, LAST_FOUR),
    ("in a path", f"/srv/inbox/{BIRTH}/{LAST_FOUR}/fil.xml", BIRTH, LAST_FOUR),
    ("quoted", f"'{BIRTH}.{LAST_FOUR}'", BIRTH, LAST_FOUR),
    ("in parentheses", f"({BIRTH}\u2212{LAST_FOUR})", BIRTH, LAST_FOUR),
    ("after a digest prefix", f"sha256 3033a297494b {BIRTH}-{LAST_FOUR}", BIRTH, LAST_FOUR),
    ("in JSON", f'{{"ref": "19{BIRTH}-{LAST_FOUR}"}}', BIRTH, LAST_FOUR),
    ("samordningsnummer", f"{COORD_BIRTH}\u2013{COORD_LAST_FOUR}", COORD_BIRTH, COORD_LAST_FOUR),
    ("samordningsnummer after letters", f"abc{COORD_BIRTH}{COORD_LAST_FOUR}", COORD_BIRTH, COORD_LAST_FOUR),
    ("100 years, plus", f"{OLD_BIRTH}+{OLD_LAST_FOUR}", OLD_BIRTH, OLD_LAST_FOUR),
    ("100 years, 12 digits", f"19{OLD_BIRTH}{OLD_LAST_FOUR}", OLD_BIRTH, OLD_LAST_FOUR),
]

#: Text that must come out exactly as it went in.
UNCHANGED = [
    ("a SHA-256", f"sha256 {SHA256}"),
    ("a SHA-256 holding a 10-digit run", f"sha256 {DIGEST_WITH_DIGITS}"),
    ("a 12-hex prefix", "sha256 3033a297494b"),
    ("a 12-hex prefix of the digest", f"(sha256 {SHA256[:12]})"),
    ("a hex run with a non-date digit run", "sha256 e4574269812c0a1b2c"),
    ("an organisationsnummer", f"klient {ORGNR}"),
    ("an organisationsnummer, no separator", "klient 2021000001"),
    ("an organisationsnummer, en dash", "klient 202100\u20130001"),
    ("an organisationsnummer with 16", "klient 16202100-0001"),
    ("a 16-digit invoice number", "faktura 1234567890123456"),
    ("an amount", "belopp 123456789012345"),
    ("an amount with decimals", "belopp 37850.50 SEK"),
    ("a 20-digit number ending in an identity", f"OCR 1234567890{TEN}"),
    ("a 20-digit number starting with an identity", f"OCR {TEN}1234567890"),
    ("an identity inside a 20-digit number", f"OCR 12345{TEN}67890"),
    ("11 digits", f"tel {TEN}1"),
    ("a log timestamp and a diarienummer", "2026-11-25 13:31:12,754 Dnr 501-4711-2026"),
    ("a case reference", "LST-2026-0412"),
    ("short numbers", "ärende 3 av 3, rad 14"),
]


def test_the_test_numbers_are_valid_by_construction() -> None:
    for ten in (TEN, COORD_BIRTH + COORD_LAST_FOUR, OLD_BIRTH + OLD_LAST_FOUR, ORGNR.replace("-", "")):
        assert luhn_valid(ten), ten
    assert luhn_check_digit("202100000") == "1"
    assert 980 <= int(LAST_FOUR[:3]) <= 999
    assert TEN in DIGEST_WITH_DIGITS and len(DIGEST_WITH_DIGITS) == 64


@pytest.mark.parametrize(("text", "birth", "last_four"), [c[1:] for c in MASKED], ids=[c[0] for c in MASKED])
def test_personal_numbers_lose_their_last_four_digits(text: str, birth: str, last_four: str) -> None:
    masked = mask_identities(text)
    assert f"{birth}-XXXX" in masked
    assert last_four not in masked
    assert mask_identities(masked) == masked  # masking twice changes nothing more


@pytest.mark.parametrize("text", [c[1] for c in UNCHANGED], ids=[c[0] for c in UNCHANGED])
def test_digests_organisation_numbers_and_long_numbers_stay(text: str) -> None:
    assert mask_identities(text) == text


def test_only_the_identity_is_replaced() -> None:
    assert mask_identities(f"abc{TEN} och {TEN}abc") == f"abc{BIRTH}-XXXX och {BIRTH}-XXXXabc"
    assert mask_identities(f"{BIRTH}\u00a0{LAST_FOUR}, {ORGNR}") == f"{BIRTH}-XXXX, {ORGNR}"


# --------------------------------------------------------------------------------------------
# inkasso-gateway validate


@pytest.fixture(autouse=True)
def _away_from_the_repository_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("INKASSO_GATEWAY_CONFIG", raising=False)


def _case_file(tmp_path: Path, replacements: dict[str, str]) -> Path:
    """The example with a personnummer as the first ArendeReferens, under a personnummer name."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in {"LST-2026-0412": f"19{BIRTH}-{LAST_FOUR}", **replacements}.items():
        assert old in text
        text = text.replace(old, new)
    target = tmp_path / f"kund_{BIRTH}\u2013{LAST_FOUR}.xml"
    target.write_text(text, encoding="utf-8")
    return target


def _assert_no_full_number(out: str) -> None:
    assert TEN not in out
    assert LAST_FOUR not in out
    assert re.search(rf"{BIRTH}\D?{LAST_FOUR}", out) is None


def test_validate_json_masks_file_name_and_case_reference(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    case_file = _case_file(tmp_path, {})
    code = main(["validate", str(case_file), "--format", "json", *AS_OF])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    _assert_no_full_number(out)
    verdict = json.loads(out)
    assert verdict["file"].endswith(f"kund_{BIRTH}-XXXX.xml")
    assert [case["ref"] for case in verdict["cases"]] == [f"{BIRTH}-XXXX", "LST-2026-0419", "LST-2026-0425"]


def test_validate_text_masks_file_name_and_case_reference(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A finding in the first case, so that the text output names it.
    case_file = _case_file(
        tmp_path, {"<Identitet>850315-9819</Identitet>": "<Identitet>850231-9819</Identitet>"}
    )
    code = main(["validate", str(case_file), *AS_OF])
    out = capsys.readouterr().out
    assert code == EXIT_REJECTED
    _assert_no_full_number(out)
    assert f"kund_{BIRTH}-XXXX.xml: " in out
    assert f"Case / ärende {BIRTH}-XXXX (#1, line 14)" in out
