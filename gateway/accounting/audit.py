"""`inkasso-gateway audit verify`: prove that nothing written was changed afterwards.

Four checks, each against the bytes on disk:

1. The receipt chain. Receipts are followed in chain order (each names the SHA-256 of the one
   before, from 64 zeros); every receipt's bytes must hash to what the store recorded when it was
   written *and* to what the next receipt names, and every receipt must name its predecessor.
2. Every original (archived, rejected or quarantined) must hash to the ``Fil/Sha256`` its own
   receipt records.
3. Every delivered journal kept in ``var/sent/`` must hash to what its journal receipt records
   (and to what the store recorded when it was built), and the journal receipt to what the store
   recorded when it was written.
4. Nothing is there that the gateway did not write: a receipt, journal receipt, original or sent
   journal the store does not know is a break (forged, or copied in).

The store supplies only the order and the expected values; an auditor can redo the chain check
from the receipts alone (see the README). The chain and the store's head are read as of one moment
(a read transaction), so a daemon writing meanwhile causes no false alarm. Memory stays flat: the
chain is walked one indexed lookup at a time and receipts are parsed as streams. Breaks are
reported in chain order: the first one is where the trail stops being trustworthy. Paths and
messages pass through the identity masker (a file name may hold a personnummer).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from gateway.domain.chain import GENESIS_SHA256
from gateway.domain.identity import mask_identities
from gateway.folders import Folders
from gateway.formats.journal import JournalFormatError, read_journal_receipt_sha256
from gateway.formats.receipt import ReceiptFormatError, read_receipt_facts
from gateway.fsutil import sha256_file
from gateway.store import FileRecord, FileState, JournalRecord, JournalState
from gateway.store.roles import LedgerReader

_DayFilter = Callable[[date | None], bool]
#: Files next to the originals that are not originals: the quarantine's reason files.
_NOT_ORIGINALS = (".reason.txt",)


@dataclass(frozen=True, slots=True)
class Break:
    kind: str  # receipt-missing | receipt-altered | receipt-unreadable | chain-broken | *-unknown | ...
    path: str  # the file that is wrong
    message: str


#: Breaks kept with their details (the rest are counted): a lost folder must not fill memory.
MAX_BREAKS = 1000


@dataclass(slots=True)
class AuditResult:
    receipts: int = 0
    originals: int = 0
    journals: int = 0
    breaks: list[Break] = field(default_factory=list)
    more_breaks: int = 0  # beyond MAX_BREAKS
    first_receipt: str | None = None
    last_receipt: str | None = None
    whole_store: bool = True  # False when limited to a period

    @property
    def ok(self) -> bool:
        return not self.breaks

    def add(self, breaks: Iterable[Break]) -> None:
        for item in breaks:
            if len(self.breaks) < MAX_BREAKS:
                self.breaks.append(item)
            else:
                self.more_breaks += 1


def _short(sha256: str | None) -> str:
    return (sha256 or "(none)")[:16]


def verify(
    store: LedgerReader,
    folders: Folders,
    *,
    zone: ZoneInfo,
    period_from: date | None = None,
    period_to: date | None = None,
    anchors: Sequence[str] = (),
) -> AuditResult:
    """Check receipts, originals and sent journals (those written on a day of the period)."""
    result = AuditResult(whole_store=period_from is None and period_to is None)

    def in_period(day: date | None) -> bool:
        if day is None:
            return True
        return (period_from is None or day >= period_from) and (period_to is None or day <= period_to)

    with store.snapshot():
        chained = 0
        previous: FileRecord | None = None
        unseen_anchors = {anchor.lower() for anchor in anchors}
        for record in store.receipt_chain():
            chained += 1
            unseen_anchors.discard(record.receipt_sha256 or "")
            day = record.judged_at.astimezone(zone).date() if record.judged_at else None
            if in_period(day):
                result.add(_check_receipt(record, previous, result, folders))
            previous = record
        recorded = store.receipt_count()
        head = store.receipt_chain_head()
        if chained != recorded:
            result.add(
                (
                    Break(
                        "chain-broken",
                        str(folders.receipts),
                        f"{recorded - chained} recorded receipt(s) cannot be reached from the first one: the chain "
                        f"breaks after {previous.receipt_path if previous else '(genesis)'}",
                    ),
                )
            )
        if head != (previous.receipt_sha256 if previous else GENESIS_SHA256):
            result.add(
                (
                    Break(
                        "chain-broken",
                        previous.receipt_path or "" if previous else str(folders.receipts),
                        f"the chain ends at {_short(previous.receipt_sha256 if previous else GENESIS_SHA256)} but "
                        f"the store's head is {_short(head)}",
                    ),
                )
            )
        result.add(
            Break(
                "anchor-missing",
                anchor,
                "no receipt in the chain has this SHA-256: the chain was rewritten since it was noted "
                "(or it was never a receipt of this gateway)",
            )
            for anchor in sorted(unseen_anchors)
        )
        result.add(_check_journals(store, folders, zone, in_period, result))
    # After the snapshot: a file written meanwhile is known by now, and is no false alarm.
    result.add(_unknown_files(store, folders, in_period))
    return result


def _unreadable(path: Path, error: OSError) -> Break:
    return Break("unreadable", str(path), f"cannot be read by this user: {error.strerror or error}")


def _check_receipt(
    record: FileRecord, previous: FileRecord | None, result: AuditResult, folders: Folders
) -> Iterator[Break]:
    """The receipt's own checks; a file this user may not read is a break, never a traceback."""
    try:
        yield from _receipt_checks(record, previous, result, folders)
    except OSError as error:
        yield _unreadable(Path(error.filename) if error.filename else folders.receipts, error)


def _receipt_checks(
    record: FileRecord, previous: FileRecord | None, result: AuditResult, folders: Folders
) -> Iterator[Break]:
    assert record.receipt_path is not None
    path = folders.located(record.receipt_path)
    if not path.exists() and record.state is FileState.JUDGED:
        path = path.with_name(f".{path.name}.tmp")  # committed, not yet renamed (in flight)
    expected_previous = previous.receipt_sha256 if previous is not None else GENESIS_SHA256
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
            f"its SHA-256 is {_short(actual)} but it was {_short(record.receipt_sha256)} when written: the "
            "receipt was changed",
        )
    try:
        facts = read_receipt_facts(path)
    except ReceiptFormatError as error:
        yield Break("receipt-unreadable", str(path), f"not readable as XML any more: {error}")
        return
    original_sha256, named_previous = facts.file_sha256, facts.previous_sha256
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
    original = folders.located(record.final_path)
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


def _check_journals(
    store: LedgerReader, folders: Folders, zone: ZoneInfo, in_period: _DayFilter, result: AuditResult
) -> Iterator[Break]:
    for journal in store.journals(states=[JournalState.DELIVERED]):
        try:
            yield from _journal_checks(journal, folders, zone, in_period, result)
        except OSError as error:
            yield _unreadable(Path(error.filename) if error.filename else folders.sent, error)


def _journal_checks(
    journal: JournalRecord, folders: Folders, zone: ZoneInfo, in_period: _DayFilter, result: AuditResult
) -> Iterator[Break]:
    assert journal.delivered_at is not None
    if not in_period(journal.delivered_at.astimezone(zone).date()):
        return
    if journal.file_name is None:
        yield Break("journal-missing", journal.journal_id, "delivered, but no file name was recorded")
        return
    sent = folders.sent / journal.file_name
    receipt = folders.journal_receipts / f"{journal.file_name}.kvittens.xml"
    if not sent.is_file():
        yield Break("journal-missing", str(sent), f"the sent copy of journal {journal.journal_id} is missing")
        return
    result.journals += 1
    actual = sha256_file(sent)
    if not receipt.is_file():
        yield Break(
            "journal-receipt-missing",
            str(receipt),
            f"the journal receipt of {journal.journal_id} is missing",
        )
        return
    if journal.receipt_sha256 is not None and sha256_file(receipt) != journal.receipt_sha256:
        yield Break(
            "journal-receipt-altered",
            str(receipt),
            f"its SHA-256 is {_short(sha256_file(receipt))} but it was {_short(journal.receipt_sha256)} when "
            "written: the journal receipt was changed",
        )
    try:
        with receipt.open("rb") as source:
            recorded = read_journal_receipt_sha256(source)
    except JournalFormatError as error:
        yield Break("journal-receipt-unreadable", str(receipt), f"not readable as XML any more: {error}")
        return
    if actual != recorded:
        yield Break(
            "journal-altered",
            str(sent),
            f"its SHA-256 is {_short(actual)} but its journal receipt {receipt.name} records "
            f"{_short(recorded)}: the sent journal was changed",
        )
    elif recorded != journal.sha256:
        yield Break(
            "journal-altered",
            str(sent),
            f"it and its journal receipt say {_short(recorded)} but the journal was {_short(journal.sha256)} "
            "when built: both were changed",
        )


def _day_of(folder: Path, top: Path) -> date | None:
    """The day in a dated folder's name (receipts/2026-11-25/...), None when not dated."""
    try:
        return date.fromisoformat(folder.relative_to(top).parts[0]) if folder != top else None
    except (ValueError, IndexError):
        return None


#: A file the store does not know yet, written this recently, may be in flight (a journal being
#: delivered beside the audit): it is looked up again for up to this long before it is a break.
IN_FLIGHT_SECONDS = 30.0
IN_FLIGHT_WAIT_SECONDS = 5.0


def _unknown_files(store: LedgerReader, folders: Folders, in_period: _DayFilter) -> Iterator[Break]:
    """Files in the gateway's folders that it never wrote.

    Runs after the snapshot against the live store: a file written after the snapshot is known
    by now. One written in the last moments (the daemon publishes a file a moment before it
    commits its record: a journal built, a journal receipt written) is looked up again for a few
    seconds before it counts as forged."""
    suspects = list(_unrecorded(store, folders, in_period))
    deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
    while suspects:
        recent = [s for s in suspects if _written_within(Path(s.path), IN_FLIGHT_SECONDS)]
        if not recent or time.monotonic() > deadline:
            break
        time.sleep(0.25)
        known = _recorded_now(store, folders, {s.path for s in recent})
        suspects = [s for s in suspects if s.path not in known]
    yield from suspects


def _written_within(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime < seconds
    except OSError:
        return False


def _recorded_now(store: LedgerReader, folders: Folders, paths: set[str]) -> set[str]:
    """Which of ``paths`` the store knows now."""
    known = set()
    for path in paths:
        name = Path(path).name
        if Path(path).parent == folders.sent:
            if store.journal_file_known(name):
                known.add(path)
        elif Path(path).parent == folders.journal_receipts:
            if store.journal_file_known(name.removesuffix(".kvittens.xml")):
                known.add(path)
        elif store.knows_path(folders.stored(Path(path))):
            known.add(path)
    return known


def _unrecorded(store: LedgerReader, folders: Folders, in_period: _DayFilter) -> Iterator[Break]:
    for top, kind in (
        (folders.receipts, "receipt-unknown"),
        (folders.archive, "original-unknown"),
        (folders.rejected, "original-unknown"),
        (folders.quarantine, "original-unknown"),
    ):
        if not top.is_dir():
            continue
        for path in sorted(p for p in top.rglob("*") if p.is_file()):
            if path.is_relative_to(folders.journal_receipts) or path.name.endswith(_NOT_ORIGINALS):
                continue
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                continue  # being written right now
            day = _day_of(path.parent, top)
            if day is not None and not in_period(day):
                continue
            if not store.knows_path(folders.stored(path)):
                yield Break(
                    kind,
                    str(path),
                    "a file the gateway never wrote (it is in no record): forged or copied in",
                )
    built = [journal for journal in store.journals() if journal.file_name]
    sent_names = {j.file_name for j in built if j.state is JournalState.DELIVERED}
    building = {j.file_name for j in built if j.state is not JournalState.DELIVERED}
    for top, suffix, kind in (
        (folders.sent, "", "journal-unknown"),
        (folders.journal_receipts, ".kvittens.xml", "journal-receipt-unknown"),
    ):
        if not top.is_dir():
            continue
        for path in sorted(p for p in top.iterdir() if p.is_file() and not p.name.startswith(".")):
            name = path.name.removesuffix(suffix) if suffix else path.name
            if name in sent_names or name in building:
                continue
            yield Break(kind, str(path), "a journal file the gateway never delivered: forged or copied in")


def write_result(result: AuditResult, out: TextIO) -> None:
    """The first break first, with the file names; then the rest; or what was verified."""
    lines: list[str] = []
    scope = "" if result.whole_store else " in the period"
    if result.ok:
        if result.first_receipt:
            chain = f"in an unbroken chain from {result.first_receipt} to {result.last_receipt}"
        else:
            chain = "(none" + (" in the period)" if not result.whole_store else " yet)")
        lines.append(
            f"OK: {result.receipts} receipt(s){scope} {chain}; {result.originals} original(s) and "
            f"{result.journals} sent journal(s) match their receipts"
        )
    else:
        first = result.breaks[0]
        lines += [f"BROKEN: {first.kind}: {first.path}", f"  {first.message}"]
        if len(result.breaks) > 1:
            lines.append(f"{len(result.breaks) - 1 + result.more_breaks} more problem(s):")
            lines += [f"  {item.kind}: {item.path}: {item.message}" for item in result.breaks[1:]]
        if result.more_breaks:
            lines.append(f"  ... and {result.more_breaks} more")
        lines.append(
            f"checked {result.receipts} receipt(s){scope}, {result.originals} original(s), "
            f"{result.journals} sent journal(s)"
        )
    for line in lines:
        out.write(mask_identities(line) + "\n")
