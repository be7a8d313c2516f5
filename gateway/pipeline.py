"""Intake: one finished file from a source to its receipt and its final place.

The order of effects is what makes a crash harmless (reliability.md, "Order of effects"):

1. **claim**: the file's SHA-256 is recorded and one more attempt counted, before any work; a file
   that keeps killing the gateway is therefore quarantined after ``max_attempts`` restarts;
2. **judge**: validate (the same code as ``validate``), spool the accepted cases to disk, and
   write the receipt under a temporary name (fsynced);
3. **commit**: one transaction records the verdict, the accepted cases in their client's open
   journal and the receipt's SHA-256 as the new head of the receipt chain;
4. **publish**: rename the receipt to its final name, move the original to ``var/archive/`` or
   ``var/rejected/``, and mark the file done.

A crash before 3 leaves the file claimed: the next scan does it again from the start (the
temporary receipt is discarded). A crash after 3 is finished by :meth:`Intake.recover` at start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from gateway import __version__
from gateway.adapters import Candidate, Source
from gateway.adapters.folder import fsync_folder, move_durably, sha256_file
from gateway.config import GatewayConfig, SourceConfig
from gateway.domain.findings import Finding, Severity
from gateway.domain.identity import mask_identities
from gateway.domain.journal import JournalCase, journal_case
from gateway.domain.judging import CaseOutcome, CaseStatus, FileStatus, FileVerdict
from gateway.domain.model import Case, FileHeader, FileTotals
from gateway.domain.rules import RULESET_VERSION
from gateway.domain.rules.case_rules import ALLOWED_ATTACHMENT_TYPES
from gateway.errors import ConfigError, SourceError, StoreError
from gateway.formats.package import is_package, open_package
from gateway.formats.receipt import ReceiptStamp, receipt_file_name, write_receipt
from gateway.store import AcceptedCase, FileRecord, FileState, Judgement
from gateway.store.sqlite import SqliteStore
from gateway.validation import FileReport, ValidationSettings, validate_file

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_FILE_TIMEOUT_SECONDS = 600.0
#: How long a file that ends in the middle may stay so before it is quarantined (F08).
DEFAULT_INCOMPLETE_SECONDS = 300.0
#: Backoff before the next attempt at a file the gateway failed on: 1 s, 2 s, 4 s ... at most 5 min.
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 300.0
#: Test hook, never set in production: a file whose name contains the value's text after
#: "exit:" kills the process (like a crash inside a C library), after "raise:" raises, after
#: "hang:" sleeps past the file timeout. It is how the tests make a poison file.
FAULT_INJECTION_ENV = "INKASSO_GATEWAY_FAULT"


@dataclass(frozen=True, slots=True)
class Folders:
    """The folders of the contract (section 5), resolved against the config file's folder."""

    receipts: Path
    journal_receipts: Path
    journals: Path
    reports: Path
    var: Path
    archive: Path
    rejected: Path
    quarantine: Path
    sent: Path
    spool: Path
    staging: Path  # files downloaded from SFTP sources, until they are archived
    attachments: Path  # accepted cases' attachments by SHA-256, until their journal is built

    @classmethod
    def from_config(cls, config: GatewayConfig) -> Folders:
        base = config.data_dir
        var = base / "var"
        return cls(
            receipts=base / "outbox" / "receipts",
            journal_receipts=base / "outbox" / "receipts" / "journals",
            journals=config.delivery.path or base / "outbox" / "journals",  # default under data_dir
            reports=config.reports.path or base / "outbox" / "reports",
            var=var,
            archive=var / "archive",
            rejected=var / "rejected",
            quarantine=var / "quarantine",
            sent=var / "sent",
            spool=var / "spool",
            staging=var / "staging",
            attachments=var / "attachments",
        )

    def ensure(self, *, sources: tuple[SourceConfig, ...], mode: int = 0o700) -> None:
        """Create every folder and check it is writable; ConfigError names the first that is not."""
        folders = [getattr(self, name) for name in self.__dataclass_fields__]
        folders += [source.path for source in sources if source.type == "folder" and source.path]
        for folder in folders:
            try:
                folder.mkdir(parents=True, exist_ok=True, mode=mode)
            except OSError as error:
                raise ConfigError(f"{folder}: cannot create the folder: {error.strerror or error}") from error
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ConfigError(f"{folder}: the folder is not writable by this user")


class FileTimeoutError(Exception):
    """Processing one file took longer than the configured limit."""


class IncompleteFileError(Exception):
    """The file's XML ends in the middle: its producer is probably still writing it."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise FileTimeoutError in the main thread after ``seconds`` (a hang counts as an attempt)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise FileTimeoutError(f"processing took longer than {seconds:g} s")

    if seconds <= 0 or signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None):
        yield
        return
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _inject_fault(name: str) -> None:
    rule = os.environ.get(FAULT_INJECTION_ENV, "")
    kind, _, text = rule.partition(":")
    if not text or text not in name:
        return
    if kind == "exit":
        os._exit(70)
    if kind == "raise":
        raise RuntimeError(f"injected fault for {name}")
    if kind == "hang":
        time.sleep(3600)


class _CaseSpool:
    """Accepted cases written to a temporary file as they stream past: memory stays flat.

    A case is accepted when judged, but a file-level error at the end can still reject them all;
    so they wait here, and only those the final verdict accepts go into the store.
    """

    def __init__(self, folder: Path) -> None:
        self._file = tempfile.TemporaryFile(dir=folder, mode="w+", encoding="utf-8")  # noqa: SIM115
        self.count = 0

    def add(self, position: int, fingerprint: str, claims: tuple[str, ...], case: JournalCase) -> None:
        accepted = AcceptedCase.of(
            case,
            position=position,
            client_id="",
            client_orgnr="",
            fingerprint=fingerprint,
            claim_references=claims,
        )
        # One line per case: numbers and hex first, then the texts as JSON (a reference may
        # hold a tab), then the payload (JSON: no raw tab or newline).
        texts = json.dumps([case.reference, list(claims)], ensure_ascii=False)
        numbers = f"{position}\t{fingerprint}\t{accepted.payload_sha256}\t{accepted.capital_ore}\t{accepted.claim_count}"
        self._file.write(f"{numbers}\t{int(accepted.protected)}\t{texts}\t{accepted.payload}\n")
        self.count += 1

    def read(self, *, client_id: str, client_orgnr: str, accepted: set[int]) -> Iterator[AcceptedCase]:
        self._file.seek(0)
        for line in self._file:
            position, fingerprint, sha256, capital, count, protected, texts, payload = line.rstrip(
                "\n"
            ).split("\t", 7)
            if int(position) not in accepted:
                continue
            reference, claims = json.loads(texts)
            yield AcceptedCase(
                position=int(position),
                client_id=client_id,
                client_orgnr=client_orgnr,
                reference=reference,
                fingerprint=fingerprint,
                claim_references=tuple(claims),
                payload=payload,
                payload_sha256=sha256,
                capital_ore=int(capital),
                claim_count=int(count),
                protected=protected == "1",
            )

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True, slots=True)
class IntakeResult:
    file_id: int
    status: str
    receipt: Path | None
    final_path: Path | None


class Intake:
    """Takes files from sources through validation to receipts, one at a time."""

    def __init__(
        self,
        config: GatewayConfig,
        store: SqliteStore,
        folders: Folders,
        *,
        clock: Callable[[], datetime],
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        file_timeout: float = DEFAULT_FILE_TIMEOUT_SECONDS,
        file_mode: int = 0o600,
        incomplete_seconds: float = DEFAULT_INCOMPLETE_SECONDS,
    ) -> None:
        self._config = config
        self._store = store
        self._folders = folders
        self._clock = clock
        self._max_attempts = max_attempts
        self._file_timeout = file_timeout
        self._file_mode = file_mode
        self._client_ids = {client.orgnr: client.id for client in config.clients}
        # A file the gateway failed on waits before its next attempt (by path and sha256).
        self._retry_after: dict[tuple[str, str], float] = {}
        # When a file was first found to end in the middle, on our clock (by path).
        self._first_incomplete: dict[str, float] = {}
        self._incomplete_seconds = incomplete_seconds
        self._postal = config.load_postal_directory()

    # -- one file ------------------------------------------------------------------------------

    def process(self, candidate: Candidate, source: Source) -> IntakeResult | None:
        """Claim, judge, commit and publish one finished file; None when it vanished meanwhile."""
        try:
            sha256 = sha256_file(candidate.path)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise SourceError(f"{candidate.path}: cannot read: {error.strerror or error}") from error
        if self._retry_after.get((str(candidate.path), sha256), 0.0) > time.monotonic():
            return None
        done = (
            self._store.done_file(source=candidate.source, name=candidate.name, sha256=sha256)
            if source.remote
            else None
        )
        if done is not None:
            # Received and receipted before, but a crash came before the source was tidied (an
            # SFTP file not yet moved away): finish that, and do not receive it a second time.
            log.info(
                "file %s from %s was received before (%s): tidying the source",
                candidate.name,
                candidate.source,
                done.status,
            )
            candidate.path.unlink(missing_ok=True)
            source.finish(candidate, accepted=done.status in ("accepted", "partially-accepted"))
            return None
        now = self._clock()
        record = self._store.claim_file(
            source=candidate.source,
            name=candidate.name,
            path=str(candidate.path),
            sha256=sha256,
            size=candidate.size,
            now=now,
            written_at=datetime.fromtimestamp(candidate.mtime_ns / 1e9, tz=UTC),
        )
        if record.attempts > self._max_attempts:
            return self.quarantine(record, source=source, candidate=candidate)
        log.info(
            "file %s from %s claimed (attempt %d, sha256 %s)",
            record.name,
            record.source,
            record.attempts,
            sha256[:12],
        )
        try:
            _inject_fault(candidate.name)
            result = self._judge_and_commit(record, candidate)
        except IncompleteFileError as error:
            return self._incomplete(record, error, source=source, candidate=candidate)
        except Exception as error:
            # Permanent problems with the content are findings, not exceptions: anything here is
            # the gateway's own failure on this file. It stays claimed; after max_attempts it goes
            # to quarantine, and the daemon goes on with the next file.
            current = self._store.file(record.id)
            if current.state is not FileState.CLAIMED:
                # Failed after the commit: the verdict stands; finish publishing it.
                self._publish(record.id, source=source, candidate=candidate)
                return None
            reason = f"{type(error).__name__}: {error}"
            self._store.record_failure(record.id, reason)
            self._store.log_event("file-failed", record.name, reason, now=self._clock())
            log.exception(
                "file %s failed on attempt %d of %d", record.name, record.attempts, self._max_attempts
            )
            if record.attempts >= self._max_attempts:
                return self.quarantine(self._store.file(record.id), source=source, candidate=candidate)
            delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (record.attempts - 1))
            self._retry_after[(str(candidate.path), sha256)] = time.monotonic() + delay
            return None
        self._first_incomplete.pop(str(candidate.path), None)
        self._publish(record.id, source=source, candidate=candidate)
        return result

    def _incomplete(
        self, record: FileRecord, error: IncompleteFileError, *, source: Source, candidate: Candidate
    ) -> IntakeResult | None:
        """A file that ends in the middle: probably still being written. Wait, don't reject it.

        reliability.md: retried until a stability timeout, then quarantined; never rejected as
        invalid on the first try. The attempt is not counted against the file.
        """
        key = str(candidate.path)
        first = self._first_incomplete.setdefault(key, time.monotonic())
        self._store.release_attempt(record.id, f"incomplete: {error}")
        if time.monotonic() - first < self._incomplete_seconds:
            log.info("file %s ends in the middle (%s): waiting for the rest", record.name, error)
            self._retry_after[(key, record.sha256)] = time.monotonic() + max(
                1.0, self._incomplete_seconds / 10
            )
            return None
        self._first_incomplete.pop(key, None)
        return self.quarantine(
            self._store.file(record.id), source=source, candidate=candidate, incomplete=True
        )

    def _settings(self, source_config: SourceConfig | None) -> ValidationSettings:
        config = self._config
        return ValidationSettings(
            today=self._clock().astimezone(_zone(config.timezone)).date(),
            history=self._store,
            clients=config.client_orgnrs(),
            source_clients=config.source_orgnrs(source_config) if source_config else None,
            strict_sequence=config.rules.strict_sequence,
            postal_directory=self._postal,
            max_attachment_bytes=config.rules.max_attachment_bytes,
            policy=config.on_case_error,
            fingerprint_cases=True,
        )

    def _judge_and_commit(self, record: FileRecord, candidate: Candidate) -> IntakeResult:
        source_config = next((s for s in self._config.sources if s.name == record.source), None)
        settings = self._settings(source_config)
        spool = _CaseSpool(self._folders.spool)
        try:

            def keep_accepted(case: Case, outcome: CaseOutcome) -> None:
                if outcome.status is CaseStatus.ACCEPTED:
                    claims = tuple(claim.reference for claim in case.claims if claim.reference)
                    normalised = journal_case(case, today=settings.today, source_sha256=record.sha256)
                    spool.add(outcome.index, case.content_sha256, claims, normalised)

            # The time limit covers the work on the content only, never the commit.
            with _time_limit(self._file_timeout):
                report = validate_file(candidate.path, settings, name=record.name, on_case=keep_accepted)
            if report.sha256 != record.sha256:
                raise SourceError(f"{record.name} changed while it was read")
            if report.truncated:
                raise IncompleteFileError("the XML ends before the root element is closed")
            if report.verdict.accepted:
                self._keep_attachments(candidate.path)
            return self._commit(record, report, spool)
        finally:
            spool.close()

    def _keep_attachments(self, path: Path) -> None:
        """Copy a package's attachments to var/attachments/<sha256> before the verdict is committed.

        Content-addressed: a name from outside is never used as a path, and an attachment sent
        twice is kept once. Only what passed rule A06 (type and size) is kept.
        """
        with path.open("rb") as raw:
            if not is_package(raw.read(4)):
                return
            raw.seek(0)
            package = open_package(raw, max_attachment_bytes=self._config.rules.max_attachment_bytes)
            for name, facts in package.attachments.items():
                target = self._folders.attachments / facts.sha256
                if not facts.sha256 or target.exists() or facts.content_type not in ALLOWED_ATTACHMENT_TYPES:
                    continue
                temporary = target.with_name(f".{facts.sha256}.tmp")
                with package.archive.open(name) as member, temporary.open("wb") as out:
                    shutil.copyfileobj(member, out, 1024 * 1024)
                    out.flush()
                    os.fsync(out.fileno())
                if sha256_file(temporary) != facts.sha256:
                    temporary.unlink()
                    raise SourceError(f"attachment {name} changed while it was copied")
                temporary.replace(target)
            fsync_folder(self._folders.attachments)

    def _commit(self, record: FileRecord, report: FileReport, spool: _CaseSpool) -> IntakeResult:
        verdict = report.verdict
        orgnr = verdict.header.client_orgnr
        client_orgnr = "".join(c for c in orgnr if c.isdigit())[-10:] if orgnr else None
        accepted_positions = {case.index for case in verdict.cases if case.status is CaseStatus.ACCEPTED}
        client_id = self._client_ids.get(client_orgnr or "")
        if accepted_positions and client_id is None:
            raise StoreError(f"cases accepted for {orgnr}, which is not a configured client")
        now = self._clock()
        # The receipt names each accepted case's journal; cases join the client's open journal.
        journal_ids: dict[int, str] = {}
        if accepted_positions and client_id is not None:
            journal_id = self._store.open_journal_id(client_id, now=now)
            journal_ids = dict.fromkeys(accepted_positions, journal_id)
        final_dir = self._folders.archive if accepted_positions else self._folders.rejected
        final_path = (
            final_dir
            / now.astimezone(_zone(self._config.timezone)).date().isoformat()
            / f"{record.id}-{record.name}"
        )
        receipt_path, receipt_sha256, previous = self._write_receipt(record, report, now, journal_ids)
        accepted = (
            spool.read(client_id=client_id, client_orgnr=client_orgnr or "", accepted=accepted_positions)
            if client_id is not None
            else iter(())
        )
        self._store.record_judgement(
            Judgement(
                file_id=record.id,
                status=verdict.status.value,
                client_orgnr=client_orgnr,
                file_id_in_file=verdict.header.file_id,
                sequence=verdict.header.sequence,
                case_count=len(verdict.cases),
                accepted=accepted,
                receipt_id=receipt_path.name.removesuffix(".kvittens.xml"),
                receipt_path=str(receipt_path),
                receipt_sha256=receipt_sha256,
                previous_receipt_sha256=previous,
                final_path=str(final_path),
                judged_at=now,
                expected_journal=journal_ids.get(min(accepted_positions)) if accepted_positions else None,
                client_id=client_id,
                **_tally(verdict),
            )
        )
        log.info(
            "file %s: %s, %d of %d cases accepted; receipt %s",
            record.name,
            verdict.status.value,
            len(accepted_positions),
            len(verdict.cases),
            receipt_path.name,
        )
        return IntakeResult(record.id, verdict.status.value, receipt_path, final_path)

    def _write_receipt(
        self, record: FileRecord, report: FileReport, now: datetime, journal_ids: dict[int, str]
    ) -> tuple[Path, str, str]:
        """Write the receipt under its temporary name (fsynced); return (final path, sha256, previous)."""
        day = now.astimezone(_zone(self._config.timezone)).date().isoformat()
        folder = self._folders.receipts / day
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = folder / receipt_file_name(record.name, record.sha256)
        if final.exists():
            # The same name and bytes arrived before: keep both receipts, each once.
            final = folder / receipt_file_name(f"{record.name}.{record.id}", record.sha256)
        previous = self._store.receipt_chain_head()
        stamp = ReceiptStamp(
            receipt_id=str(uuid.uuid4()),
            created=now,
            received=record.received_at,
            source=record.source,
            previous_sha256=previous,
            gateway_version=__version__,
            ruleset_version=RULESET_VERSION,
            config_sha256=self._config.sha256,
        )
        temporary = _temporary_receipt(final)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self._file_mode)
        with os.fdopen(descriptor, "wb") as out:
            write_receipt(out, report, stamp, journal_ids=journal_ids)
            out.flush()
            os.fsync(out.fileno())
        fsync_folder(folder)
        return final, sha256_file(temporary), previous

    def _publish(self, file_id: int, *, source: Source | None, candidate: Candidate | None) -> None:
        """Steps after the commit: receipt to its final name, original to its final place, done."""
        record = self._store.file(file_id)
        if record.state is not FileState.JUDGED:
            return
        assert record.receipt_path is not None and record.final_path is not None
        receipt = Path(record.receipt_path)
        temporary = _temporary_receipt(receipt)
        if temporary.exists():
            temporary.replace(receipt)
            fsync_folder(receipt.parent)
        elif not receipt.exists():
            log.error("file %s: its receipt %s is missing after a crash", record.name, receipt)
        original = Path(record.path)
        final = Path(record.final_path)
        if original.exists() and sha256_file(original) == record.sha256:
            move_durably(original, final)
            final.chmod(self._file_mode)  # the producer's mode may let others read personal data
        if source is not None and candidate is not None:
            source.finish(candidate, accepted=record.status in ("accepted", "partially-accepted"))
        else:
            self._remove_done_marker(record)
        self._store.mark_done(record.id, final_path=str(final), now=self._clock())

    def _remove_done_marker(self, record: FileRecord) -> None:
        """After a restart there is no candidate: find the marker from the source's config."""
        source = next((s for s in self._config.sources if s.name == record.source), None)
        if source is not None and source.done_marker:
            Path(record.path + source.done_marker).unlink(missing_ok=True)

    # -- poison files --------------------------------------------------------------------------

    def quarantine(
        self,
        record: FileRecord,
        *,
        source: Source | None,
        candidate: Candidate | None,
        incomplete: bool = False,
    ) -> IntakeResult:
        """Give up on a file that failed ``max_attempts`` times: a receipt, and the quarantine folder."""
        attempts = min(record.attempts, self._max_attempts)
        reason = record.last_error or "the gateway stopped (crashed or was killed) while processing it"
        if incomplete:
            sv = (
                f"Filen tar slut mitt i XML-innehållet och blev inte färdig på {self._incomplete_seconds:g} "
                "sekunder. Den har lagts i karantän; skicka den igen, hel (skriv gärna under ett tillfälligt "
                "namn som .part och byt namn när den är klar)."
            )
            en = (
                f"The file ends in the middle of its XML and was not completed within {self._incomplete_seconds:g} "
                "seconds. It has been quarantined; send it again, whole (preferably written under a temporary "
                "name such as .part and renamed when complete)."
            )
        else:
            sv = (
                f"Filen kunde inte behandlas efter {attempts} försök och har lagts i karantän. En handläggare "
                "undersöker den; skicka inte om filen förrän ni fått besked."
            )
            en = (
                f"The file could not be processed after {attempts} attempts and has been quarantined. A "
                "person will look at it; do not send it again until you hear back."
            )
        finding = Finding("F08", Severity.ERROR, "/", None, sv, en)
        verdict = FileVerdict(
            FileStatus.REJECTED, [finding], [], FileHeader("/Arendefil/Filhuvud", None), None, FileTotals()
        )
        report = FileReport(record.name, record.size, record.sha256, verdict)
        now = self._clock()
        receipt_path, receipt_sha256, previous = self._write_receipt(record, report, now, {})
        final_path = self._folders.quarantine / f"{record.id}-{record.name}"
        # The reason first: after the commit a crash must not leave a quarantined file unexplained.
        reason_file = final_path.with_name(final_path.name + ".reason.txt")
        reason_file.write_text(
            f"file: {mask_identities(record.name)}\nsource: {record.source}\nsha256: {record.sha256}\n"
            f"attempts: {record.attempts}\nreceived: {record.received_at.isoformat()}\n"
            f"quarantined: {now.isoformat()}\nlast error: {mask_identities(reason)}\n",
            encoding="utf-8",
        )
        self._store.record_judgement(
            Judgement(
                file_id=record.id,
                status="quarantined",
                client_orgnr=None,
                file_id_in_file=None,
                sequence=None,
                case_count=0,
                accepted=(),
                accepted_capital_ore=0,
                receipt_id=receipt_path.name.removesuffix(".kvittens.xml"),
                receipt_path=str(receipt_path),
                receipt_sha256=receipt_sha256,
                previous_receipt_sha256=previous,
                final_path=str(final_path),
                judged_at=now,
                expected_journal=None,
                finding_counts=((finding.code, finding.severity.value, 1),),
            )
        )
        self._store.log_event("file-quarantined", record.name, reason, now=now)
        log.error("file %s quarantined after %d attempts: %s", record.name, attempts, reason)
        self._publish(record.id, source=source, candidate=candidate)
        return IntakeResult(record.id, "quarantined", receipt_path, final_path)

    # -- after a crash -------------------------------------------------------------------------

    def recover(self) -> int:
        """Finish every file that was committed but not yet published; drop stale temporaries."""
        finished = 0
        for record in self._store.files_in_state(FileState.JUDGED):
            log.info("recovering file %s (committed before a stop): publishing its receipt", record.name)
            self._publish(record.id, source=None, candidate=None)
            finished += 1
        for stale in self._folders.receipts.glob("*/.*.kvittens.xml.tmp"):
            stale.unlink(missing_ok=True)
        return finished


def _tally(verdict: FileVerdict) -> dict[str, Any]:
    """A verdict's cases and öre by outcome, and its findings per (code, severity), for reports.

    Each case's capital is turned into öre on its own and the sums are of those, so that the
    report's "in = journaled + rejected + duplicate" holds to the öre whatever a file holds.
    """
    counts = dict.fromkeys(CaseStatus, 0)
    ore = dict.fromkeys(CaseStatus, 0)
    findings: Counter[tuple[str, str]] = Counter((f.code, f.severity.value) for f in verdict.findings)
    for outcome in verdict.cases:
        counts[outcome.status] += 1
        ore[outcome.status] += _ore(outcome.capital)
        for finding in outcome.findings:
            findings[(finding.code, finding.severity.value)] += 1
    return {
        "accepted_capital_ore": ore[CaseStatus.ACCEPTED],
        "rejected_count": counts[CaseStatus.REJECTED],
        "duplicate_count": counts[CaseStatus.DUPLICATE],
        "capital_in_ore": sum(ore.values()),
        "rejected_capital_ore": ore[CaseStatus.REJECTED],
        "duplicate_capital_ore": ore[CaseStatus.DUPLICATE],
        "finding_counts": tuple((code, severity, n) for (code, severity), n in sorted(findings.items())),
    }


#: The largest amount in öre the store holds (SQLite's INTEGER); the schema allows far less.
_MAX_ORE = 2**63 - 1


def _ore(kronor: Decimal) -> int:
    """Exact öre. An amount no valid case can have (a fraction of an öre, more than the store can
    hold, not a number) counts as 0: its case is rejected by the schema (S01) anyway, and a rejected
    case must get its receipt, not crash the commit."""
    try:
        ore = kronor * 100
        if not ore.is_finite() or ore != ore.to_integral_value() or abs(ore) > _MAX_ORE:
            return 0
        return int(ore)
    except InvalidOperation:
        return 0


def _temporary_receipt(final: Path) -> Path:
    return final.with_name(f".{final.name}.tmp")


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
