"""Turn libxml2's error messages into messages an ERP operator can act on, in Swedish and English.

libxml2 writes one English sentence per error, with Clark-notation names
(``{urn:inkasso-gateway:arendefil:1}Fakturadatum``) and the offending value. We drop the namespace,
shorten long values, mask anything that looks like a personal identity number (a value that broke
a length facet is quoted whole by libxml2), and give each kind a sentence of its own in both
languages, with the same information in both: the element (with its parent, as in the path), what
the schema expects (type, allowed values or characters, length, order) and the value found when
libxml2 gives it.

Schema errors (S01, F03) come through :func:`translate`; syntax errors (F01) through
:func:`syntax_error`. A Swedish message never quotes libxml2's English: an unknown error gets a
general Swedish sentence, while the English one may add the parser's own words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.domain.identity import mask_identities

# Namespace URIs in Clark notation; not the set braces of "{'Privat', 'Foretag'}".
_CLARK = re.compile(r"\{(?:urn|https?):[^}]*\}")
_ELEMENT = re.compile(r"^Element '([^']+)'(?:, attribute '([^']+)')?: (.*)$", re.DOTALL)
#: A value libxml2 quotes: the opening quote follows a space or bracket, the closing one comes
#: before punctuation, so that the text between two short quoted names is never taken for a value.
_LONG_QUOTED_VALUE = re.compile(r"(?<![^\s({,])'([^']{61,})'(?=$|[\s.,;:)}])")
#: Characters of a value shown in a message; a longer one is cut with an ellipsis.
MAX_SHOWN_VALUE = 60
_SCHEMA = "arendefil-1.xsd"


@dataclass(frozen=True, slots=True)
class _Format:
    """What a pattern or a type of the schema asks for, in words (Swedish, English)."""

    sv: str
    en: str
    #: The allowed characters as a regex character class, to name the characters that are not.
    allowed: str | None = None
    max_length: int | None = None


_FILE_ID = _Format(
    "1 till 64 tecken, bara A-Z, a-z, 0-9 och tecknen . _ : - (punkt, understreck, kolon, bindestreck); "
    "inga mellanslag, snedstreck eller å, ä, ö",
    "1 to 64 characters, only A-Z, a-z, 0-9 and the characters . _ : - (full stop, underscore, colon, "
    "hyphen); no spaces, slashes or å, ä, ö",
    allowed=r"A-Za-z0-9._:\-",
    max_length=64,
)
_ORGNR = _Format(
    "ett organisationsnummer med tio siffror, med eller utan bindestreck efter de sex första (NNNNNN-NNNN)",
    "an organisation number of ten digits, with or without a hyphen after the first six (NNNNNN-NNNN)",
)
_REFERENCE = _Format(
    "1 till 50 tecken som varken börjar eller slutar med mellanslag",
    "1 to 50 characters that neither begin nor end with a space",
)
_COUNTRY = _Format(
    "en landskod med två versaler enligt ISO 3166-1, t.ex. SE",
    "a country code of two capital letters as in ISO 3166-1, e.g. SE",
)
_CURRENCY = _Format(
    "en valutakod med tre versaler enligt ISO 4217, t.ex. SEK",
    "a currency code of three capital letters as in ISO 4217, e.g. SEK",
)
_SHA256 = _Format(
    "filens SHA-256-kontrollsumma med exakt 64 hexadecimala tecken (0-9, a-f)",
    "the file's SHA-256 checksum of exactly 64 hexadecimal characters (0-9, a-f)",
    allowed="0-9a-fA-F",
)
_DATE = _Format(
    "ett datum skrivet ÅÅÅÅ-MM-DD, utan klockslag eller tidszon (t.ex. 2026-11-24)",
    "a date written YYYY-MM-DD, without a time or time zone (e.g. 2026-11-24)",
)

#: The schema's patterns (as libxml2 quotes them) in words.
_PATTERNS = {
    r"[A-Za-z0-9._:\-]{1,64}": _FILE_ID,
    r"\d{6}-?\d{4}": _ORGNR,
    r"\S(.*\S)?": _REFERENCE,
    r"[A-Z]{2}": _COUNTRY,
    r"[A-Z]{3}": _CURRENCY,
    r"[0-9a-fA-F]{64}": _SHA256,
    r"\d{4}-\d{2}-\d{2}": _DATE,
}

#: Built-in and schema types, named as an ERP operator knows them (Swedish, English).
_TYPE_NAMES = {
    "xs:date": ("ett datum (ÅÅÅÅ-MM-DD)", "a date (YYYY-MM-DD)"),
    "xs:dateTime": (
        "en tidpunkt (ÅÅÅÅ-MM-DDTtt:mm:ss, t.ex. 2026-11-24T22:15:00+01:00)",
        "a date and time (YYYY-MM-DDThh:mm:ss, e.g. 2026-11-24T22:15:00+01:00)",
    ),
    "xs:decimal": (
        "ett decimaltal (punkt som decimaltecken)",
        "a decimal number (with a full stop as the decimal separator)",
    ),
    "xs:boolean": ("true eller false", "true or false"),
    "xs:positiveInteger": ("ett positivt heltal (1 eller mer)", "a positive whole number (1 or more)"),
    "xs:nonNegativeInteger": ("ett heltal (0 eller mer)", "a whole number (0 or more)"),
    "xs:integer": ("ett heltal", "a whole number"),
    "xs:string": ("en text", "a text"),
    # The schema's own types.
    "Datum": ("ett giltigt datum (ÅÅÅÅ-MM-DD)", "a valid date (YYYY-MM-DD)"),
    "BeloppVarde": (
        "ett belopp (decimaltal med punkt, t.ex. 4800.00)",
        "an amount (a decimal number with a full stop, e.g. 4800.00)",
    ),
    "MotpartsTypTyp": ("Privat eller Foretag", "Privat or Foretag"),
    "FilIdTyp": (f"ett giltigt fil-id ({_FILE_ID.sv})", f"a valid file id ({_FILE_ID.en})"),
    "OrgnrTyp": (_ORGNR.sv, _ORGNR.en),
    "ReferensTyp": (f"en giltig referens ({_REFERENCE.sv})", f"a valid reference ({_REFERENCE.en})"),
    "LandTyp": (_COUNTRY.sv, _COUNTRY.en),
    "ValutaTyp": (_CURRENCY.sv, _CURRENCY.en),
}
_TEXT_TYPE = re.compile(r"^Text(\d+)$")
_CHARACTER_NAMES = {
    " ": ("mellanslag", "space"),
    "\t": ("tabb", "tab"),
    "\n": ("radbrytning", "line break"),
    "\r": ("vagnretur", "carriage return"),
    "\u00a0": ("hårt mellanslag", "non-breaking space"),
}


def clean(message: str) -> str:
    text = _CLARK.sub("", message.strip())
    text = mask_identities(text)
    return _LONG_QUOTED_VALUE.sub(lambda m: f"'{m.group(1)[:MAX_SHOWN_VALUE]}…'", text)


def where(message: str) -> tuple[str | None, str | None]:
    """The element's local name and the attribute name a libxml2 schema message is about."""
    found = _ELEMENT.match(_CLARK.sub("", message.strip()))
    if found is None:
        return None, None
    return found.group(1), found.group(2)


def _quoted(value: str) -> str:
    """A value from the file as a message shows it: masked, shortened, on one line."""
    shown = mask_identities(" ".join(value.split()) if "\n" in value else value)
    if len(shown) > MAX_SHOWN_VALUE:
        shown = shown[:MAX_SHOWN_VALUE] + "…"
    return f"'{shown}'"


def _display_name(element: str, path: str | None) -> str:
    """The element with its parent ("Motpart/Identitet"), from the finding's path when known."""
    if not path:
        return element
    steps = [re.sub(r"\[\d+\]$", "", step) for step in path.split("/") if step and not step.startswith("@")]
    if steps and steps[-1] == element:
        parent = steps[-2] if len(steps) > 2 else None
    else:  # the path stops at the part that holds the element (e.g. a foreign element in Arende)
        parent = steps[-1] if steps else None
    return f"{parent}/{element}" if parent and parent != "Arendefil" and parent != element else element


@dataclass(frozen=True, slots=True)
class _Field:
    """How the two languages name the node an error is about."""

    sv: str  # "fältet Motpart/Identitet" or "attributet valuta i Fordran/Kapitalbelopp"
    en: str  # "the element Motpart/Identitet" or "the attribute valuta of Fordran/Kapitalbelopp"

    @property
    def sv_capital(self) -> str:
        return self.sv[0].upper() + self.sv[1:]

    @property
    def en_capital(self) -> str:
        return self.en[0].upper() + self.en[1:]


def translate(message: str, path: str | None = None) -> tuple[str, str]:
    """(Swedish, English) for one libxml2 schema error message; ``path`` is the finding's path."""
    text = _CLARK.sub("", message.strip())
    found = _ELEMENT.match(text)
    if found is None:
        return (
            f"Filen följer inte schemat {_SCHEMA}.",
            f"The file does not follow the schema {_SCHEMA}. Validator's message: {clean(message)}",
        )
    element, attribute, detail = found.groups()
    name = _display_name(element, path)
    if attribute:
        field = _Field(f"attributet {attribute} i {name}", f"the attribute {attribute} of {name}")
    else:
        field = _Field(f"fältet {name}", f"the element {name}")
    swedish, english = _translate_detail(field, detail.strip())
    return mask_identities(swedish), mask_identities(english)


def _listed(names: str) -> str:
    return ", ".join(part.strip() for part in names.split(",") if part.strip())


def _expected(detail: str) -> tuple[str, str] | None:
    """What libxml2 says may stand here instead: ("Efternamn", "Efternamn") or a choice."""
    found = re.search(r"Expected is (one of )?\( ([^)]*) \)", detail)
    if found is None:
        return None
    names = _listed(found.group(2))
    if found.group(1):
        return f"något av {names}", f"one of {names}"
    return names, names


def _translate_detail(field: _Field, detail: str) -> tuple[str, str]:
    sv_field, en_field = field.sv, field.en
    sv_capital, en_capital = field.sv_capital, field.en_capital

    if detail.startswith("Missing child element"):
        expected = _expected(detail)
        if expected is None:
            return (
                f"{sv_capital} saknar obligatoriska underfält.",
                f"{en_capital} lacks required child elements.",
            )
        return (
            f"{sv_capital} saknar obligatoriskt innehåll: {expected[0]} ska finnas här.",
            f"{en_capital} lacks required content: {expected[1]} must be here.",
        )

    if detail.startswith("This element is not expected"):
        expected = _expected(detail)
        if expected is None:
            return (
                f"{sv_capital} är inte tillåtet här, eller står i fel ordning: inga fler fält väntas "
                "på den här platsen.",
                f"{en_capital} is not allowed here, or is out of order: no further element is expected "
                "at this place.",
            )
        return (
            f"{sv_capital} är inte tillåtet här, eller står i fel ordning. Här väntas {expected[0]}.",
            f"{en_capital} is not allowed here, or is out of order. Expected here: {expected[1]}.",
        )

    atomic = re.match(
        r"^'(.*)' is not a valid value of the (local )?(?:atomic|list|union) type(?: '([^']*)')?\.?$",
        detail,
        re.DOTALL,
    )
    if atomic is not None:
        value, local, type_name = atomic.groups()
        kind_sv, kind_en = _type_kind(type_name if not local else None)
        return (
            f"Värdet {_quoted(value)} i {sv_field} är inte {kind_sv}.",
            f"The value {_quoted(value)} in {en_field} is not {kind_en}.",
        )

    if "[facet 'maxLength']" in detail or "[facet 'minLength']" in detail or "[facet 'length']" in detail:
        return _length(field, detail)

    pattern = re.search(r"The value '(.*)' is not accepted by the pattern '(.*)'\.?$", detail, re.DOTALL)
    if pattern is not None:
        return _pattern(field, pattern.group(1), pattern.group(2))

    enumeration = re.search(r"The value '(.*)' is not an element of the set \{(.*)\}\.?$", detail, re.DOTALL)
    if enumeration is not None:
        value, allowed = _quoted(enumeration.group(1)), enumeration.group(2)
        return (
            f"Värdet {value} i {sv_field} är inte tillåtet. Tillåtna värden: {allowed}.",
            f"The value {value} in {en_field} is not allowed. Allowed values: {allowed}.",
        )

    digits = re.search(
        r"The value '(.*)' has more (fractional )?digits than are allowed \('(\d+)'\)", detail, re.DOTALL
    )
    if digits is not None:
        value, fractional, limit = _quoted(digits.group(1)), digits.group(2), digits.group(3)
        if fractional:
            return (
                f"Värdet {value} i {sv_field} har för många decimaler: högst {limit} är tillåtna.",
                f"The value {value} in {en_field} has too many decimals: at most {limit} are allowed.",
            )
        return (
            f"Värdet {value} i {sv_field} har för många siffror: högst {limit} siffror är tillåtna.",
            f"The value {value} in {en_field} has too many digits: at most {limit} digits are allowed.",
        )

    bound = re.search(
        r"The value '(.*)' is (less|greater) than (?:or equal to )?the (?:minimum|maximum) value allowed "
        r"\('(.*)'\)",
        detail,
        re.DOTALL,
    )
    if bound is not None:
        value, direction, limit = _quoted(bound.group(1)), bound.group(2), bound.group(3)
        if direction == "less":
            return (
                f"Värdet {value} i {sv_field} är för litet: lägsta tillåtna värde är {limit}.",
                f"The value {value} in {en_field} is too small: the lowest allowed value is {limit}.",
            )
        return (
            f"Värdet {value} i {sv_field} är för stort: högsta tillåtna värde är {limit}.",
            f"The value {value} in {en_field} is too large: the highest allowed value is {limit}.",
        )

    required = re.search(r"The attribute '([^']+)' is required but missing", detail)
    if required is not None:
        name = required.group(1)
        return (
            f"Attributet {name} saknas i {sv_field}; det är obligatoriskt.",
            f"The attribute {name} is missing from {en_field}; it is required.",
        )

    if re.search(r"The attribute '[^']+' is not allowed", detail):
        return (
            f"{sv_capital} är inte tillåtet; ta bort det ur exporten.",
            f"{en_capital} is not allowed; remove it from the export.",
        )

    if detail.startswith("Character content other than whitespace is not allowed"):
        return (
            f"Text är inte tillåten direkt i {sv_field}; den hör hemma i ett av dess underfält.",
            f"Text is not allowed directly in {en_field}; it belongs in one of its child elements.",
        )

    if detail.startswith("Character content is not allowed") and "empty" in detail:
        return (
            f"{sv_capital} ska vara tomt (bara attribut) men innehåller text.",
            f"{en_capital} must be empty (attributes only) but holds text.",
        )

    if detail.startswith("Element content is not allowed"):
        if "empty" in detail:
            return (
                f"{sv_capital} ska vara tomt (bara attribut) men innehåller underfält.",
                f"{en_capital} must be empty (attributes only) but holds child elements.",
            )
        return (
            f"{sv_capital} får bara innehålla text, inga underfält.",
            f"{en_capital} may hold only text, no child elements.",
        )

    fixed = re.search(r"The value '(.*)' does not match the fixed value constraint '(.*)'", detail, re.DOTALL)
    if fixed is not None:
        value, constraint = _quoted(fixed.group(1)), _quoted(fixed.group(2))
        return (
            f"Värdet {value} i {sv_field} är fel: schemat kräver det fasta värdet {constraint}.",
            f"The value {value} in {en_field} is wrong: the schema requires the fixed value {constraint}.",
        )
    if "fixed value constraint" in detail:
        return (
            f"Värdet i {sv_field} måste vara det fasta värdet enligt schemat {_SCHEMA}.",
            f"The value in {en_field} must be the fixed value the schema {_SCHEMA} gives.",
        )

    if "No matching global declaration" in detail:
        return (
            f"{sv_capital} finns inte i schemat {_SCHEMA}.",
            f"{en_capital} is not declared in the schema {_SCHEMA}.",
        )

    # An error this module does not know: a general Swedish sentence, the validator's own in English.
    value = re.search(r"'((?:[^']|'(?! ))*)'", detail)
    shown_sv = f" (värdet {_quoted(value.group(1))})" if value else ""
    return (
        f"{sv_capital} följer inte schemat {_SCHEMA}{shown_sv}. Jämför fältet med schemat.",
        f"{en_capital} does not follow the schema {_SCHEMA}. Validator's message: {clean(detail)}",
    )


def _type_kind(type_name: str | None) -> tuple[str, str]:
    if type_name is None:
        return "ett tillåtet värde enligt schemat", "a value the schema allows"
    known = _TYPE_NAMES.get(type_name)
    if known is not None:
        return known
    text = _TEXT_TYPE.match(type_name)
    if text is not None:
        return f"en text på högst {text.group(1)} tecken", f"a text of at most {text.group(1)} characters"
    return f"ett giltigt värde av typen {type_name}", f"a valid value of the type {type_name}"


def _characters(count: str | None) -> str:
    return "character" if count == "1" else "characters"


def _length(field: _Field, detail: str) -> tuple[str, str]:
    value = re.search(r"The value '(.*)' has a length of", detail, re.DOTALL)
    shown = f" {_quoted(value.group(1))}" if value else ""
    numbers = re.findall(r"'(\d+)'", detail)
    actual, limit = (numbers[-2], numbers[-1]) if len(numbers) >= 2 else (None, None)
    if "[facet 'maxLength']" in detail:
        if actual is None:
            return (
                f"Värdet{shown} i {field.sv} är för långt.",
                f"The value{shown} in {field.en} is too long.",
            )
        return (
            f"Värdet{shown} i {field.sv} är för långt: {actual} tecken, högst {limit} är tillåtet.",
            f"The value{shown} in {field.en} is too long: {actual} {_characters(actual)}, at most {limit} "
            "allowed.",
        )
    if "[facet 'minLength']" in detail:
        if actual is None or actual == "0":
            least = f": minst {limit} tecken krävs" if limit else ""
            least_en = f": at least {limit} {_characters(limit)} required" if limit else ""
            return (
                f"{field.sv_capital} får inte vara tomt{least}.",
                f"{field.en_capital} must not be empty{least_en}.",
            )
        return (
            f"Värdet{shown} i {field.sv} är för kort: {actual} tecken, minst {limit} krävs.",
            f"The value{shown} in {field.en} is too short: {actual} {_characters(actual)}, at least {limit} "
            "required.",
        )
    if actual is None:
        return (
            f"Värdet{shown} i {field.sv} har fel längd.",
            f"The value{shown} in {field.en} has the wrong length.",
        )
    return (
        f"Värdet{shown} i {field.sv} har fel längd: {actual} tecken, exakt {limit} krävs.",
        f"The value{shown} in {field.en} has the wrong length: {actual} {_characters(actual)}, exactly "
        f"{limit} required.",
    )


def _pattern(field: _Field, value: str, pattern: str) -> tuple[str, str]:
    shown = _quoted(value)
    known = _PATTERNS.get(pattern)
    if known is None:
        return (
            f"Värdet {shown} i {field.sv} har fel format; det ska följa mönstret '{pattern}' i schemat.",
            f"The value {shown} in {field.en} has the wrong format; it must match the pattern "
            f"'{pattern}' of the schema.",
        )
    hint_sv, hint_en = _format_hint(known, value)
    return (
        f"Värdet {shown} i {field.sv} har fel format; det ska vara {known.sv}.{hint_sv}",
        f"The value {shown} in {field.en} has the wrong format; it must be {known.en}.{hint_en}",
    )


def _format_hint(known: _Format, value: str) -> tuple[str, str]:
    """What exactly is wrong with a value: its length, the characters that are not allowed."""
    sv: list[str] = []
    en: list[str] = []
    if not value:
        sv.append("Värdet är tomt.")
        en.append("The value is empty.")
    if known.max_length is not None and len(value) > known.max_length:
        sv.append(f"Värdet har {len(value)} tecken.")
        en.append(f"The value has {len(value)} characters.")
    if known.allowed is not None:
        wrong = sorted(set(re.findall(f"[^{known.allowed}]", value)))
        if wrong:
            names = [_CHARACTER_NAMES.get(char, (f"'{char}'", f"'{char}'")) for char in wrong[:10]]
            names_sv = ", ".join(name_sv for name_sv, _ in names)
            names_en = ", ".join(name_en for _, name_en in names)
            sv.append(f"Otillåtna tecken i värdet: {names_sv}.")
            en.append(f"Characters not allowed in the value: {names_en}.")
    return "".join(f" {part}" for part in sv), "".join(f" {part}" for part in en)


# -- syntax errors (F01) ----------------------------------------------------------------------------

#: libxml2's syntax errors, most common first: (pattern of its English message, Swedish, English).
#: ``{1}``... are the pattern's groups.
_SYNTAX: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), sv, en)
    for pattern, sv, en in (
        (
            r"^Opening and ending tag mismatch: (\S+) line (\d+) and (\S+)",
            "starttaggen <{1}> på rad {2} avslutas med </{3}>. Varje element ska avslutas med sitt eget "
            "namn, i omvänd ordning mot hur elementen öppnades.",
            "the start tag <{1}> on line {2} is closed with </{3}>. Every element must be closed with its "
            "own name, in the reverse order of opening.",
        ),
        (
            r"^Premature end of data in tag (\S+) line (\d+)",
            "filen tar slut innan elementet <{1}> från rad {2} har avslutats. Filen är avkortad eller "
            "ofullständigt skriven; skicka hela filen.",
            "the file ends before the element <{1}> from line {2} is closed. The file is cut short or was "
            "not completely written; send the whole file.",
        ),
        (
            r"^Premature end of data",
            "filen tar slut mitt i XML-innehållet. Filen är avkortad eller ofullständigt skriven; skicka "
            "hela filen.",
            "the file ends in the middle of its XML content. The file is cut short or was not completely "
            "written; send the whole file.",
        ),
        (
            r"^Document is empty",
            "filen innehåller inget XML-innehåll.",
            "the file holds no XML content.",
        ),
        (
            r"^Start tag expected, '<' not found",
            "ett element ('<') väntades här men saknas. Filen är kanske inte en XML-fil, eller har text "
            "före rotelementet.",
            "an element ('<') is expected here but missing. The file may not be an XML file, or has text "
            "before its root element.",
        ),
        (
            r"^StartTag: invalid element name",
            "efter '<' står inget giltigt elementnamn. Ett '<' i text ska skrivas &lt;, och elementnamn "
            "får inte börja med en siffra.",
            "no valid element name follows '<'. A '<' in text must be written &lt;, and element names "
            "must not begin with a digit.",
        ),
        (
            r"^Couldn't find end of Start Tag (\S+)",
            "starttaggen <{1}> avslutas aldrig med '>'.",
            "the start tag <{1}> is never closed with '>'.",
        ),
        (
            r"^EndTag: '</' not found",
            "en sluttagg ('</') saknas.",
            "an end tag ('</') is missing.",
        ),
        (
            r"^expected '>'",
            "ett '>' saknas i slutet av en tagg.",
            "a '>' is missing at the end of a tag.",
        ),
        (
            r"^Extra content at the end of the document",
            "det står något efter rotelementets sluttagg </Arendefil>; allt innehåll ska stå inuti "
            "Arendefil.",
            "something follows the root element's end tag </Arendefil>; all content must be inside "
            "Arendefil.",
        ),
        (
            r"^xmlParseEntityRef: no name",
            "ett ensamt '&' står i texten. Skriv &amp; i stället (t.ex. 'Exempelsson &amp; Son').",
            "a lone '&' stands in the text. Write &amp; instead (e.g. 'Exempelsson &amp; Son').",
        ),
        (
            r"^EntityRef: expecting ';'",
            "en teckenreferens som börjar med '&' saknar avslutande ';'. Ett '&' i text ska skrivas &amp;.",
            "a character reference beginning with '&' lacks its closing ';'. A '&' in text must be written "
            "&amp;.",
        ),
        (
            r"^Entity '([^']*)' not defined",
            "entiteten &{1}; är inte definierad. XML känner bara &amp; &lt; &gt; &quot; &apos; och "
            "numeriska referenser som &#160;.",
            "the entity &{1}; is not defined. XML knows only &amp; &lt; &gt; &quot; &apos; and numeric "
            "references such as &#160;.",
        ),
        (
            r"^(?:PCDATA invalid Char value (\d+)|Char 0x\w+ out of allowed range|invalid character in "
            r"attribute value)",
            "filen innehåller ett styrtecken som inte är tillåtet i XML; ta bort det ur exporten.",
            "the file holds a control character that XML does not allow; remove it from the export.",
        ),
        (
            r"^xmlParseCharRef: invalid xmlChar value (\d+)",
            "teckenreferensen &#{1}; pekar på ett tecken som inte är tillåtet i XML.",
            "the character reference &#{1}; points to a character that XML does not allow.",
        ),
        (
            r"^AttValue: \" or ' expected",
            'ett attributvärde saknar citattecken; skriv attribut="värde".',
            'an attribute value lacks quotation marks; write attribute="value".',
        ),
        (
            r"^Attribute (\S+) redefined",
            "attributet {1} står två gånger i samma tagg.",
            "the attribute {1} appears twice in the same tag.",
        ),
        (
            r"^Unescaped '<' not allowed in attributes values",
            "ett attributvärde innehåller '<' eller saknar sitt avslutande citattecken. Ett '<' i ett "
            "värde ska skrivas &lt;.",
            "an attribute value holds '<' or lacks its closing quotation mark. A '<' in a value must be "
            "written &lt;.",
        ),
        (
            r"^Specification mandates value for attribute (\S+)",
            'attributet {1} saknar värde; skriv {1}="värde".',
            'the attribute {1} has no value; write {1}="value".',
        ),
        (
            r"^(?:error parsing attribute name|attributes construct error)",
            "attributen i en tagg är felskrivna, eller så avslutas taggen inte med '>'.",
            "the attributes of a tag are malformed, or the tag is not closed with '>'.",
        ),
        (
            r"^Namespace prefix (\S+) on (\S+) is not defined",
            "prefixet {1} på elementet {2} är inte deklarerat. Ärendefilens element skrivs utan prefix.",
            "the prefix {1} on the element {2} is not declared. A case file's elements are written without "
            "a prefix.",
        ),
        (
            r"^Double hyphen within comment",
            "en kommentar innehåller '--', vilket XML inte tillåter inuti kommentarer.",
            "a comment holds '--', which XML does not allow inside comments.",
        ),
        (
            r"^Comment not terminated",
            "en kommentar (<!-- ...) avslutas aldrig med -->.",
            "a comment (<!-- ...) is never closed with -->.",
        ),
        (
            r"^CData section not finished",
            "ett CDATA-avsnitt (<![CDATA[ ...) avslutas aldrig med ]]>.",
            "a CDATA section (<![CDATA[ ...) is never closed with ]]>.",
        ),
        (
            r"^XML declaration allowed only at the start of the document",
            "XML-deklarationen <?xml ...?> får bara stå allra först i filen, utan något före den (inte "
            "ens mellanslag eller en tom rad), och bara en gång.",
            "the XML declaration <?xml ...?> may only stand at the very start of the file, with nothing "
            "before it (not even a space or an empty line), and only once.",
        ),
        (
            r"^Unsupported version '([^']*)'",
            'XML-version {1} stöds inte; skriv version="1.0".',
            'XML version {1} is not supported; write version="1.0".',
        ),
        (
            r"^Malformed declaration expecting version",
            'XML-deklarationen saknar version; skriv <?xml version="1.0" encoding="UTF-8"?>.',
            'the XML declaration has no version; write <?xml version="1.0" encoding="UTF-8"?>.',
        ),
        (
            r"^(?:Blank needed here|String not started expecting ' or \"|parsing XML declaration)",
            'XML-deklarationen är felskriven; skriv <?xml version="1.0" encoding="UTF-8"?>.',
            'the XML declaration is malformed; write <?xml version="1.0" encoding="UTF-8"?>.',
        ),
    )
)
_POSITION = re.compile(r",? line (\d+), column (\d+)\s*$")


def _parser_words(message: str) -> str:
    """The parser's message on one line, without the file content libxml2 quotes after a line break."""
    first, _, rest = message.partition("\n")
    position = _POSITION.search(rest) if rest else None
    return first.rstrip(" ,:") + (
        f", line {position.group(1)}, column {position.group(2)}" if position else ""
    )


def syntax_error(message: str, line: int | None) -> tuple[str, str]:
    """(Swedish, English) for one libxml2 syntax error; the English ends with the parser's words."""
    cleaned = _parser_words(clean(message))
    position = _POSITION.search(cleaned)
    where_sv = f"rad {line}" if line else "okänd rad"
    where_en = f"line {line}" if line else "unknown line"
    if position is not None:
        where_sv += f", kolumn {position.group(2)}"
        where_en += f", column {position.group(2)}"
    body = _POSITION.sub("", cleaned)
    for pattern, sv, en in _SYNTAX:
        found = pattern.match(body)
        if found is not None:
            groups = [mask_identities(group or "")[:MAX_SHOWN_VALUE] for group in found.groups()]
            explained_sv = sv.format("", *groups)
            explained_en = en.format("", *groups)
            return (
                f"Filen är inte välformad XML ({where_sv}): {explained_sv}",
                f"The file is not well-formed XML ({where_en}): {explained_en} Parser message: {cleaned}",
            )
    return (
        f"Filen är inte välformad XML ({where_sv}). Kontrollera filen på den raden, eller exportera den "
        "på nytt och pröva igen.",
        f"The file is not well-formed XML ({where_en}). Parser message: {cleaned}",
    )
