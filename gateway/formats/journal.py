"""The case journal (``Arendejournal``, ``xsd/arendejournal-1.xsd``) and its receipt (``Journalkvittens``).

A journal is the file delivered to Kammarkollegiet: a header, every accepted case exactly as
:class:`~gateway.domain.journal.JournalCase` holds it, and control totals with a manifest (the
SHA-256 over the cases' SHA-256s in order, :func:`gateway.domain.journal.manifest`). It is written
incrementally with ``lxml.etree.xmlfile``, so a journal of 100,000 cases never exists as a tree in
memory; counts, the capital sum and the manifest are accumulated on the way. Nothing here reads a
clock: the same header and cases always give the same bytes.

:func:`read_journal` reads a journal back (tests, audits), streaming, with a hardened parser, and
checks every ``ArendeSha256`` and the ``Journalsummering`` against the content.

Element names map onto the English field names as follows (Motpart and Fordran as in the case file):

=====================  ===============================
Journalhuvud           :class:`JournalHeader`
  JournalId            journal_id
  Lopnummer            sequence
  Uppdragsgivare       client_orgnr, client_name
  Skapad, Forseglad    created, sealed
  Godkand (Av, Tid)    approved_by, approved_at
  Gateway              gateway_version, ruleset_version, config_sha256
Arende                 :class:`~gateway.domain.journal.JournalCase`
  Motpart/Namn         JournalDebtor.name (one line)
  Kalla                source_sha256
  ArendeSha256         JournalCase.sha256()
Journalsummering       :class:`JournalTotals`
Journalkvittens        :class:`JournalDelivery`
  Fil (Namn, Storlek, Sha256)  file_name, size, sha256
  Forsok               attempts
  Arenden              references
=====================  ===============================
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO

from lxml import etree

from gateway.domain.journal import JournalCase, JournalClaim, JournalDebtor
from gateway.formats import hardened

__all__ = [
    "ARENDEJOURNAL",
    "JOURNALKVITTENS",
    "NAMESPACE",
    "RECEIPT_NAMESPACE",
    "JournalDelivery",
    "JournalFormatError",
    "JournalHeader",
    "JournalTotals",
    "journal_file_name",
    "read_journal",
    "read_journal_receipt_sha256",
    "write_journal",
    "write_journal_receipt",
]

NAMESPACE = "urn:inkasso-gateway:arendejournal:1"
RECEIPT_NAMESPACE = "urn:inkasso-gateway:journalkvittens:1"
#: Schema file names, for :func:`gateway.formats.schemas.load_schema`.
ARENDEJOURNAL = "arendejournal-1.xsd"
JOURNALKVITTENS = "journalkvittens-1.xsd"
JOURNAL_VERSION = "1.0"
RECEIPT_VERSION = "1.0"
#: Transports a journal receipt may name (the delivery section of the config).
TRANSPORTS = frozenset({"folder", "sftp"})
#: The only currency a journal carries (rule R06 rejects any other).
CURRENCY = "SEK"
#: Country of an address when the journal names none (as in the case file).
DEFAULT_COUNTRY = "SE"

_Q = "{" + NAMESPACE + "}"
_R = "{" + RECEIPT_NAMESPACE + "}"
_READ_CHUNK = 64 * 1024
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


class JournalFormatError(ValueError):
    """A journal file that is not a well-formed Arendejournal, or whose hashes or totals disagree."""


@dataclass(frozen=True, slots=True)
class JournalHeader:
    """Journalhuvud: which journal this is, whose, and when it was sealed and approved."""

    journal_id: str
    sequence: int
    client_orgnr: str
    client_name: str
    created: datetime
    sealed: datetime
    approved_by: str | None
    approved_at: datetime | None
    gateway_version: str
    ruleset_version: str
    config_sha256: str


@dataclass(frozen=True, slots=True)
class JournalTotals:
    """Journalsummering: the control totals of a journal."""

    case_count: int
    claim_count: int
    capital: Decimal
    manifest: str


@dataclass(frozen=True, slots=True)
class JournalDelivery:
    """What the journal receipt says: the delivered file, where it went and the cases in it."""

    journal_id: str
    sequence: int
    client_orgnr: str
    client_name: str
    file_name: str
    size: int
    sha256: str
    transport: str  # folder | sftp
    destination: str
    delivered: datetime
    attempts: int
    references: list[str]
    gateway_version: str
    ruleset_version: str
    config_sha256: str


class _Accumulator:
    """Counts, capital and manifest, gathered case by case while the journal streams out."""

    __slots__ = ("_digest", "capital", "case_count", "claim_count")

    def __init__(self) -> None:
        self.case_count = 0
        self.claim_count = 0
        self.capital = Decimal(0)
        # Incremental form of gateway.domain.journal.manifest(): one hex digest and "\n" per case,
        # so the hashes of 100,000 cases need not be held in a list.
        self._digest = hashlib.sha256()

    def add(self, case: JournalCase, case_sha256: str) -> None:
        self.case_count += 1
        self.claim_count += len(case.claims)
        self.capital += case.capital
        self._digest.update(case_sha256.encode("ascii") + b"\n")

    def totals(self) -> JournalTotals:
        return JournalTotals(self.case_count, self.claim_count, self.capital, self._digest.hexdigest())


def journal_file_name(client_id: str, sequence: int, *, packaged: bool) -> str:
    """``<client id>-<sequence, 6 digits>.xml``, or ``.zip`` for a journal with attachments.

    >>> journal_file_name("lst-exempel", 7, packaged=False)
    'lst-exempel-000007.xml'
    >>> journal_file_name("lst-exempel", 12, packaged=True)
    'lst-exempel-000012.zip'
    """
    # The same characters the config allows in a client id, so the name never leaves its folder.
    if not client_id or not all(char.isalnum() or char in "-_." for char in client_id):
        raise ValueError(f"client id {client_id!r} cannot be part of a file name")
    if sequence < 1:
        raise ValueError(f"journal sequence number must be positive, not {sequence}")
    return f"{client_id}-{sequence:06d}.{'zip' if packaged else 'xml'}"


# --- writing -------------------------------------------------------------------------------------


def _leaf(xf: Any, tag: str, text: str, attrib: dict[str, str] | None = None) -> None:
    with xf.element(tag, attrib or {}):
        xf.write(text)


def _leaf_if(xf: Any, tag: str, text: str | None) -> None:
    # None is "absent"; an empty string is written as an empty element and reads back as "".
    if text is not None:
        _leaf(xf, tag, text)


def _check_header(header: JournalHeader) -> None:
    if header.sequence < 1:
        raise ValueError(f"journal sequence number must be positive, not {header.sequence}")
    if (header.approved_by is None) != (header.approved_at is None):
        raise ValueError("a journal's approval needs both who (approved_by) and when (approved_at)")


def _write_header(xf: Any, header: JournalHeader) -> None:
    with xf.element(_Q + "Journalhuvud"):
        _leaf(xf, _Q + "JournalId", header.journal_id)
        _leaf(xf, _Q + "Lopnummer", str(header.sequence))
        with xf.element(_Q + "Uppdragsgivare"):
            _leaf(xf, _Q + "Organisationsnummer", header.client_orgnr)
            _leaf(xf, _Q + "Namn", header.client_name)
        _leaf(xf, _Q + "Skapad", header.created.isoformat())
        _leaf(xf, _Q + "Forseglad", header.sealed.isoformat())
        if header.approved_by is not None and header.approved_at is not None:
            with xf.element(_Q + "Godkand"):
                _leaf(xf, _Q + "Av", header.approved_by)
                _leaf(xf, _Q + "Tid", header.approved_at.isoformat())
        with xf.element(_Q + "Gateway"):
            _leaf(xf, _Q + "Version", header.gateway_version)
            _leaf(xf, _Q + "Regelversion", header.ruleset_version)
            _leaf(xf, _Q + "KonfigSha256", header.config_sha256)


def _has_address(debtor: JournalDebtor) -> bool:
    return bool(
        debtor.street_lines
        or debtor.care_of is not None
        or debtor.postal_code is not None
        or debtor.town is not None
        or debtor.country != DEFAULT_COUNTRY
    )


def _write_debtor(xf: Any, debtor: JournalDebtor) -> None:
    with xf.element(_Q + "Motpart"):
        _leaf(xf, _Q + "Typ", debtor.kind)
        _leaf(xf, _Q + "Identitet", debtor.identity)
        _leaf(xf, _Q + "Namn", debtor.name)
        if _has_address(debtor):
            with xf.element(_Q + "Adress"):
                for line in debtor.street_lines:
                    _leaf(xf, _Q + "Utdelningsadress", line)
                _leaf_if(xf, _Q + "CoAdress", debtor.care_of)
                _leaf_if(xf, _Q + "Postnummer", debtor.postal_code)
                _leaf_if(xf, _Q + "Postort", debtor.town)
                _leaf(xf, _Q + "Land", debtor.country)
        _leaf_if(xf, _Q + "Telefon", debtor.phone)
        _leaf_if(xf, _Q + "Epost", debtor.email)
        # Always explicit: the receiver must never have to guess about a protected identity.
        _leaf(xf, _Q + "SkyddadePersonuppgifter", "true" if debtor.protected else "false")


def _write_claim(xf: Any, claim: JournalClaim, reference: str) -> None:
    if claim.interest_kind is None and (
        claim.interest_percent is not None or claim.interest_from is not None
    ):
        raise ValueError(f"case {reference!r}: interest percent or start date without an interest kind")
    if claim.decision_date is None and claim.final_date is not None:
        raise ValueError(f"case {reference!r}: a decision's final date without the decision date")
    with xf.element(_Q + "Fordran"):
        _leaf_if(xf, _Q + "Fakturanummer", claim.invoice_number)
        _leaf_if(xf, _Q + "Diarienummer", claim.registry_number)
        _leaf(xf, _Q + "FordranAvser", claim.basis)
        _leaf(xf, _Q + "Fakturadatum", claim.invoice_date)
        _leaf(xf, _Q + "Forfallodatum", claim.due_date)
        _leaf(xf, _Q + "Kapitalbelopp", claim.capital, {"valuta": CURRENCY})
        if claim.remaining is not None:
            _leaf(xf, _Q + "KvarvarandeBelopp", claim.remaining, {"valuta": CURRENCY})
        if claim.interest_kind is not None:
            interest = {"typ": claim.interest_kind}
            if claim.interest_percent is not None:
                interest["procent"] = claim.interest_percent
            if claim.interest_from is not None:
                interest["franDatum"] = claim.interest_from
            with xf.element(_Q + "Ranta", interest):
                pass
        if claim.decision_date is not None:
            with xf.element(_Q + "Beslut"):
                _leaf(xf, _Q + "Beslutsdatum", claim.decision_date)
                _leaf_if(xf, _Q + "LagakraftDatum", claim.final_date)


def attachment_path(reference: str, name: str) -> str:
    """Where an attachment lies in a packaged journal: ``bilagor/<ArendeReferens>/<filnamn>``.

    One folder per case: two cases may each carry a "faktura.pdf". The reference is made safe as a
    folder name; the attachment's name was checked safe at intake (rule A06).
    """
    folder = "".join(char if char.isalnum() or char in "-_." else "_" for char in reference).strip(".") or "_"
    return f"bilagor/{folder}/{name}"


def _write_case(xf: Any, case: JournalCase, case_sha256: str) -> None:
    with xf.element(_Q + "Arende"):
        _leaf(xf, _Q + "ArendeReferens", case.reference)
        _leaf_if(xf, _Q + "Kundnummer", case.customer_number)
        for debtor in case.debtors:
            _write_debtor(xf, debtor)
        for claim in case.claims:
            _write_claim(xf, claim, case.reference)
        for position, attachment in enumerate(case.attachments):
            attributes = {"filnamn": attachment}
            if position < len(case.attachment_sha256):
                attributes["sha256"] = case.attachment_sha256[position]
                attributes["sokvag"] = attachment_path(case.reference, attachment)
            with xf.element(_Q + "Bilaga", attributes):
                pass
        _leaf(xf, _Q + "Kalla", case.source_sha256)
        _leaf(xf, _Q + "ArendeSha256", case_sha256)


def write_journal(out: BinaryIO, header: JournalHeader, cases: Iterable[JournalCase]) -> JournalTotals:
    """Write the journal of ``cases`` (any iterable, consumed once) to ``out``; return its totals.

    Raises ValueError before writing anything when there are no cases or the header is
    inconsistent; a value XML cannot carry (a control character) raises ValueError part-way, so
    write to a temporary file and rename (as the delivery does).
    """
    _check_header(header)
    remaining = iter(cases)
    first = next(remaining, None)
    if first is None:
        raise ValueError("a journal holds at least one case")
    accumulator = _Accumulator()
    with etree.xmlfile(out, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element(_Q + "Arendejournal", {"version": JOURNAL_VERSION}, nsmap={None: NAMESPACE}):
            # One top-level part per line: a person can page through a journal and diff two.
            xf.write("\n")
            _write_header(xf, header)
            xf.write("\n")
            for case in itertools.chain((first,), remaining):
                case_sha256 = case.sha256()
                _write_case(xf, case, case_sha256)
                xf.write("\n")
                accumulator.add(case, case_sha256)
            totals = accumulator.totals()
            with xf.element(_Q + "Journalsummering"):
                _leaf(xf, _Q + "AntalArenden", str(totals.case_count))
                _leaf(xf, _Q + "AntalFordringar", str(totals.claim_count))
                # Exact and never in exponent notation (xs:decimal has none).
                _leaf(xf, _Q + "SummaKapitalbelopp", format(totals.capital, "f"))
                _leaf(xf, _Q + "Manifest", totals.manifest)
            xf.write("\n")
    return totals


def write_journal_receipt(out: BinaryIO, delivery: JournalDelivery) -> None:
    """Write the journal receipt (``Journalkvittens``) for a delivered journal to ``out``."""
    if delivery.sequence < 1:
        raise ValueError(f"journal sequence number must be positive, not {delivery.sequence}")
    if delivery.attempts < 1:
        raise ValueError(f"a delivered journal took at least one attempt, not {delivery.attempts}")
    if delivery.transport not in TRANSPORTS:
        raise ValueError(f"transport {delivery.transport!r} is not one of {sorted(TRANSPORTS)}")
    if not delivery.references:
        raise ValueError("a delivered journal holds at least one case")
    with etree.xmlfile(out, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element(
            _R + "Journalkvittens", {"version": RECEIPT_VERSION}, nsmap={None: RECEIPT_NAMESPACE}
        ):
            _leaf(xf, _R + "JournalId", delivery.journal_id)
            _leaf(xf, _R + "Lopnummer", str(delivery.sequence))
            with xf.element(_R + "Uppdragsgivare"):
                _leaf(xf, _R + "Organisationsnummer", delivery.client_orgnr)
                if delivery.client_name:
                    _leaf(xf, _R + "Namn", delivery.client_name)
            with xf.element(_R + "Fil"):
                _leaf(xf, _R + "Namn", delivery.file_name)
                _leaf(xf, _R + "Storlek", str(delivery.size))
                _leaf(xf, _R + "Sha256", delivery.sha256)
            _leaf(xf, _R + "Transport", delivery.transport)
            _leaf(xf, _R + "Destination", delivery.destination)
            _leaf(xf, _R + "Levererad", delivery.delivered.isoformat())
            _leaf(xf, _R + "Forsok", str(delivery.attempts))
            with xf.element(_R + "Arenden"):
                for reference in delivery.references:
                    _leaf(xf, _R + "ArendeReferens", reference)
            with xf.element(_R + "Gateway"):
                _leaf(xf, _R + "Version", delivery.gateway_version)
                _leaf(xf, _R + "Regelversion", delivery.ruleset_version)
                _leaf(xf, _R + "KonfigSha256", delivery.config_sha256)


# --- reading -------------------------------------------------------------------------------------


def _where(element: etree._Element) -> str:
    return f"{etree.QName(element).localname} (line {element.sourceline})"


def _optional(element: etree._Element, name: str) -> str | None:
    child = element.find(_Q + name)
    if child is None:
        return None
    return child.text or ""


def _required(element: etree._Element, name: str) -> str:
    text = _optional(element, name)
    if text is None:
        raise JournalFormatError(f"{_where(element)} has no {name}")
    return text


def _child(element: etree._Element, name: str) -> etree._Element:
    child = element.find(_Q + name)
    if child is None:
        raise JournalFormatError(f"{_where(element)} has no {name}")
    return child


def _datetime(element: etree._Element, name: str) -> datetime:
    text = _required(element, name)
    try:
        return datetime.fromisoformat(text)
    except ValueError as error:
        raise JournalFormatError(f"{_where(element)}: {name} {text!r} is not a date and time") from error


def _integer(element: etree._Element, name: str) -> int:
    text = _required(element, name)
    try:
        return int(text)
    except ValueError as error:
        raise JournalFormatError(f"{_where(element)}: {name} {text!r} is not a whole number") from error


def _read_header(element: etree._Element) -> JournalHeader:
    client = _child(element, "Uppdragsgivare")
    approval = element.find(_Q + "Godkand")
    gateway = _child(element, "Gateway")
    return JournalHeader(
        journal_id=_required(element, "JournalId"),
        sequence=_integer(element, "Lopnummer"),
        client_orgnr=_required(client, "Organisationsnummer"),
        client_name=_required(client, "Namn"),
        created=_datetime(element, "Skapad"),
        sealed=_datetime(element, "Forseglad"),
        approved_by=_required(approval, "Av") if approval is not None else None,
        approved_at=_datetime(approval, "Tid") if approval is not None else None,
        gateway_version=_required(gateway, "Version"),
        ruleset_version=_required(gateway, "Regelversion"),
        config_sha256=_required(gateway, "KonfigSha256"),
    )


def _read_debtor(element: etree._Element) -> JournalDebtor:
    address = element.find(_Q + "Adress")
    protected = _optional(element, "SkyddadePersonuppgifter")
    if protected is not None and protected.strip() not in _TRUE | _FALSE:
        raise JournalFormatError(f"{_where(element)}: SkyddadePersonuppgifter {protected!r} is not a boolean")
    return JournalDebtor(
        kind=_required(element, "Typ"),
        identity=_required(element, "Identitet"),
        name=_required(element, "Namn"),
        street_lines=tuple(
            line.text or ""
            for line in (address.iterfind(_Q + "Utdelningsadress") if address is not None else ())
        ),
        care_of=_optional(address, "CoAdress") if address is not None else None,
        postal_code=_optional(address, "Postnummer") if address is not None else None,
        town=_optional(address, "Postort") if address is not None else None,
        country=_required(address, "Land") if address is not None else DEFAULT_COUNTRY,
        phone=_optional(element, "Telefon"),
        email=_optional(element, "Epost"),
        protected=protected is not None and protected.strip() in _TRUE,
    )


def _read_claim(element: etree._Element) -> JournalClaim:
    interest = element.find(_Q + "Ranta")
    decision = element.find(_Q + "Beslut")
    return JournalClaim(
        invoice_number=_optional(element, "Fakturanummer"),
        registry_number=_optional(element, "Diarienummer"),
        basis=_required(element, "FordranAvser"),
        invoice_date=_required(element, "Fakturadatum"),
        due_date=_required(element, "Forfallodatum"),
        capital=_required(element, "Kapitalbelopp"),
        remaining=_optional(element, "KvarvarandeBelopp"),
        interest_kind=interest.get("typ") if interest is not None else None,
        interest_percent=interest.get("procent") if interest is not None else None,
        interest_from=interest.get("franDatum") if interest is not None else None,
        decision_date=_required(decision, "Beslutsdatum") if decision is not None else None,
        final_date=_optional(decision, "LagakraftDatum") if decision is not None else None,
    )


def _read_case(element: etree._Element) -> tuple[JournalCase, str]:
    case = JournalCase(
        reference=_required(element, "ArendeReferens"),
        customer_number=_optional(element, "Kundnummer"),
        debtors=tuple(_read_debtor(debtor) for debtor in element.iterfind(_Q + "Motpart")),
        claims=tuple(_read_claim(claim) for claim in element.iterfind(_Q + "Fordran")),
        attachments=tuple(bilaga.get("filnamn", "") for bilaga in element.iterfind(_Q + "Bilaga")),
        attachment_sha256=tuple(
            bilaga.get("sha256", "") for bilaga in element.iterfind(_Q + "Bilaga") if bilaga.get("sha256")
        ),
        source_sha256=_required(element, "Kalla"),
    )
    return case, _required(element, "ArendeSha256")


def _read_totals(element: etree._Element) -> JournalTotals:
    text = _required(element, "SummaKapitalbelopp")
    try:
        capital = Decimal(text)
    except InvalidOperation as error:
        raise JournalFormatError(
            f"{_where(element)}: SummaKapitalbelopp {text!r} is not a decimal"
        ) from error
    return JournalTotals(
        case_count=_integer(element, "AntalArenden"),
        claim_count=_integer(element, "AntalFordringar"),
        capital=capital,
        manifest=_required(element, "Manifest"),
    )


def _events(source: BinaryIO) -> Iterator[etree._Element]:
    """The journal's top-level parts as each one ends, from a hardened streaming parser."""
    parser = hardened.pull_parser(events=("start", "end"))
    try:
        while chunk := source.read(_READ_CHUNK):
            parser.feed(chunk)
            yield from _parts(parser)
        parser.close()
        yield from _parts(parser)
    except etree.XMLSyntaxError as error:
        raise JournalFormatError(f"not well-formed XML: {error}") from error


def _check_root(root: etree._Element) -> None:
    if root.getroottree().docinfo.doctype:
        # A journal never has one; an entity it declared would silently drop text on reading.
        raise JournalFormatError("a journal must not have a DOCTYPE")
    if root.tag != _Q + "Arendejournal" or root.get("version") != JOURNAL_VERSION:
        raise JournalFormatError(
            f"not an Arendejournal version {JOURNAL_VERSION}: root {etree.QName(root).text}"
        )


def _parts(parser: etree.XMLPullParser) -> Iterator[etree._Element]:
    for event, element in parser.read_events():
        if not isinstance(element, etree._Element):
            continue
        parent = element.getparent()
        if event == "start":
            if parent is None:
                _check_root(element)  # refused before a single part is read
            continue
        if parent is None or parent.getparent() is not None:
            continue  # only the root's children are parts
        yield element
        # Constant memory: forget each part once it has been read.
        element.clear(keep_tail=False)
        while element.getprevious() is not None:
            del parent[0]


def read_journal(
    source: BinaryIO, *, verify: bool = True
) -> tuple[JournalHeader, list[JournalCase], JournalTotals]:
    """Read a journal back: its header, its cases in order and the totals it states.

    With ``verify`` (the default), every ArendeSha256 and the whole Journalsummering (counts,
    capital sum, manifest) must agree with the content, else JournalFormatError; an audit that
    wants to list every disagreement passes ``verify=False`` and compares itself. The structure is
    read, not validated: check a journal against :data:`ARENDEJOURNAL` for that.
    """
    header: JournalHeader | None = None
    cases: list[JournalCase] = []
    stated: JournalTotals | None = None
    accumulator = _Accumulator()
    for part in _events(source):
        name = etree.QName(part).localname
        if name == "Journalhuvud" and header is None and not cases:
            header = _read_header(part)
        elif name == "Arende" and header is not None and stated is None:
            case, stated_sha256 = _read_case(part)
            actual_sha256 = case.sha256()
            if verify and stated_sha256 != actual_sha256:
                raise JournalFormatError(
                    f"case {case.reference!r} ({_where(part)}): ArendeSha256 {stated_sha256} "
                    f"but the content hashes to {actual_sha256}"
                )
            cases.append(case)
            accumulator.add(case, actual_sha256)
        elif name == "Journalsummering" and header is not None and stated is None:
            stated = _read_totals(part)
        else:
            raise JournalFormatError(f"unexpected {_where(part)}")
    if header is None or stated is None or not cases:
        raise JournalFormatError("a journal needs a Journalhuvud, at least one Arende and a Journalsummering")
    if verify and stated != accumulator.totals():
        raise JournalFormatError(f"Journalsummering says {stated} but the cases give {accumulator.totals()}")
    return header, cases, stated


def read_journal_receipt_sha256(source: BinaryIO) -> str | None:
    """The Fil/Sha256 a journal receipt records (a small file: parsed whole, hardened)."""
    try:
        root = hardened.parse(source).getroot()
    except etree.XMLSyntaxError as error:
        raise JournalFormatError(f"the journal receipt is not readable XML: {error}") from error
    return root.findtext(f"{_R}Fil/{_R}Sha256")
