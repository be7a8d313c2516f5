"""Turn libxml2's schema errors into messages an ERP operator can act on, in Swedish and English.

libxml2 writes one English sentence per error, with Clark-notation names
(``{urn:inkasso-gateway:arendefil:1}Fakturadatum``) and the offending value. We drop the namespace,
shorten long values, mask anything that looks like a personal identity number (a value that broke
a length facet is quoted whole by libxml2), and give the common kinds a Swedish sentence of their own.
"""

from __future__ import annotations

import re

from gateway.domain.identity import mask_identities

# Namespace URIs in Clark notation; not the set braces of "{'Privat', 'Foretag'}".
_CLARK = re.compile(r"\{(?:urn|https?):[^}]*\}")
_ELEMENT = re.compile(r"^Element '([^']+)'(?:, attribute '([^']+)')?: (.*)$", re.DOTALL)
_LONG_QUOTED_VALUE = re.compile(r"'([^']{61,})'")

_TYPE_NAMES_SV = {
    "xs:date": "ett datum (ÅÅÅÅ-MM-DD)",
    "xs:dateTime": "en tidpunkt (ÅÅÅÅ-MM-DDTtt:mm:ss)",
    "xs:decimal": "ett decimaltal (punkt som decimaltecken)",
    "xs:boolean": "true eller false",
    "xs:positiveInteger": "ett positivt heltal",
    "xs:nonNegativeInteger": "ett heltal (0 eller mer)",
    "xs:integer": "ett heltal",
    # The schema's own restricted types, named as an ERP operator knows them.
    "Datum": "ett datum (ÅÅÅÅ-MM-DD)",
    "BeloppVarde": "ett belopp (decimaltal med punkt)",
}


def clean(message: str) -> str:
    text = _CLARK.sub("", message.strip())
    text = mask_identities(text)
    return _LONG_QUOTED_VALUE.sub(lambda m: f"'{m.group(1)[:60]}…'", text)


def where(message: str) -> tuple[str | None, str | None]:
    """The element's local name and the attribute name a libxml2 schema message is about."""
    found = _ELEMENT.match(_CLARK.sub("", message.strip()))
    if found is None:
        return None, None
    return found.group(1), found.group(2)


def translate(message: str) -> tuple[str, str]:
    """(Swedish, English) for one libxml2 schema error message."""
    english = clean(message)
    found = _ELEMENT.match(english)
    if found is None:
        return f"Schemafel: {english}", english
    element, attribute, detail = found.groups()
    field = f"attributet {attribute} i {element}" if attribute else f"fältet {element}"
    field_en = f"attribute {attribute} of {element}" if attribute else f"element {element}"
    swedish = _translate_detail(field, detail)
    return swedish, f"Schema: {field_en}: {detail}"


def _expected(detail: str) -> str:
    found = re.search(r"Expected is (?:one of )?\( ([^)]*) \)", detail)
    return found.group(1) if found else ""


def _translate_detail(field: str, detail: str) -> str:
    capital = field[0].upper() + field[1:]
    if detail.startswith("Missing child element"):
        return f"{capital} saknar obligatoriskt innehåll: {_expected(detail)} ska finnas här."
    if detail.startswith("This element is not expected"):
        expected = _expected(detail)
        hint = f" Här väntas {expected}." if expected else ""
        return f"{capital} är inte tillåtet här, eller står i fel ordning.{hint}"
    if (
        "is not a valid value of the atomic type" in detail
        or "is not a valid value of the local atomic type" in detail
    ):
        type_name = re.search(r"type '([^']+)'", detail)
        kind = (
            _TYPE_NAMES_SV.get(type_name.group(1), "ett giltigt värde") if type_name else "ett giltigt värde"
        )
        value = re.match(r"'((?:[^']|'(?! ))*)'", detail)
        shown = f" {value.group(0)}" if value else ""
        return f"Värdet{shown} i {field} är inte {kind}."
    if "[facet 'maxLength']" in detail:
        numbers = re.findall(r"'(\d+)'", detail)
        if len(numbers) >= 2:
            return f"Värdet i {field} är för långt: {numbers[-2]} tecken, högst {numbers[-1]} är tillåtet."
        return f"Värdet i {field} är för långt."
    if "[facet 'minLength']" in detail:
        return f"{capital} får inte vara tomt."
    if "[facet 'pattern']" in detail:
        return f"Värdet i {field} har fel format."
    if "[facet 'enumeration']" in detail:
        allowed = re.search(r"set \{([^}]*)\}", detail)
        listed = f" Tillåtna värden: {allowed.group(1)}." if allowed else ""
        return f"Värdet i {field} är inte tillåtet.{listed}"
    if "[facet 'totalDigits']" in detail:
        return f"Värdet i {field} har för många siffror (högst 18)."
    if "attribute" in detail and "is required but missing" in detail:
        name = re.search(r"attribute '([^']+)'", detail)
        return f"Attributet {name.group(1) if name else ''} saknas i {field}."
    if "is not allowed" in detail and "attribute" in detail.lower():
        return f"{capital} är inte tillåtet."
    if "Character content other than whitespace is not allowed" in detail:
        return f"Text är inte tillåten direkt i {field}; den hör hemma i ett underfält."
    if "Element content is not allowed" in detail:
        return f"{capital} får bara innehålla text, inga underfält."
    if "fixed value constraint" in detail:
        return f"Värdet i {field} måste vara det fasta värdet enligt schemat."
    return f"Schemafel i {field}: {detail}"
