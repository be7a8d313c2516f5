"""The receipt (``Kvittens``, ``xsd/kvittens-1.xsd``): one per file that arrives.

Written incrementally with ``lxml.etree.xmlfile`` so a receipt for 100,000 cases never exists
as a tree in memory. The caller supplies everything that is not the verdict (ids, times, the
previous receipt's SHA-256), which keeps this module free of clocks and state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from lxml import etree

from gateway.domain.chain import GENESIS_SHA256
from gateway.domain.findings import Finding
from gateway.domain.judging import CaseStatus, FileVerdict
from gateway.formats import hardened
from gateway.fsutil import safe_file_name

NAMESPACE = "urn:inkasso-gateway:kvittens:1"
__all__ = [
    "GENESIS_SHA256",
    "ReceiptFacts",
    "ReceiptFormatError",
    "ReceiptStamp",
    "read_case_findings",
    "read_receipt_facts",
    "receipt_file_name",
    "write_receipt",
]
RECEIPT_VERSION = "1.0"

_Q = "{" + NAMESPACE + "}"
_FILE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


@dataclass(frozen=True, slots=True)
class ReceiptStamp:
    """What the receipt says about its own making."""

    receipt_id: str
    created: datetime
    received: datetime
    source: str
    previous_sha256: str
    gateway_version: str
    ruleset_version: str
    config_sha256: str
    #: The receipt's place in the receipt chain, from 1 (None: not written, as before it existed).
    chain_position: int | None = None


#: The original's name in a receipt's file name is cut to this many bytes of UTF-8, so that the
#: name with its file id, and the temporary name it is written under, fit any file system.
RECEIPT_NAME_MAX_BYTES = 180


def receipt_file_name(original_name: str, sha256: str, *, file_id: int | None = None) -> str:
    """``<original name>.<first 12 hex of sha256>.kvittens.xml``, made safe as a file name.

    ``file_id`` makes it unique when the plain name is taken (the same name and bytes arrived
    before on that day, or two names that are the same once cut): ``<name>.<sha12>.<id>.kvittens.xml``.

    >>> receipt_file_name("lst.xml", "3033a297494b" + "0" * 52)
    'lst.xml.3033a297494b.kvittens.xml'
    >>> receipt_file_name("lst.xml", "3033a297494b" + "0" * 52, file_id=7)
    'lst.xml.3033a297494b.7.kvittens.xml'
    """
    safe = safe_file_name(original_name, max_bytes=RECEIPT_NAME_MAX_BYTES)
    unique = f".{file_id}" if file_id is not None else ""
    return f"{safe}.{sha256[:12]}{unique}.kvittens.xml"


def _leaf(xf: Any, name: str, text: str) -> None:
    # xf.element, not a detached Element: a detached one is serialised with its own namespace
    # declaration (and an ns0: prefix) on every leaf.
    with xf.element(_Q + name):
        xf.write(text)


def _finding(xf: Any, finding: Finding) -> None:
    with xf.element(_Q + "Anmarkning"):
        for name, text in (
            ("Regel", finding.code),
            ("Allvarlighet", finding.severity.swedish),
            ("Plats", finding.path),
            ("Rad", str(finding.line) if finding.line else None),
            ("Meddelande", finding.message_sv),
            ("MeddelandeEn", finding.message_en),
        ):
            if text is not None:
                _leaf(xf, name, _xml_safe(text))
    xf.write("\n")


def _xml_safe(text: str) -> str:
    # A message may quote a value from a broken file; drop what XML 1.0 cannot carry.
    return "".join(char for char in text if char in "\t\n\r" or ord(char) >= 0x20)


class ReceiptSubject(Protocol):
    """What a receipt is about: a file as it arrived, and its verdict (the validation's
    report is one; formats depend on the domain only, never on the service)."""

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def sha256(self) -> str: ...

    @property
    def verdict(self) -> FileVerdict: ...


def write_receipt(
    out: BinaryIO,
    report: ReceiptSubject,
    stamp: ReceiptStamp,
    *,
    journal_id: str | None = None,
) -> None:
    """Write the receipt for ``report`` to ``out``; ``journal_id``: the journal the accepted
    cases joined (all of a file's cases are one client's, so one open journal)."""
    verdict = report.verdict
    header = verdict.header
    with etree.xmlfile(out, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element(_Q + "Kvittens", {"version": RECEIPT_VERSION}, nsmap={None: NAMESPACE}):
            _leaf(xf, "KvittensId", stamp.receipt_id)
            _leaf(xf, "Skapad", stamp.created.isoformat())
            with xf.element(_Q + "Fil"):
                _leaf(xf, "Namn", _xml_safe(report.name)[:255])
                _leaf(xf, "Kalla", stamp.source[:100])
                _leaf(xf, "Storlek", str(report.size))
                _leaf(xf, "Sha256", report.sha256)
                if header.file_id and _FILE_ID.match(header.file_id):
                    _leaf(xf, "FilId", header.file_id)
                if header.sequence is not None and header.sequence > 0:
                    _leaf(xf, "Lopnummer", str(header.sequence))
                _leaf(xf, "Mottagen", stamp.received.isoformat())
            if header.client_orgnr:
                with xf.element(_Q + "Uppdragsgivare"):
                    _leaf(xf, "Organisationsnummer", _xml_safe(header.client_orgnr)[:20])
            _leaf(xf, "Status", verdict.status.swedish)
            if verdict.duplicate_of:
                _leaf(xf, "TidigareKvittens", verdict.duplicate_of[:255])
            for finding in verdict.findings:
                _finding(xf, finding)
            for outcome in verdict.cases:
                xf.write("\n")
                with xf.element(_Q + "Arende"):
                    _leaf(xf, "ArendeReferens", _xml_safe(outcome.reference)[:100])
                    _leaf(xf, "Status", outcome.status.swedish)
                    if journal_id and outcome.status is CaseStatus.ACCEPTED:
                        _leaf(xf, "JournalId", journal_id)
                    for finding in outcome.findings:
                        _finding(xf, finding)
            xf.write("\n")
            with xf.element(_Q + "Summering"):
                _leaf(xf, "AntalArenden", str(verdict.case_count))
                _leaf(xf, "AntalGodkanda", str(verdict.accepted_count))
                _leaf(xf, "AntalUnderkanda", str(verdict.count(CaseStatus.REJECTED)))
                _leaf(xf, "AntalDubbletter", str(verdict.count(CaseStatus.DUPLICATE)))
                _leaf(xf, "SummaGodkantKapitalbelopp", f"{verdict.accepted_capital:.2f}")
            xf.write("\n")
            with xf.element(_Q + "Gateway"):
                _leaf(xf, "Version", stamp.gateway_version)
                _leaf(xf, "Regelversion", stamp.ruleset_version)
                _leaf(xf, "KonfigSha256", stamp.config_sha256)
            xf.write("\n")
            if stamp.chain_position is not None:
                _leaf(xf, "Kedjeposition", str(stamp.chain_position))
            _leaf(xf, "ForegaendeKvittensSha256", stamp.previous_sha256)
            xf.write("\n")


# -- reading receipts back (audit, trace) ------------------------------------------------------


class ReceiptFormatError(ValueError):
    """A receipt that is not readable XML (any more)."""


@dataclass(frozen=True, slots=True)
class ReceiptFacts:
    """What `audit verify` and `trace` need of a receipt."""

    file_sha256: str | None  # Fil/Sha256: the original's
    previous_sha256: str | None  # ForegaendeKvittensSha256: the chain link
    earlier_receipt: str | None  # TidigareKvittens, for a duplicate


def _root_children(path: Path) -> Iterator[etree._Element]:
    """Each child of the root once complete, dropped after: a receipt of 100,000 cases is read in
    constant memory. A hardened parser: no DTD, no entities, no network."""
    # A file object, never a path: lxml given a path would gunzip a compressed file unasked.
    with path.open("rb") as handle:
        yield from _children_of(handle, path.name)


def _children_of(handle: BinaryIO, name: str) -> Iterator[etree._Element]:
    try:
        for _, element in hardened.iterparse(handle, events=("end",)):
            parent = element.getparent()
            if parent is None or parent.getparent() is not None:
                continue
            yield element
            element.clear(keep_tail=False)
            while element.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as error:
        raise ReceiptFormatError(f"{name}: {error}") from error


def read_receipt_facts(path: Path) -> ReceiptFacts:
    original = previous = earlier = None
    for element in _root_children(path):
        if element.tag == _Q + "Fil":
            original = element.findtext(_Q + "Sha256")
        elif element.tag == _Q + "TidigareKvittens":
            earlier = element.text
        elif element.tag == _Q + "ForegaendeKvittensSha256":
            previous = element.text
    return ReceiptFacts(original, previous, earlier)


def read_case_findings(path: Path, reference: str) -> list[tuple[str, str, str]]:
    """(rule, Fel|Varning, message in English) of each finding the receipt lists for one case."""
    for element in _root_children(path):
        if element.tag == _Q + "Arende" and element.findtext(_Q + "ArendeReferens") == reference:
            return [
                (
                    finding.findtext(_Q + "Regel") or "",
                    finding.findtext(_Q + "Allvarlighet") or "",
                    finding.findtext(_Q + "MeddelandeEn") or "",
                )
                for finding in element.iterfind(_Q + "Anmarkning")
            ]
    return []
