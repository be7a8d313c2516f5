"""`inkasso-gateway trace FILE|CASE-REF|JOURNAL-ID`: the whole history of one thing, in time order.

A file: when it arrived (and when its producer finished writing it), each attempt that failed,
the verdict and the findings per rule, the receipt, where the original went, and the journals its
cases joined. A case: its file, its own findings (read from the receipt), its journal and that
journal's sealing, approval and delivery. A journal: its files, cases, sealing, approval, each
delivery attempt, the delivered file and its journal receipt. Identity numbers are masked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from gateway.accounting.reports.model import format_ore
from gateway.domain.identity import mask_identities
from gateway.folders import Folders
from gateway.formats.receipt import ReceiptFormatError, read_case_findings, read_receipt_facts
from gateway.store import FileRecord, JournalRecord, StoredCase
from gateway.store.roles import TraceReader

#: Cases of one file listed by `trace FILE` (the rest are counted).
CASES_LISTED = 20


@dataclass(frozen=True, slots=True)
class Step:
    at: datetime | None
    text: str


def _when(moment: datetime | None, zone: ZoneInfo) -> str:
    return "" if moment is None else moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


class Tracer:
    def __init__(self, store: TraceReader, folders: Folders, zone: ZoneInfo) -> None:
        self._store = store
        self._folders = folders
        self._zone = zone

    def trace(self, key: str, out: TextIO) -> bool:
        """Print the history of what ``key`` names; False when nothing is known by it."""
        sections: list[tuple[str, Iterable[Step]]] = []
        journal = self._find_journal(key)
        if journal is not None:
            sections.append((f"Journal {journal.journal_id}", self._journal_steps(journal, with_files=True)))
        for record in self._find_files(key):
            sections.append((f"File {record.name} (sha256 {record.sha256[:12]})", self._file_steps(record)))
        for case in self._store.cases_by_reference(key):
            sections.append((f"Case {case.reference} (client {case.client_id})", self._case_steps(case)))
        for record, status in self._store.unjournaled_cases(key):
            sections.append(
                (f"Case {key} ({status} in file {record.name})", self._unjournaled_steps(key, record, status))
            )
        for number, (title, steps) in enumerate(sections):
            if number:
                out.write("\n")
            self._print(title, steps, out)
        return bool(sections)

    def _find_files(self, key: str) -> list[FileRecord]:
        """By name, path or SHA-256; or by its receipt's name, which ends in 12 hex of the SHA-256."""
        name = Path(key).name
        if name.endswith(".kvittens.xml"):
            prefix = name.removesuffix(".kvittens.xml").rpartition(".")[2]
            return [
                record
                for record in self._store.file_by_name_or_sha(prefix)
                if record.receipt_path and Path(record.receipt_path).name == name
            ]
        return self._store.file_by_name_or_sha(name)

    def _print(self, title: str, steps: Iterable[Step], out: TextIO) -> None:
        # Every line through the masker: file names and paths may hold a personnummer.
        out.write(mask_identities(title) + "\n")
        for step in sorted(steps, key=lambda s: (s.at is None, s.at or datetime.min)):
            out.write(mask_identities(f"  {_when(step.at, self._zone):<19}  {step.text}") + "\n")

    # -- finding things --------------------------------------------------------------------------

    def _find_journal(self, key: str) -> JournalRecord | None:
        by_id = self._store.journal(key)
        if by_id is not None:
            return by_id
        stem = key.removesuffix(".kvittens.xml")
        for journal in self._store.journals():
            if journal.file_name and stem in (journal.file_name, Path(journal.file_name).stem):
                return journal
            if journal.sequence is not None and stem == f"{journal.client_id}-{journal.sequence:06d}":
                return journal
        return None

    # -- histories -------------------------------------------------------------------------------

    def _file_steps(self, record: FileRecord) -> Iterator[Step]:
        if record.written_at is not None:
            yield Step(record.written_at, "written by the producer (the file's modification time)")
        yield Step(
            record.received_at, f"picked up from source {record.source}: {record.size} bytes, attempt 1"
        )
        for at, kind, _, detail in self._store.events_about([record.name]):
            yield Step(datetime.fromisoformat(at), f"{kind}: {mask_identities(detail)}")
        if record.status is None:
            yield Step(None, f"in progress (attempts so far: {record.attempts})")
            return
        findings = self._store.file_findings(record.id)
        summary = ", ".join(
            f"{code} x{n}" + (" (warning)" if severity == "warning" else "") for code, severity, n in findings
        )
        yield Step(
            record.judged_at,
            f"judged {record.status}" + (f"; findings: {summary}" if summary else "; no findings"),
        )
        if record.receipt_path:
            yield Step(record.judged_at, f"receipt {self._folders.located(record.receipt_path)}")
            if record.status == "duplicate":
                earlier = _earlier_receipt(self._folders.located(record.receipt_path))
                if earlier:
                    yield Step(record.judged_at, f"received before: see receipt {earlier}")
        if record.final_path:
            yield Step(record.finished_at, f"original moved to {self._folders.located(record.final_path)}")
        count, cases = self._store.cases_of_file(record.id, limit=CASES_LISTED)
        journals = Counter(case.journal_id for case in cases)
        if count:
            if len(journals) == 1 and count == len(cases):
                yield Step(
                    record.judged_at, f"{count} accepted case(s) joined journal {next(iter(journals))}"
                )
            else:
                for journal_id, listed in journals.items():
                    yield Step(
                        record.judged_at,
                        f"accepted cases joined journal {journal_id} ({listed} of the first {len(cases)})",
                    )
                yield Step(record.judged_at, f"{count} accepted case(s) in all")
            for journal_id in journals:
                journal = self._store.journal(journal_id) if journal_id else None
                if journal is not None:
                    yield from self._journal_steps(journal, with_files=False)

    def _case_steps(self, case: StoredCase) -> Iterator[Step]:
        record = self._store.file_of_case(case.id)
        yield Step(
            record.received_at,
            f"arrived in file {mask_identities(record.name)} from source {record.source} (sha256 {record.sha256[:12]})",
        )
        yield Step(
            record.judged_at,
            f"accepted ({format_ore(case.journal_case.capital_ore)} kr, {len(case.journal_case.claims)} claim(s)); "
            f"receipt {self._folders.located(record.receipt_path) if record.receipt_path else None}",
        )
        if record.receipt_path:
            for finding in _case_findings(self._folders.located(record.receipt_path), case.reference):
                yield Step(record.judged_at, f"  finding {finding}")
        if case.journal_id:
            yield Step(record.judged_at, f"joined journal {case.journal_id}")
        withdrawals = [e for e in self._store.events_about([case.reference]) if e[1] == "case-withdrawn"]
        for at, _, _, detail in withdrawals:
            yield Step(datetime.fromisoformat(at), f"withdrawn from journal {case.journal_id} {detail}")
        if case.withdrawn_reason is not None:
            if not withdrawals:
                yield Step(None, f"withdrawn from journal {case.journal_id}: {case.withdrawn_reason}")
            return  # its journal goes on without it
        journal = self._store.journal(case.journal_id) if case.journal_id else None
        if journal is not None:
            yield from self._journal_steps(journal, with_files=False)

    def _unjournaled_steps(self, reference: str, record: FileRecord, status: str) -> Iterator[Step]:
        """A case that was rejected (or a duplicate): its file, its receipt, its findings."""
        yield Step(
            record.received_at,
            f"arrived in file {mask_identities(record.name)} from source {record.source} (sha256 {record.sha256[:12]})",
        )
        receipt = self._folders.located(record.receipt_path) if record.receipt_path else None
        yield Step(record.judged_at, f"{status}: not journaled; receipt {receipt}")
        if receipt is not None:
            for finding in _case_findings(receipt, reference):
                yield Step(record.judged_at, f"  finding {finding}")

    def _journal_steps(self, journal: JournalRecord, *, with_files: bool) -> Iterator[Step]:
        name = journal.journal_id
        if with_files:
            yield Step(journal.opened_at, f"journal {name} opened for client {journal.client_id}")
            for record in self._store.files_of_journal(name):
                yield Step(
                    record.judged_at, f"cases from file {mask_identities(record.name)} ({record.status})"
                )
        if journal.sealed_at is not None:
            yield Step(
                journal.sealed_at,
                f"journal {name} sealed as number {journal.sequence}: {journal.case_count} cases, "
                f"{format_ore(journal.capital_ore)} kr"
                + (", held for review" if journal.needs_review else ""),
            )
        if journal.approved_at is not None:
            yield Step(journal.approved_at, f"journal {name} approved by {journal.approved_by}")
        if journal.built_at is not None:
            yield Step(
                journal.built_at,
                f"journal {name} built: {journal.file_name} (sha256 {(journal.sha256 or '')[:12]})",
            )
        for at, kind, _, detail in self._store.events_about([name]):
            yield Step(datetime.fromisoformat(at), f"journal {name} {kind}: {mask_identities(detail)}")
        if journal.delivered_at is not None:
            receipt = self._folders.journal_receipts / f"{journal.file_name}.kvittens.xml"
            yield Step(
                journal.delivered_at,
                f"journal {name} delivered as {journal.file_name} after {journal.attempts} attempt(s); "
                f"journal receipt {receipt}",
            )
        else:
            yield Step(None, f"journal {name} is {journal.state.value}, not delivered yet")


def _case_findings(receipt: Path, reference: str) -> list[str]:
    """The findings a receipt lists for one case."""
    try:
        found = read_case_findings(receipt, reference) if receipt.is_file() else []
    except ReceiptFormatError:
        return []
    return [f"{code} ({severity}): {message}" for code, severity, message in found]


def _earlier_receipt(receipt: Path) -> str | None:
    """The earlier receipt (TidigareKvittens) a duplicate's receipt names."""
    try:
        return read_receipt_facts(receipt).earlier_receipt if receipt.is_file() else None
    except ReceiptFormatError:
        return None
