"""The streaming case-file reader: one ``Arende`` at a time, in constant memory.

Reading happens in two steps over one pass of the bytes:

1. **Sniff** the prolog with a pull parser until the root element starts. Anything before the root
   that could make the parser do work on the sender's behalf (a DOCTYPE with entities, an external
   DTD) is refused here (F02), as are a wrong root, namespace or encoding (F01). The bytes read are
   kept and replayed, so the stream is never read twice.
2. **Stream** the rest with ``iterparse`` filtered to the root's children. Each child is checked
   against its global declaration in ``arendefil-1.xsd`` on its own (S01 inside an Arende, F03
   outside), turned into the domain model, handed to the caller, and then cleared together with its
   processed siblings. Validating children one by one does not check the envelope, so the order of
   the children and anything unexpected between them is checked here (F03).

The parser is hardened (no entities, no DTD, no network, no huge trees) and is always given a file
object, never a path: lxml would transparently gunzip a path's content.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Protocol

from lxml import etree

from gateway.domain.findings import Finding, Severity
from gateway.domain.model import (
    Address,
    Amount,
    Attachment,
    Case,
    Claim,
    Debtor,
    Decision,
    FileHeader,
    FileSummary,
    Interest,
    Person,
)
from gateway.formats import hardened, schema_messages
from gateway.formats.schemas import ARENDEFIL, load_schema

NAMESPACE = "urn:inkasso-gateway:arendefil:1"
_Q = "{" + NAMESPACE + "}"
_QLEN = len(_Q)
XINCLUDE_NAMESPACE = "http://www.w3.org/2001/XInclude"
ROOT = "Arendefil"
FILE_VERSION = "1.0"
ENVELOPE_ORDER = ("Filhuvud", "Uppdragsgivare", "Arende", "Filsummering")

#: Bytes read per chunk while looking for the root element.
SNIFF_CHUNK_BYTES = 64 * 1024
#: A prolog (XML declaration, comments) longer than this before the root is not a case file.
MAX_PROLOG_BYTES = 1024 * 1024
#: Schema findings kept per case: a garbage case should not flood the receipt.
MAX_FINDINGS_PER_ELEMENT = 50

_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_UTF8_NAMES = frozenset({"utf-8", "utf8"})
#: libxml2's words when one of its safety limits (not the file's syntax) stopped the parse.
_UNSAFE_SYNTAX_MARKERS = (
    "excessive depth",
    "huge",
    "amplification",
    "entity reference loop",
    "too long",
    "resource limit",
    "xmlsax2characters",
)
#: A single part of the file (one case, the header...) larger than this is refused (F02): a real
#: case is a few kilobytes, and the reader holds one part in memory at a time.
MAX_PART_BYTES = 4 * 1024 * 1024
#: File-level findings kept: a file of a million stray elements must not give a million findings.
MAX_FILE_FINDINGS = 200


class ByteSource(Protocol):
    """Anything the reader can pull bytes from: a file, a zip member, a hashing wrapper."""

    def read(self, size: int = -1, /) -> bytes: ...


class _PartTooLargeError(Exception):
    """Raised from the stream when one part of the file grows past MAX_PART_BYTES."""


class _GuardedStream:
    """Returns ``prefix`` first, then the rest of ``stream``, and bounds the size of each part.

    The reader calls :meth:`part_done` after each child of the root; if more than ``part_limit``
    bytes are read before the next one, reading stops. lxml builds a part in memory until its end
    tag, so this is what keeps a hostile case of millions of elements from filling memory.
    """

    def __init__(self, prefix: bytes, stream: ByteSource, *, part_limit: int = MAX_PART_BYTES) -> None:
        self._prefix = prefix
        self._stream = stream
        self._part_limit = part_limit
        self._since_part = 0
        self.lines_read = 1  # newlines seen + 1: the number of the last line read so far
        self.at_end = False

    def part_done(self) -> None:
        self._since_part = 0

    def read(self, size: int = -1) -> bytes:
        prefix = self._prefix
        if prefix:
            if size < 0:
                self._prefix = b""
                data = prefix + self._stream.read()
            else:
                # A short read is fine for a file object; the parser simply asks again.
                self._prefix = prefix[size:]
                data = prefix[:size]
        else:
            data = self._stream.read(size)
        self._since_part += len(data)
        self.lines_read += data.count(b"\n")
        if not data:
            self.at_end = True
        if self._since_part > self._part_limit:
            raise _PartTooLargeError
        return data


@dataclass(slots=True)
class _StopReadingError(Exception):
    """Raised inside the reader when the file cannot be read any further."""

    finding: Finding


def _file_finding(code: str, line: int | None, sv: str, en: str, path: str = "/") -> Finding:
    return Finding(code, Severity.ERROR, path, line, sv, en)


def _syntax_finding(error: Exception) -> Finding:
    message = str(error).strip() or error.__class__.__name__
    line = getattr(error, "lineno", None) or None
    log = getattr(error, "error_log", None)
    if line is None and log is not None and len(log):
        # iterparse without entity resolution can raise a bare "no element found" at line 0;
        # the real reason is the log's last entry (earlier entries may be from earlier parses).
        last = log[len(log) - 1]
        message, line = last.message, last.line or None
    lowered = message.lower()
    # lxml appends where it parsed from, "(<string>, line 25)": the line is already in the message.
    message = re.sub(r"\s*\(<string>, line \d+\)$", "", message.strip())
    cleaned = " ".join(schema_messages.clean(message).split())  # the parser's words, on one line
    at_sv = f" (rad {line})" if line else ""
    at_en = f" (line {line})" if line else ""
    if any(marker in lowered for marker in _UNSAFE_SYNTAX_MARKERS):
        if "depth" in lowered:
            what_sv, what_en = "elementen är nästlade för djupt", "the elements are nested too deeply"
        elif "entity" in lowered or "amplification" in lowered:
            what_sv, what_en = "entiteterna växer för mycket", "the entities expand too much"
        else:
            what_sv, what_en = "ett värde eller namn är för stort", "a value or name is too large"
        return _file_finding(
            "F02",
            line,
            f"Filen överskrider gatewayens säkerhetsgränser för XML (djup, storlek eller entiteter) och "
            f"läses inte{at_sv}: {what_sv}.",
            f"The file exceeds the gateway's safety limits for XML (nesting, size or entities) and is "
            f"not read{at_en}: {what_en}. Parser message: {cleaned}",
        )
    if "encoding" in lowered or "utf-8" in lowered or "bytes:" in lowered:
        return _file_finding(
            "F01",
            line,
            f"Filen är inte korrekt kodad som UTF-8{at_sv}: den innehåller byte som inte är giltig UTF-8, "
            "oftast å, ä eller ö sparade som ISO-8859-1 (Latin-1) eller Windows-1252. Exportera filen "
            "som UTF-8.",
            f"The file is not correctly encoded as UTF-8{at_en}: it holds bytes that are not valid UTF-8, "
            "most often å, ä or ö saved as ISO-8859-1 (Latin-1) or Windows-1252. Export it as UTF-8. "
            f"Parser message: {cleaned}",
        )
    sv, en = schema_messages.syntax_error(message, line)
    return _file_finding("F01", line, sv, en)


def _text(element: etree._Element) -> str:
    return (element.text or "").strip()


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


class CaseFileReader:
    """Read one case file from a binary stream; iterate :meth:`cases`, then read the results.

    After :meth:`cases` is exhausted, ``header``, ``summary`` and ``findings`` (file level:
    F01, F02, F03) hold everything the file said outside its cases.
    """

    def __init__(self, stream: ByteSource) -> None:
        self._stream = stream
        self._schema = load_schema(ARENDEFIL)
        self.header = FileHeader("/Arendefil/Filhuvud", None)
        self.summary: FileSummary | None = None
        self.findings: list[Finding] = []
        self._seen: list[str] = []  # envelope children in order, "Arende" once per run
        #: The XML ended in the middle (at the end of the data): probably still being written.
        self.truncated = False
        self._guarded: _GuardedStream | None = None
        self._last_processed: etree._Element | None = None
        self._case_index = 0

    def _report(self, finding: Finding) -> None:
        count = len(self.findings)
        if count < MAX_FILE_FINDINGS:
            self.findings.append(finding)
        elif count == MAX_FILE_FINDINGS:
            self.findings.append(
                Finding(
                    finding.code,
                    finding.severity,
                    finding.path,
                    finding.line,
                    f"Fler än {MAX_FILE_FINDINGS} anmärkningar på filnivå; resten visas inte.",
                    f"More than {MAX_FILE_FINDINGS} file-level findings; the rest are not shown.",
                )
            )

    # -- step 1: the prolog ------------------------------------------------------------------

    def _sniff(self) -> bytes:
        parser = hardened.pull_parser(events=("start",))
        prefix = bytearray()
        root: etree._Element | None = None
        while root is None:
            chunk = self._stream.read(SNIFF_CHUNK_BYTES)
            if not chunk:
                if not prefix.strip():
                    raise _StopReadingError(_file_finding("F01", None, "Filen är tom.", "The file is empty."))
                parser.close()  # raises the parser's own reason
                raise _StopReadingError(
                    _file_finding(
                        "F01", None, "Filen innehåller inget XML-element.", "The file holds no XML element."
                    )
                )
            if not prefix:
                self._check_encoding(chunk)
            prefix += chunk
            # Refuse declarations before the parser acts on them; lxml's protections are the second line.
            if b"<!DOCTYPE" in prefix or b"<!ENTITY" in prefix:
                raise _StopReadingError(self._doctype_finding())
            parser.feed(chunk)
            for _event, element in parser.read_events():
                root = element
                break
            if root is None and len(prefix) > MAX_PROLOG_BYTES:
                raise _StopReadingError(
                    _file_finding(
                        "F02",
                        None,
                        "Filen har ingen rotnod inom den första megabyten.",
                        "The file has no root element within its first megabyte.",
                    )
                )
        docinfo = root.getroottree().docinfo
        if docinfo.doctype or docinfo.internalDTD is not None or docinfo.system_url:
            raise _StopReadingError(self._doctype_finding())
        self._check_root(root)
        return bytes(prefix)

    @staticmethod
    def _doctype_finding() -> Finding:
        return _file_finding(
            "F02",
            1,
            "Filen innehåller en DOCTYPE- eller ENTITY-deklaration, vilket inte är tillåtet: ta bort "
            "den. Ärendefiler använder bara schemat arendefil-1.xsd.",
            "The file holds a DOCTYPE or ENTITY declaration, which is not allowed: remove it. Case "
            "files use only the schema arendefil-1.xsd.",
        )

    @staticmethod
    def _check_encoding(first_chunk: bytes) -> None:
        if first_chunk.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise _StopReadingError(
                _file_finding(
                    "F01",
                    1,
                    "Filen är kodad som UTF-16. Exportera den som UTF-8.",
                    "The file is encoded as UTF-16. Export it as UTF-8.",
                )
            )
        if b"\x00" in first_chunk[:4]:
            raise _StopReadingError(
                _file_finding(
                    "F01",
                    1,
                    "Filen är kodad som UTF-16 eller UTF-32. Exportera den som UTF-8.",
                    "The file is encoded as UTF-16 or UTF-32. Export it as UTF-8.",
                )
            )
        body = first_chunk[3:] if first_chunk.startswith(b"\xef\xbb\xbf") else first_chunk
        declared = _XML_DECLARATION.match(body)
        if declared and declared.group(1).decode("ascii").lower() not in _UTF8_NAMES:
            name = declared.group(1).decode("ascii")
            raise _StopReadingError(
                _file_finding(
                    "F01",
                    1,
                    f"Filen deklarerar teckenkodningen {name}; ärendefiler ska vara UTF-8. Exportera "
                    'filen som UTF-8 och ange encoding="UTF-8".',
                    f"The file declares the encoding {name}; case files must be UTF-8. Export it as "
                    'UTF-8 with encoding="UTF-8".',
                )
            )

    def _check_root(self, root: etree._Element) -> None:
        tag = root.tag if isinstance(root.tag, str) else ""
        if tag != _Q + ROOT:
            local = etree.QName(tag).localname if tag else "?"
            namespace = etree.QName(tag).namespace if tag else None
            if local == ROOT:
                sv = (
                    f"Rotelementet Arendefil har fel namnrymd ({namespace or 'ingen'}); ska vara {NAMESPACE}."
                )
                en = f"The root element Arendefil has the wrong namespace ({namespace or 'none'}); it must be {NAMESPACE}."
            else:
                sv = f"Filen är ingen ärendefil: rotelementet är {local[:60]}, inte Arendefil i namnrymden {NAMESPACE}."
                en = f"The file is not a case file: its root element is {local[:60]}, not Arendefil in the namespace {NAMESPACE}."
            raise _StopReadingError(_file_finding("F01", root.sourceline, sv, en))
        version = root.get("version")
        if version != FILE_VERSION:
            if version is None:
                found_sv, found_en = "attributet saknas", "the attribute is missing"
            else:
                shown = schema_messages.clean(repr(version[:60]))
                found_sv, found_en = f"filen har {shown}", f"the file has {shown}"
            self._report(
                _file_finding(
                    "F03",
                    root.sourceline,
                    f'Arendefil ska ha attributet version="{FILE_VERSION}" ({found_sv}).',
                    f'Arendefil must have the attribute version="{FILE_VERSION}" ({found_en}).',
                    "/Arendefil/@version",
                )
            )
        for name in root.attrib:
            if name != "version" and not name.startswith("{http://www.w3.org/2001/XMLSchema-instance}"):
                shown = schema_messages.clean(str(name))
                self._report(
                    _file_finding(
                        "F03",
                        root.sourceline,
                        f"Attributet {shown} är inte tillåtet på Arendefil.",
                        f"The attribute {shown} is not allowed on Arendefil.",
                        f"/Arendefil/@{shown}",
                    )
                )

    # -- step 2: the stream ------------------------------------------------------------------

    def cases(self) -> Iterator[tuple[Case, list[Finding]]]:
        """Yield each case with its schema findings; file-level findings collect in ``findings``."""
        try:
            prefix = self._sniff()
            self._guarded = _GuardedStream(prefix, self._stream)
            yield from self._stream_children(self._guarded)
        except _StopReadingError as stop:
            self._report(stop.finding)
        except _PartTooLargeError:
            self._report(
                _file_finding(
                    "F02",
                    None,
                    f"En del av filen (ett ärende eller något mellan ärendena) är större än "
                    f"{MAX_PART_BYTES // (1024 * 1024)} MB; filen läses inte vidare.",
                    f"One part of the file (a case, or something between cases) is larger than "
                    f"{MAX_PART_BYTES // (1024 * 1024)} MB; the file is not read further.",
                )
            )
        except etree.XMLSyntaxError as error:
            finding = _syntax_finding(error)
            guarded = self._guarded
            # An error on the last line of the data, once all of it was read, is what a file cut
            # off mid-write looks like; the daemon waits for the rest instead of rejecting it.
            self.truncated = finding.code == "F01" and (
                "premature end of data" in str(error).lower()
                or (guarded is not None and guarded.at_end and (finding.line or 0) >= guarded.lines_read)
            )
            self._report(finding)
        except (zipfile.BadZipFile, EOFError, zlib.error) as error:
            reason = schema_messages.clean(str(error))
            self._report(
                _file_finding(
                    "F02",
                    None,
                    "Paketet är skadat och kan inte packas upp (zip-arkivet eller dess komprimerade "
                    "innehåll är trasigt). Skapa paketet på nytt och skicka det igen.",
                    "The package is damaged and cannot be unpacked (the zip archive or its compressed "
                    f"content is broken). Create the package again and resend it. Error: {reason}",
                )
            )
        except OSError as error:
            # lxml reports some malformed encodings from the input layer as OSError.
            self._report(_syntax_finding(error))

    def _stream_children(self, stream: _GuardedStream) -> Iterator[tuple[Case, list[Finding]]]:
        context = hardened.iterparse(
            stream,  # type: ignore[arg-type]  # a guarded stream: it reads like a binary file
            events=("end",),
            tag=[_Q + name for name in ENVELOPE_ORDER],
        )
        for _event, element in context:
            parent = element.getparent()
            if parent is None or parent.getparent() is not None:
                continue  # a same-named element deeper down: its parent's schema check reports it
            self._check_siblings_before(element, parent)
            name = str(element.tag)[_QLEN:]
            self._check_order(name, element)
            if name == "Arende":
                self._case_index += 1
                case, findings = self._read_case(element, self._case_index)
                yield case, findings
            elif name == "Filhuvud":
                self._read_header(element)
            elif name == "Uppdragsgivare":
                self._read_client(element)
            else:
                self._read_summary(element)
            element.clear(keep_tail=True)
            self._last_processed = element
            stream.part_done()
        root = context.root
        if root is not None:
            last = root[-1] if len(root) else None
            if last is not None and last is not self._last_processed:
                self._unexpected(last)
            if self._last_processed is not None:
                self._check_tail(self._last_processed)
        self._check_complete()

    def _check_siblings_before(self, element: etree._Element, parent: etree._Element) -> None:
        """Report anything between the envelope's children, then free what was processed."""
        if self._last_processed is None and (parent.text or "").strip():
            self._text_between(parent.sourceline)
        while (first := parent[0]) is not element:
            if first is not self._last_processed:
                self._unexpected(first)
            self._check_tail(first)
            del parent[0]

    def _check_tail(self, element: etree._Element) -> None:
        if (element.tail or "").strip():
            self._text_between(element.sourceline)

    def _text_between(self, line: int | None) -> None:
        self._report(
            _file_finding(
                "F03",
                line,
                "Text står direkt mellan filens delar; bara element är tillåtna där.",
                "Text stands directly between the parts of the file; only elements are allowed there.",
                "/Arendefil",
            )
        )

    def _unexpected(self, element: etree._Element) -> None:
        if not isinstance(element.tag, str):
            return
        if element.tag.startswith("{" + XINCLUDE_NAMESPACE + "}"):
            self._report(self._xinclude_finding(element))
            return
        local = schema_messages.clean(element.tag)
        self._report(
            _file_finding(
                "F03",
                element.sourceline,
                f"Elementet {local[:60]} är inte tillåtet i Arendefil. Filens delar är Filhuvud, "
                "Uppdragsgivare, Arende (ett eller flera) och Filsummering.",
                f"The element {local[:60]} is not allowed in Arendefil. A file holds Filhuvud, "
                "Uppdragsgivare, one or more Arende and Filsummering.",
                f"/Arendefil/{local[:60]}",
            )
        )

    @staticmethod
    def _xinclude_finding(element: etree._Element) -> Finding:
        return _file_finding(
            "F02",
            element.sourceline,
            "Filen använder XInclude, vilket inte är tillåtet: en ärendefil ska vara fristående.",
            "The file uses XInclude, which is not allowed: a case file must stand on its own.",
        )

    def _check_order(self, name: str, element: etree._Element) -> None:
        seen = self._seen
        if seen and seen[-1] == name == "Arende":
            return
        position = ENVELOPE_ORDER.index(name)
        expected = ENVELOPE_ORDER[len(seen)] if len(seen) < len(ENVELOPE_ORDER) else None
        if name in seen or name != expected:
            if name in seen:
                sv = f"{name} förekommer mer än en gång, eller efter en senare del av filen."
                en = f"{name} appears more than once, or after a later part of the file."
            else:
                sv = f"{name} står på fel plats: väntat {expected}. Ordningen är Filhuvud, Uppdragsgivare, Arende, Filsummering."
                en = f"{name} is out of place: expected {expected}. The order is Filhuvud, Uppdragsgivare, Arende, Filsummering."
            self._report(_file_finding("F03", element.sourceline, sv, en, f"/Arendefil/{name}"))
        if name not in seen:
            # Record skipped parts too, so one misplaced element gives one finding.
            for missing in ENVELOPE_ORDER[len(seen) : position]:
                if missing not in seen:
                    seen.append(missing)
            seen.append(name)

    def _check_complete(self) -> None:
        for name in ENVELOPE_ORDER:
            if name in self._seen:
                continue
            if name == "Arende":
                sv, en = "Filen innehåller inget ärende (Arende).", "The file holds no case (Arende)."
            else:
                sv, en = f"{name} saknas i filen.", f"{name} is missing from the file."
            self._report(_file_finding("F03", None, sv, en, f"/Arendefil/{name}"))

    # -- schema check of one child -----------------------------------------------------------

    def _schema_findings(self, element: etree._Element, base: str, code: str) -> list[Finding]:
        findings = schema_findings(self._schema, element, base, code)
        if findings:
            for xinclude in element.iter("{" + XINCLUDE_NAMESPACE + "}*"):
                self._report(self._xinclude_finding(xinclude))
        return findings

    # -- building the model ------------------------------------------------------------------

    def _read_header(self, element: etree._Element) -> None:
        for finding in self._schema_findings(element, "/Arendefil/Filhuvud", "F03"):
            self._report(finding)
        read_header(self.header, element)

    def _read_client(self, element: etree._Element) -> None:
        for finding in self._schema_findings(element, "/Arendefil/Uppdragsgivare", "F03"):
            self._report(finding)
        read_client(self.header, element)

    def _read_summary(self, element: etree._Element) -> None:
        for finding in self._schema_findings(element, "/Arendefil/Filsummering", "F03"):
            self._report(finding)
        self.summary = build_summary(element)

    def _read_case(self, element: etree._Element, index: int) -> tuple[Case, list[Finding]]:
        findings = self._schema_findings(element, f"/Arendefil/Arende[{index}]", "S01")
        return build_case(element, index), findings


#: Where a node a schema error names stood in the file: its path and line. The XML reader finds
#: the path from the element tree; a JSON or CSV reader knows it from where it built the element.
Locate = Callable[[etree._Element, str | None], tuple[str, int | None]]


def schema_findings(
    schema: etree.XMLSchema,
    element: etree._Element,
    base: str,
    code: str,
    locate: Locate | None = None,
) -> list[Finding]:
    """Check one part of the file (a case, the header...) against its global declaration."""
    if schema.validate(element):
        return []
    findings: list[Finding] = []
    for error in schema.error_log:
        if len(findings) >= MAX_FINDINGS_PER_ELEMENT:
            break
        path = _error_path(element, base, error.message, error.line)
        line: int | None = error.line or None
        if locate is not None:
            # The node the message names, found the same way, then located in the original file.
            target = _error_target(element, error.message, error.line)
            _local, attribute = schema_messages.where(error.message)
            path, line = locate(target if target is not None else element, attribute)
        sv, en = schema_messages.translate(error.message, path)
        findings.append(Finding(code, Severity.ERROR, path, line, sv, en))
    return findings


def read_header(header: FileHeader, element: etree._Element) -> None:
    """Filhuvud's values into ``header``."""
    header.line = element.sourceline
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = child.tag[_QLEN:]
        header.lines.setdefault(name, child.sourceline)
        text = _text(child)
        if name == "FilId":
            header.file_id = text
        elif name == "Lopnummer":
            header.sequence = _int(text)
        elif name == "Skapad":
            header.created = text
        elif name == "Avsandarsystem":
            header.sender_system = text


def read_client(header: FileHeader, element: etree._Element) -> None:
    """Uppdragsgivare's values into ``header``."""
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = child.tag[_QLEN:]
        if name == "Organisationsnummer":
            header.client_orgnr = _text(child)
            header.lines["Organisationsnummer"] = child.sourceline
        elif name == "Namn":
            header.client_name = _text(child)


def build_summary(element: etree._Element) -> FileSummary:
    """The sender's control totals from Filsummering."""
    summary = FileSummary("/Arendefil/Filsummering", element.sourceline)
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = child.tag[_QLEN:]
        summary.lines.setdefault(name, child.sourceline)
        text = _text(child)
        if name == "AntalArenden":
            summary.case_count = _int(text)
        elif name == "AntalFordringar":
            summary.claim_count = _int(text)
        elif name == "SummaKapitalbelopp":
            summary.capital_sum = _decimal(text)
    return summary


def build_case(element: etree._Element, index: int) -> Case:
    """The case model of one ``Arende`` element, with XML paths and the elements' lines."""
    path = f"/Arendefil/Arende[{index}]"
    case = Case(path, element.sourceline, index=index)
    lines = case.lines
    debtors = case.debtors
    claims = case.claims
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        name = tag[_QLEN:]
        if name not in lines:
            lines[name] = child.sourceline
        if name == "Motpart":
            debtors.append(_read_debtor(child, f"{path}/Motpart[{len(debtors) + 1}]"))
        elif name == "Fordran":
            claims.append(_read_claim(child, f"{path}/Fordran[{len(claims) + 1}]"))
        elif name == "ArendeReferens":
            case.reference = _text(child)
        elif name == "Kundnummer":
            case.customer_number = _text(child)
        elif name == "Fordranstyp":
            case.claim_type = _text(child)
        elif name == "Kostnadsuppgifter":
            case.costs = "".join(child.itertext()).strip() or ("…" if len(child) else "")
        elif name == "Bilaga":
            attachment_path = f"{path}/Bilaga[{len(case.attachments) + 1}]"
            case.attachments.append(
                Attachment(
                    attachment_path,
                    child.sourceline,
                    filename=child.get("filnamn", ""),
                    sha256=child.get("sha256", ""),
                    mimetype=child.get("mimetyp"),
                )
            )
    return case


def _read_debtor(element: etree._Element, path: str) -> Debtor:
    debtor = Debtor(path, element.sourceline)
    lines = debtor.lines
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        name = tag[_QLEN:]
        if name not in lines:
            lines[name] = child.sourceline
        if name == "Typ":
            debtor.kind = _text(child)
        elif name == "Identitet":
            debtor.identity = _text(child)
        elif name == "Person":
            debtor.person = _read_person(child, f"{path}/Person")
        elif name == "Foretag":
            debtor.has_company_block = True
            for grandchild in child:
                if grandchild.tag == _Q + "Firma":
                    debtor.company_name = _text(grandchild)
                    lines["Foretag/Firma"] = grandchild.sourceline
        elif name == "Adress":
            debtor.address = _read_address(child, f"{path}/Adress")
        elif name == "Telefon":
            debtor.phone = _text(child)
        elif name == "Epost":
            debtor.email = _text(child)
        elif name == "SkyddadePersonuppgifter":
            debtor.protected = _text(child) in ("true", "1")
    return debtor


def _read_person(element: etree._Element, path: str) -> Person:
    person = Person(path, element.sourceline)
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = child.tag[_QLEN:]
        person.lines.setdefault(name, child.sourceline)
        if name == "Fornamn":
            person.given_names = _text(child)
        elif name == "Tilltalsnamn":
            person.preferred_name = _text(child)
        elif name == "Efternamn":
            person.surname = _text(child)
        elif name == "Firma":
            person.firm = _text(child)
    return person


def _read_address(element: etree._Element, path: str) -> Address:
    address = Address(path, element.sourceline)
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = child.tag[_QLEN:]
        address.lines.setdefault(name, child.sourceline)
        if name == "Utdelningsadress":
            address.street_lines.append(_text(child))
        elif name == "CoAdress":
            address.care_of = _text(child)
        elif name == "Postnummer":
            address.postal_code = child.text or ""
        elif name == "Postort":
            address.town = _text(child)
        elif name == "Land":
            address.country = _text(child) or "SE"
    return address


def _read_claim(element: etree._Element, path: str) -> Claim:
    claim = Claim(path, element.sourceline)
    lines = claim.lines
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        name = tag[_QLEN:]
        if name not in lines:
            lines[name] = child.sourceline
        if name == "Fakturanummer":
            claim.invoice_number = _text(child)
        elif name == "Diarienummer":
            claim.registry_number = _text(child)
        elif name == "FordranAvser":
            claim.basis = child.text or ""
        elif name == "Fakturadatum":
            claim.invoice_date = _date(_text(child))
        elif name == "Forfallodatum":
            claim.due_date = _date(_text(child))
        elif name == "Kapitalbelopp":
            claim.capital = Amount(_decimal(child.text), child.get("valuta", "SEK"))
        elif name == "KvarvarandeBelopp":
            claim.remaining = Amount(_decimal(child.text), child.get("valuta", "SEK"))
        elif name == "Ranta":
            claim.interest = Interest(
                f"{path}/Ranta",
                child.sourceline,
                kind=child.get("typ", ""),
                percent=_decimal(child.get("procent")),
                from_date=_date(child.get("franDatum", "")),
            )
        elif name == "Beslut":
            decision = Decision(f"{path}/Beslut", child.sourceline)
            for part in child:
                if part.tag == _Q + "Beslutsdatum":
                    decision.decision_date = _date(_text(part))
                elif part.tag == _Q + "LagakraftDatum":
                    decision.final_date = _date(_text(part))
            claim.decision = decision
        elif name == "Skuldgrupp":
            claim.debt_group = _text(child)
    return claim


def _error_target(element: etree._Element, message: str, line: int) -> etree._Element | None:
    """The node a schema error is about, found by its name and line."""
    local, _attribute = schema_messages.where(message)
    if local is None:
        return None
    for candidate in element.iter(_Q + local):
        if candidate.sourceline == line:
            return candidate
    return None


def _error_path(element: etree._Element, base: str, message: str, line: int) -> str:
    """The XPath-like path of the node a schema error is about, found by its name and line."""
    target = _error_target(element, message, line)
    if target is None:
        return base
    _local, attribute = schema_messages.where(message)
    steps: list[str] = []
    node = target
    while node is not None and node is not element:
        parent = node.getparent()
        if parent is None:
            break
        same = [sibling for sibling in parent if sibling.tag == node.tag]
        name = node.tag[_QLEN:] if isinstance(node.tag, str) else "?"
        steps.append(
            f"{name}[{same.index(node) + 1}]"
            if len(same) > 1 or name in ("Motpart", "Fordran", "Bilaga")
            else name
        )
        node = parent
    path = "/".join([base, *reversed(steps)]) if steps else base
    return f"{path}/@{attribute}" if attribute else path
