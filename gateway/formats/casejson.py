"""The JSON case file: the same content as ``Arendefil``, in the shape xmlschema's converter gives.

``xmlschema.XMLSchema("xsd/arendefil-1.xsd").to_dict(xml)`` (the default converter) turns a case
file into an object: ``"@version"`` and ``"@xmlns"`` for the root's attribute and namespace,
``"Filhuvud"``, ``"Uppdragsgivare"``, ``"Arende"`` (a list: one object per case),
``"Filsummering"``; an element that may repeat is a list (``"Motpart"``, ``"Fordran"``,
``"Utdelningsadress"``), an attribute is ``"@name"`` and the text beside attributes is ``"$"``
(``"Kapitalbelopp": {"@valuta": "SEK", "$": "4800.00"}``). `inkasso-gateway convert` writes and
reads exactly that (:mod:`gateway.formats.conversion`).

The reader streams: ijson's events are built into one part at a time (the header, the client, one
case), each part into the element it stands for, checked and read as the XML reader does
(:mod:`gateway.formats.casetree`), then dropped. Places are JSON pointers (RFC 6901):
``/Arende/2/Fordran/0/Kapitalbelopp``; JSON has no line numbers worth the name, so none is given.

Hostile input gets findings, never a traceback: not UTF-8, not JSON, not an object (F09); a key
twice in one object (S02 in a case, F09 outside); nesting deeper than :data:`MAX_DEPTH`, a string
or number longer than :data:`MAX_STRING_CHARS`, a part larger than :data:`MAX_PART_BYTES` (F10).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import ijson
from lxml import etree

from gateway.domain.findings import Finding, Severity
from gateway.domain.identity import mask_identities
from gateway.domain.model import Case, FileHeader, FileSummary
from gateway.formats import schema_messages
from gateway.formats.casefile import ENVELOPE_ORDER, FILE_VERSION, MAX_FILE_FINDINGS, NAMESPACE, ByteSource
from gateway.formats.casetree import (
    PartBuilder,
    PartTooLargeError,
    Spot,
    in_schema_order,
    read_case,
    read_header_part,
    read_summary_part,
    scalar_text,
)

#: Nesting of objects and arrays: the converter's shape needs 7 (root, Arende list, case, Fordran
#: list, claim, Kapitalbelopp); deeper is a hostile file, refused before it costs anything.
MAX_DEPTH = 32
#: A string, key or number longer than this is refused (F10): no field of the schema is longer
#: than 500 characters, and this bounds what one value can cost.
MAX_STRING_CHARS = 100_000
#: One part of the file (a case, the header) larger than this is refused (F10), as in XML.
MAX_PART_BYTES = 4 * 1024 * 1024
#: A run of more digits than this is refused (F10) before the parser turns it into a number: no
#: field of the schema needs more than 18.
MAX_DIGITS = 1_000
_LONG_DIGITS = re.compile(rb"[0-9]{%d}" % (MAX_DIGITS + 1))
#: Bytes per read: ijson parses incrementally, this much at a time.
READ_BYTES = 64 * 1024

_BOM = b"\xef\xbb\xbf"


class StopReadingError(Exception):
    """The file cannot be read further; ``finding`` says why."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message_en)
        self.finding = finding


class PartBytesError(Exception):
    """More than MAX_PART_BYTES read since the last part began."""


class _Bounded:
    """The byte stream without a UTF-8 BOM, reading at most MAX_PART_BYTES per part."""

    def __init__(self, stream: ByteSource) -> None:
        self._stream = stream
        self._first = True
        self._since_part = 0
        self._digit_run = 0  # digits at the end of what was read so far
        self.at_end = False

    def part_done(self) -> None:
        self._since_part = 0

    def _check_digits(self, data: bytes) -> None:
        """Refuse a run of digits too long before ijson sees it: its C parser turns a number into a
        Python int, which refuses more than 4,300 digits in a way that leaves an exception pending
        inside the parser (found by a test), and costs time quadratic in the digits besides."""
        leading = len(data) - len(data.lstrip(b"0123456789"))
        if self._digit_run + leading > MAX_DIGITS or _LONG_DIGITS.search(data):
            raise StopReadingError(
                _file_finding(
                    "F10",
                    "/",
                    f"Filen innehåller ett tal med fler än {MAX_DIGITS} siffror.",
                    f"The file holds a number of more than {MAX_DIGITS} digits.",
                )
            )
        trailing = len(data) - len(data.rstrip(b"0123456789"))
        self._digit_run = self._digit_run + trailing if trailing == len(data) else trailing

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if self._first and data:  # ijson reads 0 bytes first, to tell bytes from text
            self._first = False
            if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(data) >= 2 and b"\x00" in data[:2]):
                raise StopReadingError(
                    _file_finding(
                        "F09",
                        "/",
                        "Filen är kodad som UTF-16 eller UTF-32. JSON-ärendefiler ska vara UTF-8.",
                        "The file is encoded as UTF-16 or UTF-32. JSON case files must be UTF-8.",
                    )
                )
            # A byte-order mark is not JSON (RFC 8259 lets a reader ignore it), but Windows tools write one.
            data = data.removeprefix(_BOM)
        if not data:
            self.at_end = True
        self._check_digits(data)
        self._since_part += len(data)
        if self._since_part > MAX_PART_BYTES:
            raise PartBytesError
        return data


def _file_finding(code: str, path: str, sv: str, en: str) -> Finding:
    return Finding(code, Severity.ERROR, path, None, sv, en)


def escape(key: str) -> str:
    """A key as one step of a JSON pointer (RFC 6901).

    >>> escape("a/b~c")
    'a~1b~0c'
    """
    if "~" not in key and "/" not in key:
        return key
    return key.replace("~", "~0").replace("/", "~1")


def _shown(value: str) -> str:
    return schema_messages.clean(mask_identities(value[:60]))


class JsonCaseFileReader:
    """Read one JSON case file; iterate :meth:`cases`, then read ``header``, ``summary``, ``findings``."""

    def __init__(self, stream: ByteSource) -> None:
        self._bounded = _Bounded(stream)
        self._events: Iterator[tuple[str, Any]] = ijson.basic_parse(
            self._bounded, buf_size=READ_BYTES, use_float=False
        )
        self.header = FileHeader("/Filhuvud", None)
        self.summary: FileSummary | None = None
        self.findings: list[Finding] = []
        #: The JSON ended in the middle (at the end of the data): probably still being written.
        self.truncated = False
        self._seen: list[str] = []
        #: JSON pointers of keys found twice in the part being read.
        self.duplicates: list[str] = []

    def _report(self, finding: Finding) -> None:
        if len(self.findings) <= MAX_FILE_FINDINGS:
            self.findings.append(finding)

    def cases(self) -> Iterator[tuple[Case, list[Finding]]]:
        """Yield each case with its findings; file-level findings collect in ``findings``."""
        try:
            for name, pointer, index, value in self.parts():
                if name == "Arende":
                    yield self._case(value, pointer, index)
                else:
                    self._envelope_part(name, pointer, value)
        except StopReadingError as stop:
            self._report(stop.finding)
        except (PartBytesError, PartTooLargeError):
            self._report(
                _file_finding(
                    "F10",
                    "/",
                    f"En del av filen (ett ärende, filhuvudet) är större än {MAX_PART_BYTES // (1024 * 1024)} MB "
                    "eller har för många fält; filen läses inte vidare.",
                    f"One part of the file (a case, the header) is larger than {MAX_PART_BYTES // (1024 * 1024)} MB "
                    "or has too many fields; the file is not read further.",
                )
            )

    # -- events ------------------------------------------------------------------------------

    def _next(self) -> tuple[str, Any]:
        try:
            return next(self._events)
        except StopIteration:
            self.truncated = True
            raise StopReadingError(
                _file_finding("F09", "/", "JSON-texten slutar mitt i.", "The JSON text ends in the middle.")
            ) from None
        except ijson.JSONError as error:
            raise StopReadingError(self._syntax_finding(error)) from None
        except (ValueError, SystemError):
            # ijson's C parser turns a number too long for Python's int() into these.
            raise StopReadingError(
                _file_finding(
                    "F10",
                    "/",
                    "Filen innehåller ett tal med för många siffror.",
                    "The file holds a number with too many digits.",
                )
            ) from None

    def _syntax_finding(self, error: Exception) -> Finding:
        raw = error.args[0] if error.args else ""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        # yajl quotes the text around the error on later lines: it may hold personal data.
        reason = text.strip().splitlines()[0] if text.strip() else error.__class__.__name__
        lowered = reason.lower()
        if "premature eof" in lowered and self._bounded.at_end:
            self.truncated = True
        if "utf8" in lowered or "utf-8" in lowered:
            return _file_finding(
                "F09",
                "/",
                "Filen är inte korrekt kodad som UTF-8: den innehåller byte som inte är giltig UTF-8, oftast "
                "å, ä eller ö sparade som Windows-1252. Exportera filen som UTF-8.",
                "The file is not correctly encoded as UTF-8: it holds bytes that are not valid UTF-8, most "
                "often å, ä or ö saved as Windows-1252. Export it as UTF-8.",
            )
        shown = _shown(reason)
        return _file_finding(
            "F09",
            "/",
            f"Filen är inte giltig JSON ({shown}).",
            f"The file is not valid JSON ({shown}).",
        )

    def _value(self, event: str, value: Any, pointer: str, depth: int) -> Any:
        """One JSON value from its first event on, as dict, list or scalar; duplicates noted."""
        if event == "start_map":
            self._check_depth(depth, pointer)
            built: dict[str, Any] = {}
            while True:
                event, key = self._next()
                if event == "end_map":
                    return built
                self._check_length(key, pointer)
                where = f"{pointer}/{escape(key)}"
                child = self._value(*self._next(), where, depth + 1)
                if key in built:
                    self.duplicates.append(where)
                else:
                    built[key] = child
        if event == "start_array":
            self._check_depth(depth, pointer)
            items: list[Any] = []
            while True:
                event, item = self._next()
                if event == "end_array":
                    return items
                items.append(self._value(event, item, f"{pointer}/{len(items)}", depth + 1))
        if event == "string":
            self._check_length(value, pointer)
        elif event == "number":
            self._check_length(str(value), pointer)
        return value

    @staticmethod
    def _check_depth(depth: int, pointer: str) -> None:
        if depth > MAX_DEPTH:
            raise StopReadingError(
                _file_finding(
                    "F10",
                    pointer[:200],
                    f"Objekt och listor är nästlade djupare än {MAX_DEPTH} nivåer; filen läses inte vidare.",
                    f"Objects and arrays are nested deeper than {MAX_DEPTH} levels; the file is not read further.",
                )
            )

    @staticmethod
    def _check_length(text: str, pointer: str) -> None:
        if len(text) > MAX_STRING_CHARS:
            raise StopReadingError(
                _file_finding(
                    "F10",
                    pointer[:200],
                    f"En sträng, nyckel eller ett tal är längre än {MAX_STRING_CHARS} tecken; filen läses inte vidare.",
                    f"A string, key or number is longer than {MAX_STRING_CHARS} characters; the file is not "
                    "read further.",
                )
            )

    # -- the envelope ------------------------------------------------------------------------

    def parts(self) -> Iterator[tuple[str, str, int, Any]]:
        """The file's parts as they stream: (name, JSON pointer, case number or 0, value as parsed).

        What is wrong with the envelope collects in ``findings``; a key twice in a part is in
        ``duplicates`` (JSON pointers) until the part is taken. Raises StopReadingError when the
        file cannot be read further; :meth:`cases` turns that into its finding.
        """
        event, _value = self._next()
        if event != "start_map":
            raise StopReadingError(
                _file_finding(
                    "F09",
                    "/",
                    "JSON-ärendefilen ska vara ett objekt med Filhuvud, Uppdragsgivare, Arende och Filsummering.",
                    "A JSON case file must be an object holding Filhuvud, Uppdragsgivare, Arende and Filsummering.",
                )
            )
        seen_keys: set[str] = set()
        version_seen = False
        while True:
            event, key = self._next()
            if event == "end_map":
                break
            self._check_length(key, "/")
            pointer = f"/{escape(key)}"
            if key in seen_keys:
                self._report(
                    _file_finding(
                        "F09",
                        pointer,
                        f"Nyckeln {_shown(key)} står två gånger i filens objekt; vilket värde som gäller är oklart.",
                        f"The key {_shown(key)} appears twice in the file's object; which value counts is unclear.",
                    )
                )
                self._skip(pointer)
                continue
            seen_keys.add(key)
            if key == "Arende":
                self._order(key, pointer)
                yield from self._case_values(pointer)
            elif key in ENVELOPE_ORDER:
                self._order(key, pointer)
                self._bounded.part_done()
                yield key, pointer, 0, self._value(*self._next(), pointer, 1)
            elif key == "@version":
                version_seen = True
                self._version(self._value(*self._next(), pointer, 1), pointer)
            elif key == "@xmlns":
                namespace = self._value(*self._next(), pointer, 1)
                if namespace != NAMESPACE:
                    self._report(
                        _file_finding(
                            "F09",
                            pointer,
                            f"Filen anger namnrymden {_shown(str(namespace))}; en ärendefil har {NAMESPACE}.",
                            f"The file names the namespace {_shown(str(namespace))}; a case file has {NAMESPACE}.",
                        )
                    )
            elif key.startswith(("@xmlns:", "@xsi:")):
                self._skip(pointer)  # namespace declarations and schema hints a converter may add
            else:
                self._skip(pointer)
                self._not_allowed(key, pointer)
        if not version_seen:
            self._version(None, "/@version")
        for name in ENVELOPE_ORDER:
            if name not in self._seen:
                sv, en = (
                    ("Filen innehåller inget ärende (Arende).", "The file holds no case (Arende).")
                    if name == "Arende"
                    else (f"{name} saknas i filen.", f"{name} is missing from the file.")
                )
                self._report(_file_finding("F03", f"/{name}", sv, en))
        try:
            event, _ = next(self._events)
        except StopIteration:
            return
        except ijson.JSONError as error:
            raise StopReadingError(self._syntax_finding(error)) from None
        raise StopReadingError(
            _file_finding(
                "F09", "/", "Något står efter filens objekt.", "Something follows the file's object."
            )
        )

    def _skip(self, pointer: str) -> None:
        self._value(*self._next(), pointer, 1)

    def _not_allowed(self, key: str, pointer: str) -> None:
        shown = _shown(key)
        if key.startswith("@"):
            sv, en = (
                f"Attributet {shown[1:]} är inte tillåtet på Arendefil.",
                f"The attribute {shown[1:]} is not allowed on Arendefil.",
            )
        else:
            sv, en = (
                f"Elementet {shown} är inte tillåtet i Arendefil. Filens delar är Filhuvud, Uppdragsgivare, "
                "Arende (en lista) och Filsummering.",
                f"The element {shown} is not allowed in Arendefil. A file holds Filhuvud, Uppdragsgivare, "
                "Arende (a list) and Filsummering.",
            )
        self._report(_file_finding("F03", pointer, sv, en))

    def _version(self, version: object, pointer: str) -> None:
        if version == FILE_VERSION:
            return
        found_sv, found_en = (
            ("attributet saknas", "the attribute is missing")
            if version is None
            else (f"filen har {_shown(str(version))}", f"the file has {_shown(str(version))}")
        )
        self._report(
            _file_finding(
                "F03",
                pointer,
                f'Arendefil ska ha "@version": "{FILE_VERSION}" ({found_sv}).',
                f'Arendefil must have "@version": "{FILE_VERSION}" ({found_en}).',
            )
        )

    def _order(self, name: str, pointer: str) -> None:
        """Parts in the schema's order: the cases are judged as they stream, after the header."""
        position = ENVELOPE_ORDER.index(name)
        if any(ENVELOPE_ORDER.index(seen) > position for seen in self._seen):
            self._report(
                _file_finding(
                    "F03",
                    pointer,
                    f"{name} står på fel plats. Ordningen är Filhuvud, Uppdragsgivare, Arende, Filsummering.",
                    f"{name} is out of place. The order is Filhuvud, Uppdragsgivare, Arende, Filsummering.",
                )
            )
        self._seen.append(name)

    def _envelope_part(self, name: str, pointer: str, value: Any) -> None:
        self._duplicates_outside_a_case()
        builder = PartBuilder()
        element = to_element(builder, None, name, value, pointer)
        if name == "Filsummering":
            self.summary, findings = read_summary_part(builder, element)
        else:
            findings = read_header_part(builder, element, self.header, client=name == "Uppdragsgivare")
        for finding in findings:
            self._report(finding)

    def _duplicates_outside_a_case(self) -> None:
        for where in self.duplicates:
            self._report(
                _file_finding(
                    "F09",
                    where,
                    "Samma nyckel står två gånger i ett objekt; vilket värde som gäller är oklart.",
                    "The same key appears twice in one object; which value counts is unclear.",
                )
            )
        self.duplicates.clear()

    # -- the cases ---------------------------------------------------------------------------

    def _case_values(self, pointer: str) -> Iterator[tuple[str, str, int, Any]]:
        event, value = self._next()
        if event != "start_array":
            # One case as an object, not in a list: what a hand-written file for one case may say.
            self._bounded.part_done()
            yield "Arende", pointer, 1, self._value(event, value, pointer, 1)
            return
        index = 0
        while True:
            self._bounded.part_done()
            event, value = self._next()
            if event == "end_array":
                return
            where = f"{pointer}/{index}"
            index += 1
            yield "Arende", where, index, self._value(event, value, where, 2)

    def _case(self, value: Any, pointer: str, index: int) -> tuple[Case, list[Finding]]:
        builder = PartBuilder()
        element = to_element(builder, None, "Arende", value, pointer)
        case, findings = read_case(builder, element, index)
        for where in self.duplicates:
            findings.append(
                Finding(
                    "S02",
                    Severity.ERROR,
                    where,
                    None,
                    "Samma nyckel står två gånger i ett objekt i ärendet; vilket värde som gäller beror på "
                    "läsaren. Ta bort den ena.",
                    "The same key appears twice in one object of the case; which value counts depends on the "
                    "reader. Remove one of them.",
                )
            )
        self.duplicates.clear()
        return case, findings


def to_element(
    builder: PartBuilder, parent: etree._Element | None, name: str, value: Any, pointer: str
) -> etree._Element:
    """The element the converter would have decoded ``value`` from, each node remembering its pointer."""
    element = builder.element(parent, name, Spot(pointer, None))
    if isinstance(value, dict):
        children = [key for key in value if not key.startswith("@") and key != "$"]
        for key in in_schema_order(name, children):
            item, where = value[key], f"{pointer}/{escape(key)}"
            if isinstance(item, list):
                for position, each in enumerate(item):
                    to_element(builder, element, key, each, f"{where}/{position}")
            else:
                to_element(builder, element, key, item, where)
        for key, item in value.items():
            if not key.startswith("@") or item is None:
                continue
            if isinstance(item, dict | list):
                _not_a_single_value(builder, f"{pointer}/{escape(key)}")
                continue
            builder.attribute(element, key[1:], scalar_text(item) or "")
        if "$" in value:
            text = value["$"]
            if isinstance(text, dict | list):
                _not_a_single_value(builder, f"{pointer}/$")
            else:
                builder.text(element, scalar_text(text))
    elif isinstance(value, list):
        builder.problem(
            Spot(pointer, None),
            "En lista står direkt i en lista; ett fält kan bara upprepas en nivå.",
            "A list stands directly in a list; a field can only repeat one level deep.",
        )
    else:
        builder.text(element, scalar_text(value))
    return element


def _not_a_single_value(builder: PartBuilder, pointer: str) -> None:
    builder.problem(
        Spot(pointer, None),
        "Ett attribut eller en text (@namn, $) ska vara ett enkelt värde, inte ett objekt eller en lista.",
        "An attribute or a text (@name, $) must be a single value, not an object or a list.",
    )
