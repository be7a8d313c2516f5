"""Swedish identity numbers: personnummer, samordningsnummer and organisationsnummer.

Pure functions in the manner of python-stdnum (``compact``, ``parse``, ``format``), with "today"
passed in because the century of a 10-digit personnummer depends on it.

>>> today = date(2026, 11, 25)
>>> parse_identity("19121212-1212", today=today).identity.normalized
'191212121212'
>>> parse_identity("121212+1212", today=today).identity.formatted(today=today)
'121212+1212'
>>> parse_identity("701063-2391", today=today).identity.kind
<IdentityKind.COORDINATION_NUMBER: 'samordningsnummer'>
>>> parse_identity("202100-6255", today=today).identity.formatted(today=today)
'202100-6255'
>>> parse_identity("850231-9816", today=today).problem
<IdentityProblem.DATE: 'date'>
>>> mask_identity("19850101-1234")
'850101-XXXX'
"""

from __future__ import annotations

import enum
import re
from datetime import date
from typing import NamedTuple

#: Digits 3-4 of an organisationsnummer are always at least 20, so it is never a valid date.
ORGNR_MIN_MIDDLE = 20
#: A samordningsnummer adds 60 to the day of birth.
COORDINATION_DAY_OFFSET = 60
#: Skatteverket writes "+" instead of "-" from the year the person turns 100.
CENTENARIAN_AGE = 100

_SHAPE = re.compile(r"^(\d{6}|\d{8})([-+]?)(\d{4})$", re.ASCII)
_ASCII_DIGITS = frozenset("0123456789")
_DOUBLED_DIGIT_SUM = str.maketrans("0123456789", "0246813579")


class IdentityKind(enum.Enum):
    PERSONAL_NUMBER = "personnummer"
    COORDINATION_NUMBER = "samordningsnummer"
    ORGANISATION_NUMBER = "organisationsnummer"


class IdentityProblem(enum.Enum):
    """Why a value is not a valid identity number; each maps to a message in the rules."""

    FORMAT = "format"  # not 10 or 12 digits with an optional separator
    DATE = "date"  # no real date of birth (or a date in the future)
    CHECK_DIGIT = "check-digit"  # Luhn check digit wrong
    PLUS_UNDER_100 = "plus-under-100"  # "+" used for someone younger than 100
    ORGNR_MIDDLE = "orgnr-middle"  # organisationsnummer with digits 3-4 below 20
    ORGNR_PREFIX = "orgnr-prefix"  # 12-digit organisationsnummer without the 16 prefix


class Identity(NamedTuple):
    """A valid identity number, normalised to 12 digits."""

    kind: IdentityKind
    normalized: str  # 12 digits: century + YYMMDDNNNN, or "16" + organisationsnummer
    birth_date: date | None  # None for organisations and for samordningsnummer with day 00

    @property
    def is_person(self) -> bool:
        return self.kind is not IdentityKind.ORGANISATION_NUMBER

    @property
    def group_digit(self) -> int | None:
        """The organisationsnummer's first digit (5 aktiebolag, 9 handelsbolag, ...)."""
        return int(self.normalized[2]) if self.kind is IdentityKind.ORGANISATION_NUMBER else None

    def formatted(self, *, today: date) -> str:
        """Render as the e-service wants it: ÅÅMMDD-NNNN (+ from 100 years) or NNNNNN-NNNN."""
        ten = self.normalized[2:]
        separator = "-"
        if self.is_person and today.year - int(self.normalized[:4]) >= CENTENARIAN_AGE:
            separator = "+"
        return f"{ten[:6]}{separator}{ten[6:]}"

    def masked(self) -> str:
        return mask_identity(self.normalized)


class IdentityResult(NamedTuple):
    """The outcome of parsing: an Identity, or the problem with the kind it looked like."""

    identity: Identity | None
    problem: IdentityProblem | None
    looks_like: IdentityKind | None


def compact(value: str) -> str:
    """Remove spaces around the value; separators stay, as they carry meaning (+)."""
    value = value.strip()
    return value.replace(" ", "") if " " in value else value


def luhn_valid(digits: str) -> bool:
    """Luhn (mod 10) check over a string of digits, check digit last.

    >>> luhn_valid("8503159819"), luhn_valid("8503159818"), luhn_valid("8503159891")
    (True, False, False)
    """
    # Every second digit from the right is doubled and its digit sum taken: a translation table
    # does both at once (2 -> 4, 7 -> 14 -> 5).
    reverse = digits[::-1]
    return sum(map(int, reverse[0::2] + reverse[1::2].translate(_DOUBLED_DIGIT_SUM))) % 10 == 0


def luhn_check_digit(digits: str) -> str:
    """The check digit that makes ``digits + check`` pass the Luhn test.

    >>> luhn_check_digit("850315981"), luhn_check_digit("202100000")
    ('9', '1')
    """
    for candidate in "0123456789":
        if luhn_valid(digits + candidate):
            return candidate
    raise AssertionError("unreachable: one of ten digits always completes a Luhn number")


def _real_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _birth_date(year: int, month: int, day: int) -> tuple[date | None, bool]:
    """Return (birth date, is coordination number); (None, True) for day 00 of a valid month."""
    if day > COORDINATION_DAY_OFFSET:
        return _real_date(year, month, day - COORDINATION_DAY_OFFSET), True
    if day == COORDINATION_DAY_OFFSET:
        # Day 00: the birth date is unknown; the month must still be real.
        return (None, True) if 1 <= month <= 12 else (None, False)
    return _real_date(year, month, day), False


def _infer_year(yymmdd: str, *, plus: bool, today: date) -> int:
    """The full year of a 10-digit personnummer.

    With "-": the latest year ending in YY that does not put the birth date after today. With "+"
    (written from the calendar year the person turns 100): the latest year ending in YY at least
    100 years before this year.
    """
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    if plus:
        latest = today.year - CENTENARIAN_AGE
        return latest - (latest - yy) % 100
    if dd >= COORDINATION_DAY_OFFSET:
        dd = max(dd - COORDINATION_DAY_OFFSET, 1)
    year = today.year // 100 * 100 + yy
    # Compare as (month, day) tuples so that invalid days still give a deterministic answer.
    if (year, mm, dd) > (today.year, today.month, today.day):
        year -= 100
    return year


def parse_identity(value: str, *, today: date) -> IdentityResult:
    """Classify and validate an identity number as written in a case file."""
    match = _SHAPE.match(compact(value))
    if match is None:
        return IdentityResult(None, IdentityProblem.FORMAT, None)
    head, separator, tail = match.groups()
    if len(head) == 8:
        century_digits, yymmdd = head[:2], head[2:]
    else:
        century_digits, yymmdd = "", head
    ten = yymmdd + tail
    middle = int(ten[2:4])

    if middle >= ORGNR_MIN_MIDDLE or century_digits == "16":
        return _parse_orgnr(century_digits, ten)

    kind = IdentityKind.PERSONAL_NUMBER
    if century_digits:
        year = int(century_digits + ten[:2])
    else:
        year = _infer_year(yymmdd, plus=separator == "+", today=today)
    born, coordination = _birth_date(year, middle, int(ten[4:6]))
    if coordination:
        kind = IdentityKind.COORDINATION_NUMBER
    unknown_day = coordination and int(ten[4:6]) == COORDINATION_DAY_OFFSET
    if born is None and not unknown_day:
        return IdentityResult(None, IdentityProblem.DATE, kind)
    if (born is not None and born > today) or (unknown_day and (year, middle) > (today.year, today.month)):
        return IdentityResult(None, IdentityProblem.DATE, kind)
    if not luhn_valid(ten):
        return IdentityResult(None, IdentityProblem.CHECK_DIGIT, kind)
    if separator == "+" and today.year - year < CENTENARIAN_AGE:
        return IdentityResult(None, IdentityProblem.PLUS_UNDER_100, kind)
    normalized = f"{year:04d}{ten[2:]}"
    return IdentityResult(Identity(kind, normalized, born), None, kind)


def _parse_orgnr(century_digits: str, ten: str) -> IdentityResult:
    kind = IdentityKind.ORGANISATION_NUMBER
    if century_digits not in ("", "16"):
        return IdentityResult(None, IdentityProblem.ORGNR_PREFIX, kind)
    if int(ten[2:4]) < ORGNR_MIN_MIDDLE:
        return IdentityResult(None, IdentityProblem.ORGNR_MIDDLE, kind)
    if not luhn_valid(ten):
        return IdentityResult(None, IdentityProblem.CHECK_DIGIT, kind)
    return IdentityResult(Identity(kind, "16" + ten, None), None, kind)


def is_placeholder(value: str) -> bool:
    """True for values ERP registers use instead of a real number (M04).

    All one digit (000000-0000, 999999-9999), a birth part of zeros, or a counting sequence.

    >>> [is_placeholder(v) for v in ("999999-9999", "000000-1234", "19123456-7890", "850315-9819")]
    [True, True, True, False]
    """
    digits = value.replace("-", "").replace("+", "").replace(" ", "")
    if not (digits.isascii() and digits.isdigit()):
        digits = "".join(char for char in value if char in _ASCII_DIGITS)
    if len(digits) not in (10, 12):
        return False
    ten = digits[-10:]
    if len(set(ten)) == 1:
        return True
    if ten[:6] == "000000" or ten[6:] == "0000":
        return True
    return ten in ("0123456789", "1234567890", "9876543210")


def mask_identity(value: str) -> str:
    """Mask a personal identity number for logs, receipts and reports: YYMMDD-XXXX.

    Anything that is not a valid organisationsnummer is masked, since an invalid number is often
    a real personnummer with a typing error.

    >>> mask_identity("202100-0001"), mask_identity("202100-0002"), mask_identity("850315+9819")
    ('202100-0001', '202100-XXXX', '850315-XXXX')
    >>> mask_identity("12345")
    'XXXXXX-XXXX'
    """
    digits = "".join(char for char in value if char in _ASCII_DIGITS)
    if len(digits) == 12:
        digits = digits[2:]
    if len(digits) == 10 and int(digits[2:4]) >= ORGNR_MIN_MIDDLE and luhn_valid(digits):
        return f"{digits[:6]}-{digits[6:]}"
    if len(digits) >= 6:
        return f"{digits[:6]}-XXXX"
    return "XXXXXX-XXXX"


#: What people and systems write between the birth date and the last four digits: hyphen and
#: plus, the dashes and minus sign word processors substitute (U+2010-U+2015, U+2212), the spaces
#: (no-break U+00A0, figure U+2007, thin U+2009, narrow no-break U+202F), dot, slash, underscore.
_SEPARATORS = "-+\u2010\u2011\u2012\u2013\u2014\u2015\u2212 \u00a0\u2007\u2009\u202f./_"
_HEX_LETTERS = frozenset("abcdefABCDEF")

# One pass over the text, two alternatives:
# - a run of 32 or more hex characters standing alone (a SHA-256 or other digest, or a long
#   number) is consumed whole and left alone, so that nothing inside it is matched;
# - otherwise 10 or 12 digits, with at most one separator before the last four, not inside a
#   longer digit run (letters around it do not matter: "kund6203049843" is masked).
# A shorter hex run (the 12-character prefix the gateway logs) is scanned like any text: the
# callback leaves a digit run touching a hex letter alone unless it looks like a birth date.
_MASKABLE = re.compile(
    r"(?<![0-9A-Za-z])[0-9A-Fa-f]{32,}(?![0-9A-Za-z])"
    rf"|(?<!\d)(?P<identity>(?:\d{{2}})?\d{{6}}[{re.escape(_SEPARATORS)}]?\d{{4}})(?!\d)",
    re.ASCII,
)


def _looks_like_birth_date(digits: str) -> bool:
    """Digits 3-6 of the last ten are a month (01-12) and a day (00-31, or 60-91 for a
    samordningsnummer); for a number glued to hex letters, which may be part of a digest."""
    ten = digits[-10:]
    return 1 <= int(ten[2:4]) <= 12 and int(ten[4:6]) % COORDINATION_DAY_OFFSET <= 31


def _mask_match(match: re.Match[str]) -> str:
    found = match.group("identity")
    if found is None:
        return match.group(0)  # a digest or a long number
    text, start, end = match.string, match.start(), match.end()
    glued_to_hex = (start > 0 and text[start - 1] in _HEX_LETTERS) or text[end : end + 1] in _HEX_LETTERS
    digits = "".join(char for char in found if char in _ASCII_DIGITS)
    if glued_to_hex and not _looks_like_birth_date(digits):
        return found  # most likely part of a hex digest or identifier
    masked = mask_identity(digits)
    # A valid organisationsnummer stays as it was written.
    return masked if "X" in masked else found


def mask_identities(text: str) -> str:
    """Mask every personal-identity-shaped number in free text (logs, messages, file names).

    >>> mask_identities("kund_850315_9819.xml from P198503159819, sha256 e4574269812c0a1b2c")
    'kund_850315-XXXX.xml from P850315-XXXX, sha256 e4574269812c0a1b2c'
    >>> mask_identities("610203\u20139812 / 630405.9824 / abc6203049843 / 19620304 9843abc")
    '610203-XXXX / 630405-XXXX / abc620304-XXXX / 620304-XXXXabc'
    >>> mask_identities("orgnr 202100-0001, invoice 1234567890123456, amount 123456789012345")
    'orgnr 202100-0001, invoice 1234567890123456, amount 123456789012345'
    """
    return _MASKABLE.sub(_mask_match, text)


def looks_like_identity(value: str, *, today: date) -> bool:
    """True when a value (e.g. a Kundnummer) is a valid personnummer, samordningsnummer or orgnr."""
    return parse_identity(value, today=today).identity is not None


def normalize_orgnr(value: str) -> str:
    """An organisationsnummer as 10 digits, for comparing the file's client with the config.

    >>> normalize_orgnr("16202100-0001"), normalize_orgnr("202100-0001"), normalize_orgnr("2021000001")
    ('2021000001', '2021000001', '2021000001')
    """
    digits = "".join(char for char in value if char in _ASCII_DIGITS)
    return digits[2:] if len(digits) == 12 and digits.startswith("16") else digits
