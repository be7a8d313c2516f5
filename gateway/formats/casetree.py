"""Case files in other shapes (JSON, CSV) read through the XML reader's own checks.

A JSON or CSV reader builds each part of the file (the header, the client, one case) as the
``arendefil-1.xsd`` element it stands for, then checks it against the same schema declaration, with
the same messages, and turns it into the same case model with the same functions as the XML
reader. So a case means the same and is judged the same whatever shape it came in; only the places
differ: every element remembers where its value stood (a JSON pointer, or a CSV row and column),
and the model and the findings carry those places instead of XML paths.

Each element's ``sourceline`` is set to its serial number within its part: lxml reports a schema
error at the line of the node it is about, so the number leads back to the element and from there
to where its value stood in the original file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache, lru_cache

from lxml import etree

from gateway.domain.findings import Finding, Severity
from gateway.domain.model import Case, FileHeader, FileSummary, Located
from gateway.formats import hardened
from gateway.formats.casefile import (
    NAMESPACE,
    build_case,
    build_summary,
    read_client,
    read_header,
    schema_findings,
)
from gateway.formats.schemas import ARENDEFIL, load_schema, schema_path

_Q = "{" + NAMESPACE + "}"
_QLEN = len(_Q)
_XS = "{http://www.w3.org/2001/XMLSchema}"

#: Elements in one part (a case, the header): lxml keeps a node's line in 16 bits, and no real case
#: has more than a few dozen elements.
MAX_PART_ELEMENTS = 10_000


class PartTooLargeError(Exception):
    """A part has more elements than :data:`MAX_PART_ELEMENTS`."""


@dataclass(frozen=True, slots=True)
class Spot:
    """Where a value stood in the original file: a path in its own terms and, if it has lines, a line."""

    path: str
    line: int | None


@dataclass(slots=True)
class Problem:
    """Something the shape itself got wrong that the schema cannot see (a list in a list, a
    control character); reported with the part's schema code."""

    spot: Spot
    sv: str
    en: str


@dataclass(slots=True)
class PartBuilder:
    """Builds one part as an element tree, remembering where each element's value stood."""

    spots: list[Spot] = field(default_factory=list)
    #: Attributes whose value stood somewhere else than "<element's path>/@name" (a CSV column).
    attribute_spots: dict[tuple[int, str], Spot] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def element(self, parent: etree._Element | None, name: str, spot: Spot) -> etree._Element:
        if len(self.spots) >= MAX_PART_ELEMENTS:
            raise PartTooLargeError
        tag = _Q + _xml_name(name)
        element = etree.Element(tag) if parent is None else etree.SubElement(parent, tag)
        self.spots.append(spot)
        # lxml lets a built element's line be set (types-lxml says read-only); see the module's doc.
        element.sourceline = len(self.spots)  # type: ignore[misc]
        return element

    def text(self, element: etree._Element, value: str | None) -> None:
        if value is None:
            return
        try:
            element.text = value
        except ValueError:
            element.text = _xml_text(value)
            self._control_character(self.spot(element))

    def attribute(self, element: etree._Element, name: str, value: str, spot: Spot | None = None) -> None:
        attribute_name = _xml_name(name)
        if attribute_name == "xmlns":
            attribute_name = "_xmlns"  # a namespace declaration cannot be set as an attribute
        try:
            element.set(attribute_name, value)
        except ValueError:
            element.set(attribute_name, _xml_text(value))
            self._control_character(spot or self.spot(element))
        if spot is not None:
            self.attribute_spots[(element.sourceline or 0, attribute_name)] = spot

    def problem(self, spot: Spot, sv: str, en: str) -> None:
        self.problems.append(Problem(spot, sv, en))

    def _control_character(self, spot: Spot) -> None:
        self.problem(
            spot,
            "Värdet innehåller ett styrtecken som inte får förekomma i en ärendefil; tecknet har ersatts med �.",
            "The value holds a control character a case file may not hold; it was replaced by �.",
        )

    def spot(self, element: etree._Element) -> Spot:
        return self.spots[(element.sourceline or 1) - 1]

    def locate(self, element: etree._Element, attribute: str | None) -> tuple[str, int | None]:
        spot = self.spot(element)
        if attribute is None:
            return spot.path, spot.line
        known = self.attribute_spots.get((element.sourceline or 0, attribute))
        if known is not None:
            return known.path, known.line
        return f"{spot.path}/@{attribute}", spot.line

    def findings(self, element: etree._Element, code: str) -> list[Finding]:
        """The part's schema findings, then what the shape got wrong, each at its own place."""
        schema = load_schema(ARENDEFIL)
        found = schema_findings(schema, element, self.spot(element).path, code, self.locate)
        found += [
            Finding(code, Severity.ERROR, problem.spot.path, problem.spot.line, problem.sv, problem.en)
            for problem in self.problems
        ]
        return found


@lru_cache(maxsize=4096)
def _xml_name(name: str) -> str:
    """A key that is no XML name still becomes an element, which the schema then refuses by name."""
    try:
        etree.QName(NAMESPACE, name)
    except ValueError:
        cleaned = "".join(c if c.isalnum() or c in "_-." else "_" for c in name)[:60]
        if not cleaned or not (cleaned[0].isalpha() or cleaned[0] == "_"):
            cleaned = "_" + cleaned
        return cleaned
    return name


def _xml_text(value: str) -> str:
    return "".join(
        c
        if c in "\t\n\r" or ("\x20" <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd") or c > "\uffff"
        else "�"
        for c in value
    )


def scalar_text(value: object) -> str | None:
    """A JSON scalar as the element text the converter would have decoded it from."""
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


# -- the order of children, from the schema --------------------------------------------------


@cache
def child_order() -> Mapping[str, tuple[str, ...]]:
    """Each element's children in the schema's order, by the element's name.

    A JSON object's keys have no order, and xmlschema's encoder puts children in the schema's order
    itself; building elements in that order makes a JSON case mean what its keys say, whatever
    order they were written in.
    """
    with schema_path(ARENDEFIL).open("rb") as stream:
        document = hardened.parse(stream)
    root = document.getroot()
    named_types = {t.get("name"): t for t in root.iter(_XS + "complexType") if t.get("name")}

    def children(complex_type: etree._Element) -> tuple[str, ...]:
        return tuple(
            str(child.get("name") or child.get("ref"))
            for child in complex_type.iter(_XS + "element")
            if child.get("name") or child.get("ref")
        )

    orders: dict[str, tuple[str, ...]] = {}
    for element in root.iter(_XS + "element"):
        name = element.get("name")
        if name is None or name in orders:
            continue
        inline = element.find(_XS + "complexType")
        declared = named_types.get(element.get("type", ""))
        complex_type = inline if inline is not None else declared
        if complex_type is not None:
            orders[name] = children(complex_type)
    return orders


def in_schema_order(element_name: str, keys: Iterable[str]) -> list[str]:
    return list(_ordered(element_name, tuple(keys)))


@lru_cache(maxsize=4096)
def _ordered(element_name: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    # Cached: a file's cases mostly have the same keys, and this runs for every object of each.
    order = child_order().get(element_name, ())
    position = {name: index for index, name in enumerate(order)}
    return tuple(sorted(keys, key=lambda key: position.get(key, len(order))))


# -- the model, placed in the original file ----------------------------------------------------


def _children(element: etree._Element) -> Iterator[tuple[str, etree._Element]]:
    for child in element:
        if isinstance(child.tag, str):
            yield child.tag[_QLEN:], child


def _place(located: Located, element: etree._Element, builder: PartBuilder) -> None:
    """Give ``located`` (built from ``element``) the places its values stood in the original file."""
    spot = builder.spot(element)
    located.path, located.line = spot.path, spot.line
    lines: dict[str, int | None] = {}
    paths: dict[str, str] = {}
    for name, child in _children(element):
        if name not in paths:
            child_spot = builder.spot(child)
            lines[name], paths[name] = child_spot.line, child_spot.path
    for attribute in element.attrib:
        path, line = builder.locate(element, str(attribute))
        paths[f"@{attribute}"], lines[f"@{attribute}"] = path, line
    located.lines, located.paths = lines, paths


def read_case(builder: PartBuilder, element: etree._Element, index: int) -> tuple[Case, list[Finding]]:
    """The case of one built ``Arende`` element and its findings (S01), placed in the original file."""
    findings = builder.findings(element, "S01")
    case = build_case(element, index)
    _place(case, element, builder)
    debtors = iter(case.debtors)
    claims = iter(case.claims)
    attachments = iter(case.attachments)
    for name, child in _children(element):
        if name == "Motpart":
            debtor = next(debtors)
            _place(debtor, child, builder)
            for part_name, part in _children(child):
                if part_name == "Person" and debtor.person is not None:
                    _place(debtor.person, part, builder)
                elif part_name == "Adress" and debtor.address is not None:
                    _place(debtor.address, part, builder)
                elif part_name == "Foretag":
                    for firm_name, firm in _children(part):
                        if firm_name == "Firma" and debtor.paths is not None:
                            firm_spot = builder.spot(firm)
                            debtor.paths["Foretag/Firma"] = firm_spot.path
                            debtor.lines["Foretag/Firma"] = firm_spot.line
        elif name == "Fordran":
            claim = next(claims)
            _place(claim, child, builder)
            for part_name, part in _children(child):
                if part_name == "Ranta" and claim.interest is not None:
                    _place(claim.interest, part, builder)
                elif part_name == "Beslut" and claim.decision is not None:
                    _place(claim.decision, part, builder)
        elif name == "Bilaga":
            _place(next(attachments), child, builder)
    return case, findings


def read_header_part(
    builder: PartBuilder, element: etree._Element, header: FileHeader, client: bool
) -> list[Finding]:
    """Filhuvud (or, ``client``, Uppdragsgivare) into ``header``, placed; its findings (F03)."""
    findings = builder.findings(element, "F03")
    kept_path, kept_line = header.path, header.line
    kept_lines, kept_paths = dict(header.lines), dict(header.paths or {})
    if client:
        read_client(header, element)
        for name, child in _children(element):
            spot = builder.spot(child)
            kept_lines.setdefault(name, spot.line)
            kept_paths.setdefault(name, spot.path)
        header.path, header.line = kept_path, kept_line
    else:
        read_header(header, element)
        _place(header, element, builder)
        kept_lines.update(header.lines)
        kept_paths.update(header.paths or {})
    header.lines, header.paths = kept_lines, kept_paths
    return findings


def read_summary_part(builder: PartBuilder, element: etree._Element) -> tuple[FileSummary, list[Finding]]:
    findings = builder.findings(element, "F03")
    summary = build_summary(element)
    _place(summary, element, builder)
    return summary, findings
