"""`inkasso-gateway audit verify`: prove that nothing written was changed afterwards.

Three checks, each against the bytes on disk:

1. The receipt chain. Receipts are followed in chain order (each names the SHA-256 of the one
   before, from 64 zeros); every receipt's bytes must hash to what the store recorded when it was
   written *and* to what the next receipt names, and every receipt must name its predecessor. A
   receipt in ``outbox/receipts/`` that the chain does not know is a break too (a forged one).
2. Every original (archived, rejected or quarantined) must hash to the ``Fil/Sha256`` its own
   receipt records.
3. Every delivered journal kept in ``var/sent/`` must hash to what its journal receipt records
   (and to what the store recorded when it was built).

The store supplies only the order and the expected values; an auditor can redo the chain check
from the receipts alone (see the README). Breaks are reported in chain order: the first one is
where the trail stops being trustworthy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from lxml import etree

from gateway.adapters.folder import sha256_file
from gateway.domain.chain import GENESIS_SHA256
from gateway.formats.journal import RECEIPT_NAMESPACE as JOURNAL_RECEIPT_NAMESPACE
from gateway.formats.receipt import NAMESPACE as RECEIPT_NAMESPACE
from gateway.pipeline import Folders
from gateway.store import FileRecord, FileState, JournalState
from gateway.store.sqlite import SqliteStore

_RECEIPT = "{" + RECEIPT_NAMESPACE + "}"
_JOURNAL_RECEIPT = "{" + JOURNAL_RECEIPT_NAMESPACE + "}"
_DayFilter = Callable[[date | None], bool]


@dataclass(frozen=True, slots=True)
class Break:
    kind: str  # receipt-missing | receipt-altered | chain-broken | receipt-unknown | original-* | journal-*
    path: str  # the file that is wrong
    message: str


@dataclass(slots=True)
class AuditResult:
    receipts: int = 0
    originals: int = 0
    journals: int = 0
    breaks: list[Break] = field(default_factory=list)
    first_receipt: str | None = None
    last_receipt: str | None = None

    @property
    def ok(self) -> bool:
        return not self.breaks


def _short(sha256: str | None) -> str:
    return (sha256 or "(none)")[:16]


def _receipt_fields(path: Path) -> tuple[str | None, str | None]:
    """(Fil/Sha256, ForegaendeKvittensSha256) of a receipt, streamed (a receipt can be large)."""
    original = previous = None
    try:
        for _, element in etree.iterparse(
            str(path),
            events=("end",),
            tag=(_RECEIPT + "Sha256", _RECEIPT + "ForegaendeKvittensSha256"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
        ):
            parent = element.getparent()
            if element.tag == _RECEIPT + "ForegaendeKvittensSha256":
                previous = element.text
            elif parent is not None and parent.tag == _RECEIPT + "Fil":
                original = element.text
    except etree.XMLSyntaxError:
        return None, None
    return original, previous


def _journal_receipt_sha256(path: Path) -> str | None:
    try:
        tree = etree.parse(
            str(path), etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        )
    except (OSError, etree.XMLSyntaxError):
        return None
    found = tree.find(f"{_JOURNAL_RECEIPT}Fil/{_JOURNAL_RECEIPT}Sha256")
    return None if found is None else found.text


def verify(
    store: SqliteStore,
    folders: Folders,
    *,
    zone: ZoneInfo,
    period_from: date | None = None,
    period_to: date | None = None,
) -> AuditResult:
    """Check receipts, originals and sent journals (of the period, by day written)."""
    result = AuditResult()

    def in_period(moment_day: date | None) -> bool:
        if moment_day is None:
            return True
        return (period_from is None or moment_day >= period_from) and (
            period_to is None or moment_day <= period_to
        )

    chain = store.receipt_chain()
    known_receipts = {Path(record.receipt_path).resolve() for record in chain if record.receipt_path}
    previous: FileRecord | None = None
    for record in chain:
        day = record.judged_at.astimezone(zone).date() if record.judged_at else None
        if in_period(day):
            result.breaks.extend(_check_receipt(record, previous, result))
        previous = record
    head = store.receipt_chain_head()
    if chain and head != chain[-1].receipt_sha256:
        result.breaks.append(
            Break(
                "chain-broken",
                chain[-1].receipt_path or "",
                f"the chain ends at {_short(chain[-1].receipt_sha256)} but the store's head is {_short(head)}",
            )
        )
    result.breaks.extend(_unknown_receipts(folders, known_receipts, in_period))
    result.breaks.extend(_check_journals(store, folders, zone, in_period, result))
    return result


def _check_receipt(record: FileRecord, previous: FileRecord | None, result: AuditResult) -> Iterator[Break]:
    assert record.receipt_path is not None
    path = Path(record.receipt_path)
    if not path.exists() and record.state is FileState.JUDGED:
        path = path.with_name(f".{path.name}.tmp")  # committed, not yet renamed (in flight)
    expected_previous = previous.receipt_sha256 if previous is not None else GENESIS_SHA256
    if record.previous_receipt_sha256 != expected_previous:
        yield Break(
            "chain-broken",
            str(path),
            f"recorded after {_short(record.previous_receipt_sha256)}, which is not the receipt before it",
        )
    if not path.is_file():
        yield Break("receipt-missing", str(path), f"the receipt of {record.name} is missing")
        return
    result.receipts += 1
    result.first_receipt = result.first_receipt or path.name
    result.last_receipt = path.name
    actual = sha256_file(path)
    if actual != record.receipt_sha256:
        yield Break(
            "receipt-altered",
            str(path),
            f"its SHA-256 is {_short(actual)} but it was {_short(record.receipt_sha256)} when written "
            "(and the next receipt names that value): the receipt was changed",
        )
    original_sha256, named_previous = _receipt_fields(path)
    if named_previous != expected_previous:
        before = (
            Path(previous.receipt_path).name
            if previous is not None and previous.receipt_path
            else "(genesis)"
        )
        yield Break(
            "chain-broken",
            str(path),
            f"it names {_short(named_previous)} as the receipt before it, but that is {before} "
            f"({_short(expected_previous)})",
        )
    if record.final_path is None or record.state is not FileState.DONE:
        return
    original = Path(record.final_path)
    if not original.is_file():
        yield Break("original-missing", str(original), f"the original of {path.name} is missing")
        return
    result.originals += 1
    actual_original = sha256_file(original)
    if actual_original != (original_sha256 or record.sha256):
        yield Break(
            "original-altered",
            str(original),
            f"its SHA-256 is {_short(actual_original)} but its receipt {path.name} records "
            f"{_short(original_sha256)}: the original was changed",
        )


def _unknown_receipts(folders: Folders, known: set[Path], in_period: _DayFilter) -> Iterator[Break]:
    if not folders.receipts.is_dir():
        return
    for day_folder in sorted(folders.receipts.iterdir()):
        if not day_folder.is_dir() or day_folder == folders.journal_receipts:
            continue
        try:
            day = date.fromisoformat(day_folder.name)
        except ValueError:
            continue
        if not in_period(day):
            continue
        for receipt in sorted(day_folder.glob("*.kvittens.xml")):
            if receipt.resolve() not in known:
                yield Break(
                    "receipt-unknown",
                    str(receipt),
                    "a receipt the gateway never wrote (it is in no chain): forged or copied in",
                )


def _check_journals(
    store: SqliteStore, folders: Folders, zone: ZoneInfo, in_period: _DayFilter, result: AuditResult
) -> Iterator[Break]:
    for journal in store.journals(states=[JournalState.DELIVERED]):
        assert journal.delivered_at is not None
        if not in_period(journal.delivered_at.astimezone(zone).date()) or journal.file_name is None:
            continue
        sent = folders.sent / journal.file_name
        receipt = folders.journal_receipts / f"{journal.file_name}.kvittens.xml"
        if not sent.is_file():
            yield Break(
                "journal-missing", str(sent), f"the sent copy of journal {journal.journal_id} is missing"
            )
            continue
        result.journals += 1
        actual = sha256_file(sent)
        recorded = _journal_receipt_sha256(receipt) if receipt.is_file() else None
        if recorded is None:
            yield Break(
                "journal-receipt-missing",
                str(receipt),
                f"the journal receipt of {journal.journal_id} is missing",
            )
        elif actual != recorded:
            yield Break(
                "journal-altered",
                str(sent),
                f"its SHA-256 is {_short(actual)} but its journal receipt {receipt.name} records "
                f"{_short(recorded)}: the sent journal was changed",
            )
        if recorded is not None and recorded != journal.sha256:
            yield Break(
                "journal-receipt-altered",
                str(receipt),
                f"it records {_short(recorded)} but the journal was {_short(journal.sha256)} when built",
            )


def write_result(result: AuditResult, out: TextIO) -> None:
    """The first break first, with the file names; then the rest; or what was verified."""
    if result.ok:
        chain = (
            f"from {result.first_receipt} to {result.last_receipt}"
            if result.first_receipt
            else "(no receipts yet)"
        )
        out.write(
            f"OK: {result.receipts} receipt(s) in an unbroken chain {chain}; {result.originals} original(s) and "
            f"{result.journals} sent journal(s) match their receipts\n"
        )
        return
    first = result.breaks[0]
    out.write(f"BROKEN: {first.kind}: {first.path}\n  {first.message}\n")
    if len(result.breaks) > 1:
        out.write(f"{len(result.breaks) - 1} more problem(s):\n")
        for item in result.breaks[1:]:
            out.write(f"  {item.kind}: {item.path}: {item.message}\n")
    out.write(
        f"checked {result.receipts} receipt(s), {result.originals} original(s), {result.journals} sent journal(s)\n"
    )
