"""`convert`: a case file from XML to JSON and back, in xmlschema's default converter's shape.

Both directions stream, one part (the header, the client, one case) at a time: xmlschema decodes
or encodes each part against its global declaration in ``arendefil-1.xsd``, so the result is what
``XMLSchema.to_dict`` gives for the whole file (and ``XMLSchema.encode`` takes back), without the
whole file in memory. Only a valid file converts; what is wrong with one is `validate`'s to say, so
the first problem stops the conversion with :class:`ConversionError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from typing import Any, BinaryIO, TextIO

import xmlschema
from lxml import etree

from gateway.domain.identity import mask_identities
from gateway.formats import hardened
from gateway.formats.casefile import ENVELOPE_ORDER, FILE_VERSION, NAMESPACE
from gateway.formats.casejson import JsonCaseFileReader, PartBytesError, StopReadingError
from gateway.formats.casetree import PartTooLargeError
from gateway.formats.schemas import ARENDEFIL, schema_path

_Q = "{" + NAMESPACE + "}"
_NAMESPACES = {"": NAMESPACE}


class ConversionError(Exception):
    """The file cannot be converted; the message says where and why (identities masked)."""


@cache
def _schema() -> xmlschema.XMLSchema:
    with schema_path(ARENDEFIL).open("rb") as stream:
        return xmlschema.XMLSchema(stream)


def _problem(where: str, error: Exception) -> ConversionError:
    reason = getattr(error, "reason", None) or str(error).strip().splitlines()[0]
    return ConversionError(mask_identities(f"{where}: {reason}"))


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)  # amounts stay exact: "4800.00", never a float
    raise TypeError(f"not JSON: {type(value).__name__}")


def xml_to_json(source: BinaryIO, out: TextIO) -> int:
    """Write the JSON case file of the XML case file ``source``; return the number of cases."""
    schema = _schema()
    events = hardened.iterparse(source, events=("start", "end"))
    cases = 0
    depth = 0
    written_arende = False
    try:
        for event, element in events:
            if event == "start":
                depth += 1
                if depth == 1:
                    if element.tag != _Q + "Arendefil" or element.get("version") != FILE_VERSION:
                        raise ConversionError(
                            f'not a case file: the root must be Arendefil version="{FILE_VERSION}" in {NAMESPACE}'
                        )
                    out.write("{\n")
                    out.write(f' "@xmlns": {json.dumps(NAMESPACE)},\n "@version": {json.dumps(FILE_VERSION)}')
                continue
            depth -= 1
            if depth != 1:
                continue
            name = str(element.tag).removeprefix(_Q)
            if name not in ENVELOPE_ORDER:
                raise ConversionError(f"/Arendefil: the element {name[:60]} is not allowed in Arendefil")
            try:
                value = schema.elements[name].decode(element, decimal_type=str, namespaces=_NAMESPACES)
            except xmlschema.XMLSchemaValidationError as error:
                where = f"/Arendefil/{name}" + (f"[{cases + 1}]" if name == "Arende" else "")
                raise _problem(f"{where} (line {element.sourceline})", error) from error
            if isinstance(value, dict):
                value.pop("@xmlns", None)  # declared once, on the file
            text = json.dumps(value, ensure_ascii=False, indent=1, default=_json_default)
            text = text.replace("\n", "\n  " if name == "Arende" else "\n ")
            if name == "Arende":
                out.write(',\n "Arende": [\n  ' if not written_arende else ",\n  ")
                written_arende = True
                cases += 1
                out.write(text)
            else:
                if written_arende:
                    out.write("\n ]")
                    written_arende = False
                out.write(f",\n {json.dumps(name)}: {text}")
            element.clear()
            parent = element.getparent()
            while parent is not None and element.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as error:
        raise ConversionError(f"not well-formed XML: {error}") from error
    if written_arende:
        out.write("\n ]")
    out.write("\n}\n")
    return cases


def _json_parts(source: BinaryIO) -> Iterator[tuple[str, str, Any]]:
    reader = JsonCaseFileReader(source)
    try:
        for name, pointer, _index, value in reader.parts():
            if reader.duplicates:
                raise ConversionError(f"{reader.duplicates[0]}: the same key twice in one object")
            if reader.findings:
                raise ConversionError(f"{reader.findings[0].path}: {reader.findings[0].message_en}")
            yield name, pointer, value
    except StopReadingError as stop:
        raise ConversionError(f"{stop.finding.path}: {stop.finding.message_en}") from stop
    except (PartBytesError, PartTooLargeError) as error:
        raise ConversionError("a part of the file is too large") from error
    if reader.findings:
        raise ConversionError(f"{reader.findings[0].path}: {reader.findings[0].message_en}")


def json_to_xml(source: BinaryIO, out: BinaryIO) -> int:
    """Write the XML case file of the JSON case file ``source``; return the number of cases."""
    schema = _schema()
    cases = 0
    declaration = f' xmlns="{NAMESPACE}"'
    out.write(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Arendefil{declaration} version="{FILE_VERSION}">\n'.encode()
    )
    for name, pointer, value in _json_parts(source):
        try:
            element = schema.elements[name].encode(
                value, namespaces=_NAMESPACES, etree_element_class=etree.Element
            )
        except (xmlschema.XMLSchemaValidationError, ValueError, TypeError) as error:
            raise _problem(pointer, error) from error
        if not isinstance(element, etree._Element):
            raise ConversionError(f"{pointer}: xmlschema gave no element")
        if name == "Arende":
            cases += 1
        etree.indent(element, space="  ", level=1)
        # Each part is serialised on its own, so it declares the namespace the root already has.
        text = etree.tostring(element, encoding="unicode").replace(declaration, "", 1)
        out.write(f"  {text}\n".encode())
    out.write(b"</Arendefil>\n")
    return cases
