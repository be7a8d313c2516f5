"""Reports: fill a :class:`~gateway.accounting.reports.model.Report` from the store and write its files.

The store is read with one cursor per question (a year of files is streamed, not loaded); the
only files touched are the receipts, originals and sent journals whose existence the report
checks. Written atomically to ``outbox/reports/``: one HTML page and one CSV per table. What
`report` prints is rendered by :mod:`~gateway.accounting.reports.text` and
:mod:`~gateway.accounting.reports.json`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import time as time_module
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway import __version__
from gateway.accounting.reports.csv import CSV_TABLES, write_report_csv
from gateway.accounting.reports.html import write_report_html
from gateway.accounting.reports.model import (
    UNKNOWN_CLIENT,
    AttentionCase,
    CapitalByState,
    Discrepancy,
    FileLine,
    FileTally,
    JournalLine,
    Report,
    ReportStamp,
    RuleTally,
    SequenceGap,
    find_gaps,
    summarise_latency,
)
from gateway.config import GatewayConfig
from gateway.domain.identity import mask_identities, mask_identity
from gateway.domain.rules import RULESET_VERSION
from gateway.folders import Folders
from gateway.fsutil import write_replacing
from gateway.store import FileState, JournalRecord, JournalState, ReceivedFile, StoredCase
from gateway.store.roles import LedgerReader

# The logger keeps its published name (operators filter on it), wherever the module lives.
log = logging.getLogger("gateway.reporting")

#: A file still in progress this long after it arrived is not accounted for (the gateway gives up
#: on a file after its attempts; only a stopped gateway leaves one longer).
STUCK_AFTER = timedelta(hours=24)
#: Cases waiting for a person, listed in the report (the rest are counted).
ATTENTION_LIMIT = 200
#: Discrepancies of one kind listed in the report (the rest are counted).
DISCREPANCIES_PER_KIND = 100
#: A report's temporary file older than this was left by a writer that was killed.
STALE_TEMPORARY_SECONDS = 3600.0
#: What the report's file names start with.
REPORT_PREFIX = "avstamning"

_FILE_STATUS_FIELD = {
    "accepted": "accepted",
    "partially-accepted": "partially_accepted",
    "rejected": "rejected",
    "duplicate": "duplicate",
    "quarantined": "quarantined",
}


class _Tally:
    """A mutable FileTally while the rows stream past."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, received: ReceivedFile) -> None:
        counts = self.counts
        counts["files"] += 1
        if received.state is FileState.CLAIMED or received.status is None:
            counts["in_progress"] += 1
            return
        counts[_FILE_STATUS_FIELD.get(received.status, "in_progress")] += 1
        counts["cases"] += received.case_count
        counts["cases_journaled"] += received.accepted_count
        counts["cases_rejected"] += received.rejected_count
        counts["cases_duplicate"] += received.duplicate_count
        counts["capital_in_ore"] += received.capital_in_ore
        counts["capital_journaled_ore"] += received.accepted_capital_ore
        counts["capital_rejected_ore"] += received.rejected_capital_ore
        counts["capital_duplicate_ore"] += received.duplicate_capital_ore

    def freeze(self, day: date, source: str, client: str) -> FileTally:
        return FileTally(day, source, client, **self.counts)


def period_bounds(period_from: date, period_to: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start of the first day, start of the day after the last) in the gateway's zone."""
    start = datetime.combine(period_from, time(), tzinfo=zone)
    end = datetime.combine(period_to + timedelta(days=1), time(), tzinfo=zone)
    return start, end


def build_report(
    store: LedgerReader,
    config: GatewayConfig,
    *,
    period_from: date,
    period_to: date,
    client: str | None,
    now: datetime,
    folders: Folders | None = None,
) -> Report:
    """Everything received in the period (and where it is now), as of ``now``.

    Read inside one read transaction, so that every section counts the same moment while the
    daemon goes on writing.
    """
    with store.snapshot():
        zone = ZoneInfo(config.timezone)
        start, end = period_bounds(period_from, period_to, zone)
        folders = folders or Folders.from_config(config)
        discrepancies = _Discrepancies()
        # Files judged before schema 3 recorded only the client's orgnr: find the client by it.
        client_by_orgnr = {c.orgnr: c.id for c in config.clients}
        client_orgnr = next((c.orgnr for c in config.clients if c.id == client), None)

        def owner(client_id: str | None, orgnr: str | None) -> str:
            return client_id or client_by_orgnr.get(orgnr or "") or UNKNOWN_CLIENT

        tallies: dict[tuple[date, str, str], _Tally] = defaultdict(_Tally)
        drop_to_receipt = array("d")  # 8 bytes a file: a year of files is a few MB
        files = _FileListSpool()
        for received in store.received_files(start, end):
            received_by = owner(received.client_id, received.client_orgnr)
            if client is not None and received_by != client:
                continue
            files.add(_file_line(received))
            tallies[(received.received_at.astimezone(zone).date(), received.source, received_by)].add(
                received
            )
            discrepancies.extend(_file_problems(received, now, folders))
            if received.finished_at is not None and received.written_at is not None:
                drop_to_receipt.append(max(0.0, (received.finished_at - received.written_at).total_seconds()))
        rows = [tally.freeze(*key) for key, tally in sorted(tallies.items())]
        for row in rows:
            discrepancies.extend(_unbalanced(row))

        for mismatch in store.case_mismatches(start, end, client_orgnr):
            discrepancies.add(
                Discrepancy(
                    "journaled-cases",
                    mismatch.file_name,
                    f"Kvittot godkände {mismatch.accepted_count} ärenden ({mismatch.accepted_capital_ore} öre) men "
                    f"{mismatch.stored_cases} ({mismatch.stored_capital_ore} öre) finns i journalerna.",
                    f"The receipt accepted {mismatch.accepted_count} cases ({mismatch.accepted_capital_ore} öre) but "
                    f"{mismatch.stored_cases} ({mismatch.stored_capital_ore} öre) are in the journals.",
                )
            )

        gaps: list[SequenceGap] = []
        for client_id, sequences in sorted(store.journal_sequences().items()):
            if client is not None and client_id != client:
                continue
            gap = find_gaps(client_id, sequences)
            if gap is not None:
                gaps.append(gap)

        journals = [
            journal
            for journal in store.journals_touched(start, end)
            if client is None or journal.client_id == client
        ]
        seal_to_delivery = [
            (journal.delivered_at - journal.sealed_at).total_seconds()
            for journal in journals
            if journal.delivered_at is not None
            and journal.sealed_at is not None
            and start <= journal.delivered_at < end
        ]
        for journal in journals:
            discrepancies.extend(_journal_problems(journal, folders))

        rules = _rule_tallies(
            (
                (at, owner(client_id, orgnr), code, severity, count)
                for at, client_id, orgnr, code, severity, count in store.finding_counts(start, end)
            ),
            zone,
            client,
        )
        waiting_for_a_person = _waiting(store, client)
        waiting, listed = store.cases_awaiting_review(client_id=client, limit=ATTENTION_LIMIT)
        return Report(
            period_from=period_from,
            period_to=period_to,
            client=client,
            stamp=ReportStamp(now, __version__, RULESET_VERSION, config.sha256, config.timezone),
            tallies=rows,
            journals=[_journal_line(journal) for journal in journals],
            capital_by_state=[
                CapitalByState(state, cases, ore)
                for state, cases, ore in store.capital_by_state(start, end, client)
            ],
            gaps=gaps,
            discrepancies=discrepancies.all(),
            rules=rules,
            latencies=[
                summarise_latency("drop-to-receipt", drop_to_receipt),
                summarise_latency("seal-to-delivery", seal_to_delivery),
            ],
            attention=[_attention(case) for case in listed],
            attention_total=waiting,
            chain_head=store.receipt_chain_head(),
            files=files,
            waiting=waiting_for_a_person,
        )


class _FileListSpool:
    """The period's file lines on disk (a month can hold 100,000 files), readable again and again."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 - closed with the report
        self._count = 0

    def add(self, line: FileLine) -> None:
        self._file.write(
            json.dumps(
                [line.name, line.source, line.received_at.isoformat(), line.sha256, line.status,
                 line.cases_accepted, line.cases_rejected, line.receipt],
                ensure_ascii=False,
            )
            + "\n"
        )  # fmt: skip
        self._count += 1

    def __iter__(self) -> Iterator[FileLine]:
        self._file.flush()
        self._file.seek(0)
        for text in self._file:
            name, source, received, sha256, status, accepted, rejected, receipt = json.loads(text)
            yield FileLine(
                name, source, datetime.fromisoformat(received), sha256, status, accepted, rejected, receipt
            )

    def __len__(self) -> int:
        return self._count


def _file_line(received: ReceivedFile) -> FileLine:
    status = received.status if received.state is not FileState.CLAIMED and received.status else "in-progress"
    return FileLine(
        name=mask_identities(received.name),
        source=received.source,
        received_at=received.received_at,
        sha256=received.sha256,
        status=status,
        cases_accepted=received.accepted_count,
        cases_rejected=received.rejected_count + received.duplicate_count,
        receipt=Path(received.receipt_path).name if received.receipt_path else None,
    )


def _waiting(store: LedgerReader, client: str | None) -> list[Discrepancy]:
    """Quarantined files no one has dealt with and deliveries that failed for good: accounted
    for, but waiting for a person (whatever period they arrived in)."""
    waiting = [
        Discrepancy(
            "file-quarantined",
            mask_identities(record.name),
            f"Fil {record.id} ligger i karantän sedan {record.judged_at:%Y-%m-%d %H:%M} UTC: undersök den och "
            f"markera den som hanterad (`quarantine resolve {record.id}`).",
            f"File {record.id} has been in quarantine since {record.judged_at:%Y-%m-%d %H:%M} UTC: look into it "
            f"and mark it dealt with (`quarantine resolve {record.id}`).",
        )
        for record in store.quarantined_files()
        if record.judged_at is not None and (client is None or record.client_id in (None, client))
    ]
    waiting += [
        Discrepancy(
            "delivery-failed",
            journal.journal_id,
            f"Leveransen misslyckades och görs inte om av sig själv: {mask_identities(journal.last_error or '')}",
            f"The delivery failed and is not retried on its own: {mask_identities(journal.last_error or '')}",
        )
        for journal in store.journals(states=[JournalState.APPROVED])
        if (journal.last_error or "").startswith("PERMANENT")
        and (client is None or journal.client_id == client)
    ]
    return waiting


class _Discrepancies:
    """Every discrepancy, masked; at most DISCREPANCIES_PER_KIND of a kind, then one that counts
    the rest (a lost archive folder must not make a report of a million lines)."""

    def __init__(self) -> None:
        self._kept: list[Discrepancy] = []
        self._per_kind: Counter[str] = Counter()

    def add(self, item: Discrepancy) -> None:
        self._per_kind[item.kind] += 1
        if self._per_kind[item.kind] <= DISCREPANCIES_PER_KIND:
            self._kept.append(
                Discrepancy(
                    item.kind,
                    mask_identities(item.subject),
                    mask_identities(item.message_sv),
                    mask_identities(item.message_en),
                )
            )

    def extend(self, items: Iterable[Discrepancy]) -> None:
        for item in items:
            self.add(item)

    def all(self) -> list[Discrepancy]:
        more = [
            Discrepancy(
                kind,
                f"{count - DISCREPANCIES_PER_KIND} till / more",
                f"... och {count - DISCREPANCIES_PER_KIND} till av samma slag.",
                f"... and {count - DISCREPANCIES_PER_KIND} more of the same kind.",
            )
            for kind, count in self._per_kind.items()
            if count > DISCREPANCIES_PER_KIND
        ]
        return self._kept + more


def _file_problems(received: ReceivedFile, now: datetime, folders: Folders) -> Iterable[Discrepancy]:
    if received.state is not FileState.DONE:
        if now - received.received_at > STUCK_AFTER:
            yield Discrepancy(
                "stuck",
                received.name,
                f"Filen togs emot {received.received_at:%Y-%m-%d %H:%M} UTC och har ännu inget slutligt kvitto.",
                f"The file arrived {received.received_at:%Y-%m-%d %H:%M} UTC and has no final receipt yet.",
            )
        return
    if not received.receipt_path or not folders.located(received.receipt_path).is_file():
        yield Discrepancy(
            "receipt-missing",
            received.name,
            f"Kvittot saknas: {received.receipt_path}",
            f"The receipt is missing: {received.receipt_path}",
        )
    if not received.final_path or not folders.located(received.final_path).is_file():
        yield Discrepancy(
            "original-missing",
            received.name,
            f"Originalfilen finns inte där den lades: {received.final_path}",
            f"The original is not where it was put: {received.final_path}",
        )


def _unbalanced(row: FileTally) -> Iterable[Discrepancy]:
    subject = f"{row.day} {row.source} {row.client}"
    if row.files != row.files_accounted:
        yield Discrepancy(
            "file-counts",
            subject,
            f"{row.files} filer in men {row.files_accounted} redovisade.",
            f"{row.files} files in but {row.files_accounted} accounted for.",
        )
    if row.cases != row.cases_accounted:
        yield Discrepancy(
            "case-counts",
            subject,
            f"{row.cases} ärenden in men {row.cases_accounted} redovisade.",
            f"{row.cases} cases in but {row.cases_accounted} accounted for.",
        )
    if row.capital_in_ore != row.capital_accounted_ore:
        yield Discrepancy(
            "capital",
            subject,
            f"Kapitalbelopp in {row.capital_in_ore} öre men {row.capital_accounted_ore} öre redovisade.",
            f"Capital in {row.capital_in_ore} öre but {row.capital_accounted_ore} öre accounted for.",
        )


def _journal_problems(journal: JournalRecord, folders: Folders) -> Iterable[Discrepancy]:
    if journal.delivered_at is None:
        return
    sent = folders.sent / journal.file_name if journal.file_name else None
    if sent is None or not sent.is_file():
        yield Discrepancy(
            "sent-missing",
            journal.journal_id,
            f"Journalen är levererad men dess fil saknas i {folders.sent}.",
            f"The journal was delivered but its file is missing from {folders.sent}.",
        )


def _rule_tallies(
    rows: Iterable[tuple[datetime, str, str, str, int]], zone: ZoneInfo, client: str | None
) -> list[RuleTally]:
    files: dict[tuple[date, str, str, str], int] = defaultdict(int)
    findings: dict[tuple[date, str, str, str], int] = defaultdict(int)
    for received, owner, code, severity, count in rows:
        if client is not None and owner != client:
            continue
        key = (received.astimezone(zone).date(), owner, code, severity)
        files[key] += 1
        findings[key] += count
    return [RuleTally(*key, files=files[key], findings=findings[key]) for key in sorted(files)]


def _journal_line(journal: JournalRecord) -> JournalLine:
    return JournalLine(
        journal_id=journal.journal_id,
        client=journal.client_id,
        sequence=journal.sequence,
        state=journal.state.value,
        case_count=journal.case_count,
        capital_ore=journal.capital_ore,
        sealed_at=journal.sealed_at,
        approved_at=journal.approved_at,
        delivered_at=journal.delivered_at,
        file_name=journal.file_name,
    )


def _attention(case: StoredCase) -> AttentionCase:
    journal_case = case.journal_case
    debtor = journal_case.debtors[0] if journal_case.debtors else None
    protected = any(d.protected for d in journal_case.debtors)
    address = None
    if debtor is not None and not protected:
        address = ", ".join(
            part
            for part in (*debtor.street_lines, f"{debtor.postal_code or ''} {debtor.town or ''}".strip())
            if part
        )
    return AttentionCase(
        reference=case.reference,
        client=case.client_id,
        journal_id=case.journal_id or "",
        masked_identity=mask_identity(debtor.identity) if debtor else "",
        capital_ore=journal_case.capital_ore,
        protected=protected,
        address=address,
    )


def report_base_name(period_from: date, period_to: date, client: str | None) -> str:
    """``avstamning-2026-11-24``, ``avstamning-2026-11-01--2026-11-30-lst-exempel``."""
    period = period_from.isoformat() if period_from == period_to else f"{period_from}--{period_to}"
    return f"{REPORT_PREFIX}-{period}" + (f"-{client}" if client else "")


def write_report(report: Report, folder: Path) -> list[Path]:
    """The HTML page and one CSV per table, each written atomically; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in folder.glob(".*.tmp"):
        # What a writer killed mid-write left behind (a live writer's file is minutes old at most).
        with contextlib.suppress(FileNotFoundError):
            if time_module.time() - stale.stat().st_mtime > STALE_TEMPORARY_SECONDS:
                stale.unlink()
    base = report_base_name(report.period_from, report.period_to, report.client)
    written: list[Path] = []
    html = io.BytesIO()
    write_report_html(html, report)
    target = folder / f"{base}.html"
    write_replacing(target, html.getvalue())
    written.append(target)
    for table in CSV_TABLES:
        text = io.StringIO(newline="")
        write_report_csv(text, report, table)
        target = folder / f"{base}.{table}.csv"
        # With a byte-order mark: without one, Excel reads UTF-8 as Latin-1 and mangles å, ä, ö.
        write_replacing(target, text.getvalue().encode("utf-8-sig"))
        written.append(target)
    return written
