"""Intake: one finished file from a source to its receipt and its final place.

The order of effects is what makes a crash harmless:

0. **copy in**: the file's bytes are copied from the source into the gateway's own owner-only
   staging file and hashed on the way. From here on the gateway works on its copy: the
   producer's file is never changed, only removed once its receipt is out;
1. **claim**: the file's SHA-256 is recorded and one more attempt counted, before any work; a file
   that keeps killing the gateway is therefore quarantined after ``max_attempts`` restarts;
2. **judge**: validate (the same code as ``validate``), spool the accepted cases to disk, and
   write the receipt under a temporary name (fsynced);
3. **commit**: if the source still shows the file that was copied, one transaction records the
   verdict, the accepted cases in their client's open journal and the receipt's SHA-256 as the
   new head of the receipt chain;
4. **publish**: give the receipt its final name, move the staged copy to ``var/archive/``,
   ``var/rejected/`` or ``var/quarantine/`` (never over an existing file), remove the file from
   its source, and mark it done.

A crash before 3 leaves the file claimed: the next scan does it again from the start (the
temporary receipt is discarded). A crash after 3 is finished by :meth:`Intake.recover` at start.

Failures are sorted by whose fault they are. The environment's (a folder that cannot be written,
the store locked or full: :class:`~gateway.errors.OutputError`,
:class:`~gateway.errors.StoreUnavailableError`; the source unreachable) give the attempt back and
propagate, so that the daemon pauses; one file that cannot be read now
(:class:`~gateway.errors.FileUnavailableError`) waits with a backoff of its own. Only a failure that
follows the file (an exception while judging its content, a crash or a timeout while it is in
hand) counts towards its quarantine.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

from gateway import __version__
from gateway.adapters import Candidate, Source
from gateway.backoff import Backoff
from gateway.config import GatewayConfig, SourceConfig
from gateway.domain.findings import Finding, Severity
from gateway.domain.identity import mask_identities
from gateway.domain.journal import JournalCase, journal_case
from gateway.domain.judging import CaseOutcome, CaseStatus, FileStatus, FileVerdict
from gateway.domain.model import Case, FileHeader
from gateway.domain.rules import RULESET_VERSION
from gateway.domain.rules.case_rules import ALLOWED_ATTACHMENT_TYPES
from gateway.errors import (
    FileUnavailableError,
    OutputError,
    SourceError,
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
)
from gateway.folders import Folders
from gateway.formats.package import is_package, open_package
from gateway.formats.receipt import ReceiptStamp, receipt_file_name, write_receipt
from gateway.fsutil import (
    ReadError,
    copy_new,
    copy_replacing,
    display_name,
    move_new,
    publish,
    remove_stale_temporaries,
    safe_file_name,
    sha256_file,
    write_private,
)
from gateway.service.receipts import copies_of, receipt_sources
from gateway.service.validation import FileReport, LookedAhead, ValidationSettings, validate_file
from gateway.store import AcceptedCase, FileRecord, FileState, Judgement, file_lease_name
from gateway.store.roles import IntakeStore

# The logger keeps its published name (operators filter on it), wherever the module lives.
log = logging.getLogger("gateway.pipeline")

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_FILE_TIMEOUT_SECONDS = 600.0
#: How long what a process has in hand stays its own without a heartbeat (a node's heartbeat
#: renews it every third of this): after a kill -9 another node takes the file over this late.
DEFAULT_LEASE_SECONDS = 30.0
#: The name of a copy being taken in starts so: ".incoming-<node>-<pid>".
INCOMING_PREFIX = ".incoming-"
#: On a data folder several nodes share, a temporary another node may still be writing is left
#: alone for this long by a node that starts (its writer commits within seconds, or starts over).
OTHER_NODES_WORK_SECONDS = 3600.0
#: How long a file that ends in the middle may stay so before it is quarantined (F08).
DEFAULT_INCOMPLETE_SECONDS = 300.0
#: An original's name in var/ is cut to this many bytes of UTF-8 (after its file id and a dash).
ORIGINAL_NAME_MAX_BYTES = 200
#: Verdicts that journal cases: their originals go to var/archive/.
ACCEPTING = ("accepted", "partially-accepted")


def _fields(event: str, record: FileRecord) -> dict[str, object]:
    """A file's fields on a log line, for machines reading JSON logs (the filter masks them)."""
    return {"event": event, "file": record.name, "source": record.source, "sha256": record.sha256}


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

    def read(self, *, client_id: str, client_orgnr: str) -> Iterator[AcceptedCase]:
        """Every case spooled (those the judge accepted: when the file's verdict accepts any,
        it accepts all of them)."""
        self._file.seek(0)
        for line in self._file:
            position, fingerprint, sha256, capital, count, protected, texts, payload = line.rstrip(
                "\n"
            ).split("\t", 7)
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

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True, slots=True)
class IntakeResult:
    file_id: int
    status: str
    receipt: Path | None
    final_path: Path | None


@dataclass(slots=True)
class FileWait:
    """A file that cannot be taken now (its environment's fault, not its own), for `status`."""

    source: str
    name: str
    cause: str
    message: str
    since: datetime
    failures: int = 0


#: How long a file that could not be taken waits before the next try: 1 s, 2 s ... at most 5 min.
FILE_WAIT_BACKOFF = Backoff(base_seconds=1.0, max_seconds=300.0)
#: Backoff before the next attempt at a file the gateway failed on (a failure that counts).
FILE_RETRY_BACKOFF = Backoff(base_seconds=1.0, max_seconds=300.0)
#: A commit that lost a race with another writer (a seal, another node) is simply done again ...
CONFLICT_RETRY_SECONDS = 0.2
#: ... this many times in a row; beyond, the conflict is taken as the file's own and counts.
MAX_CONFLICTS = 5
#: Files a source lists as `FileWait` in `status` at most.
MAX_WAITS_SHOWN = 100


class PublishError(Exception):
    """A committed file could not be published yet (a name already taken, a source refusing);
    it stays judged and is tried again with a backoff."""


class Intake:
    """Takes files from sources through validation to receipts, one at a time."""

    def __init__(
        self,
        config: GatewayConfig,
        store: IntakeStore,
        folders: Folders,
        *,
        clock: Callable[[], datetime],
        sources: Mapping[str, Source] | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        file_timeout: float = DEFAULT_FILE_TIMEOUT_SECONDS,
        file_mode: int = 0o600,
        incomplete_seconds: float = DEFAULT_INCOMPLETE_SECONDS,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        """``lease_seconds``: how long a file in hand stays this process's without a heartbeat
        (the daemon's node heartbeat renews it)."""
        self._config = config
        self._store = store
        self._folders = folders
        self._clock = clock
        self._sources = dict(sources or {})
        self._max_attempts = max_attempts
        self._file_timeout = file_timeout
        self._file_mode = file_mode
        self._client_ids = {client.orgnr: client.id for client in config.clients}
        # When a file was first found to end in the middle, on our clock (by source location).
        self._first_incomplete: dict[tuple[str, str], float] = {}
        self._incomplete_seconds = incomplete_seconds
        self._postal = config.load_postal_directory()
        # Files that cannot be taken now, by (source, location): told once per cause.
        self._waits: dict[tuple[str, str], FileWait] = {}
        # Attempts to give back once the store can be written again (it failed when they were due).
        self._unreleased: dict[int, str] = {}
        # Committed files whose publishing failed: file id -> (failures, next try on our clock).
        self._publish_backoff: dict[int, tuple[int, float]] = {}
        # Conflicts in a row per file (a constraint that fails every time is the file's fault).
        self._conflicts: dict[int, int] = {}
        # The copy being taken in, named after the node and process (nodes share var/staging).
        self._incoming = folders.staging / f"{INCOMING_PREFIX}{config.node}-{os.getpid()}"
        self._lease_seconds = lease_seconds
        self._receipt_sources = receipt_sources(config)

    # -- what `status` shows --------------------------------------------------------------------

    def waiting_files(self) -> list[FileWait]:
        """Files that cannot be taken now, and why (oldest first)."""
        return sorted(self._waits.values(), key=lambda wait: wait.since)[:MAX_WAITS_SHOWN]

    # -- one file ------------------------------------------------------------------------------

    def process(self, candidate: Candidate, source: Source) -> IntakeResult | None:
        """Copy in, claim, judge, commit and publish one finished file.

        None when the file was not judged now: it cannot be read (it waits), it changed or
        vanished (its new version comes on its own), it was received before and is only tidied,
        or it failed and waits for its next attempt. Raises OutputError or StoreUnavailableError when
        the environment fails (the daemon pauses intake), SourceError when the source does.
        """
        self._give_back_attempts()
        lease = file_lease_name(candidate.source, _recorded(candidate))
        if not self._store.take_lease(lease, now=self._clock(), lease_seconds=self._lease_seconds):
            # Another node has it in hand (several nodes share the sources): never two at once.
            source.hold(candidate, self._lease_seconds)
            return None
        try:
            return self._process_held(candidate, source)
        finally:
            self._let_go(lease)

    def _let_go(self, lease: str) -> None:
        """Release a file's lease; when the store cannot be written the lease lapses with the
        node's heartbeat, or this process takes it again first."""
        try:
            self._store.release_lease(lease)
        except StoreUnavailableError:
            log.debug("lease %s not released now: it lapses or is taken again", lease)

    def _process_held(self, candidate: Candidate, source: Source) -> IntakeResult | None:
        key = (candidate.source, candidate.location)
        try:
            sha256, size = self._copy_in(candidate, source)
        except FileUnavailableError as unavailable:
            self._file_waits(candidate, source, unavailable)
            return None
        self._waits.pop(key, None)
        received = self._store.received_file(
            source=candidate.source, path=_recorded(candidate), sha256=sha256, identity=candidate.identity
        )
        if received is not None:
            self._incoming.unlink(missing_ok=True)
            if received.state is FileState.JUDGED:
                # Its verdict is committed and publishing it waits (a name taken, a source that
                # could not be tidied): the same file, never a second arrival.
                source.hold(candidate, FILE_WAIT_BACKOFF.max_seconds)
                return None
            # Received and receipted before, but a crash came before the source was tidied (an
            # SFTP file not yet moved away): finish that, and do not receive it a second time.
            log.info(
                "file %s from %s was received before (%s): tidying the source",
                candidate.name,
                candidate.source,
                received.status,
                extra=_fields("file-tidied", received),
            )
            source.finish(candidate, accepted=received.status in ACCEPTING)
            return None
        record = self._store.claim_file(
            source=candidate.source,
            name=candidate.name,
            path=_recorded(candidate),
            sha256=sha256,
            size=size,
            now=self._clock(),
            written_at=datetime.fromtimestamp(candidate.mtime_ns / 1e9, tz=UTC),
            identity=candidate.identity,
        )
        try:
            staged = self._staged(record.id)
            try:
                self._incoming.replace(staged)
            except OSError as error:
                raise output_error(self._folders.staging, error) from error
            if record.attempts <= self._max_attempts:
                log.info(
                    "file %s from %s claimed (attempt %d, sha256 %s)",
                    record.name,
                    record.source,
                    record.attempts,
                    sha256[:12],
                    extra=_fields("file-claimed", record),
                )
            return self._judge(record, candidate, source, staged)
        except (OutputError, StoreUnavailableError, SourceError) as error:
            # The environment failed, not the file: the attempt does not count.
            self._give_back(record.id, f"waiting (not counted as an attempt): {error}")
            raise

    def _copy_in(self, candidate: Candidate, source: Source) -> tuple[str, int]:
        """The file's bytes into the gateway's own staging file (hashed on the way).

        The gateway works on its own owner-only copy from here on: a producer who rewrites or
        deletes its file meanwhile, or owns it as another user, changes nothing for the copy,
        and a read error here is the file's source's (it waits), a write error the gateway's.
        """
        self._folders.staging.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            with source.open(candidate) as stream:
                sha256, size = copy_replacing(stream, self._incoming, mode=self._file_mode)
        except ReadError as error:
            raise FileUnavailableError(
                f"{candidate.name} cannot be read: {error.strerror or error}", cause="read-error"
            ) from error
        except OSError as error:
            raise output_error(self._folders.staging, error) from error
        return sha256, size

    def _judge(
        self, record: FileRecord, candidate: Candidate, source: Source, staged: Path
    ) -> IntakeResult | None:
        try:
            if record.attempts > self._max_attempts:
                result: IntakeResult | None = self.quarantine(record, source=source, candidate=candidate)
            elif not candidate.name_is_valid:
                result = self._commit_verdict(
                    record, self._name_not_utf8(record), candidate, source, spool=None
                )
            else:
                result = self._judge_and_commit(record, candidate, source, staged)
        except FileUnavailableError as changed:
            # Changed or deleted in its source before its verdict: not received. A new version is
            # claimed on its own; the staged copy of this one goes.
            log.info(
                "file %s from %s %s: its claim is dropped",
                record.name,
                record.source,
                changed,
                extra=_fields("file-abandoned", record),
            )
            self._store.abandon_claim(record.id, str(changed), now=self._clock())
            staged.unlink(missing_ok=True)
            return None
        except StoreConflictError as conflict:
            # Another writer (a seal, another node) moved what the verdict relied on: not the
            # file's fault and not an attempt. It is judged again at once, unless it keeps
            # conflicting: then the conflict is the file's own and counts.
            conflicts = self._conflicts.get(record.id, 0) + 1
            self._conflicts[record.id] = conflicts
            if conflicts <= MAX_CONFLICTS:
                log.info("file %s: %s; judging it again", record.name, conflict)
                self._give_back(record.id, str(conflict))
                source.hold(candidate, CONFLICT_RETRY_SECONDS)
                return None
            return self._failed(record, candidate, source, conflict)
        except IncompleteFileError as error:
            return self._incomplete(record, error, source=source, candidate=candidate)
        except (OutputError, StoreUnavailableError, SourceError):
            raise
        except Exception as error:
            return self._failed(record, candidate, source, error)
        self._first_incomplete.pop((candidate.source, candidate.location), None)
        self._conflicts.pop(record.id, None)
        return result

    def _failed(
        self, record: FileRecord, candidate: Candidate, source: Source, error: Exception
    ) -> IntakeResult | None:
        """The gateway's own failure on this file, which counts. (Permanent problems with the
        content are findings, not exceptions: anything here is the gateway failing on this file.)
        It stays claimed; after max_attempts it goes to quarantine, and the daemon goes on."""
        if self._store.file(record.id).state is not FileState.CLAIMED:
            # Failed after the commit: the verdict stands; publishing is retried on its own.
            log.warning("file %s: publishing its receipt failed (%s); tried again", record.name, error)
            source.hold(candidate, FILE_WAIT_BACKOFF.max_seconds)
            return None
        reason = f"{type(error).__name__}: {error}"
        self._store.record_failure(record.id, reason)
        self._store.log_event("file-failed", record.name, reason, now=self._clock())
        log.error(
            "file %s failed on attempt %d of %d: %s",
            record.name,
            record.attempts,
            self._max_attempts,
            reason,
            exc_info=not isinstance(error, FileTimeoutError | StoreConflictError),
            extra=_fields("file-failed", record),
        )
        if record.attempts >= self._max_attempts:
            return self.quarantine(self._store.file(record.id), source=source, candidate=candidate)
        source.hold(candidate, FILE_RETRY_BACKOFF.delay(record.attempts))
        return None

    def _file_waits(self, candidate: Candidate, source: Source, unavailable: FileUnavailableError) -> None:
        """A file that cannot be taken now: held with a backoff, told once per cause."""
        key = (candidate.source, candidate.location)
        self._incoming.unlink(missing_ok=True)
        if unavailable.cause in ("vanished", "changed"):
            self._waits.pop(key, None)
            return  # gone, or a new version: the next scan sees what is there now
        wait = self._waits.get(key)
        if wait is None or wait.cause != unavailable.cause:
            log.warning(
                "file %s from %s cannot be taken now: %s. It waits and is tried again (not counted as an attempt)",
                candidate.name,
                candidate.source,
                unavailable,
                extra={"event": "file-waiting", "file": candidate.name, "source": candidate.source},
            )
            wait = FileWait(
                candidate.source, candidate.name, unavailable.cause, str(unavailable), self._clock()
            )
            self._waits[key] = wait
        wait.failures += 1
        source.hold(candidate, FILE_WAIT_BACKOFF.delay(wait.failures))

    def _give_back(self, file_id: int, note: str) -> None:
        """Do not count the current attempt; if the store cannot take that now, do it later."""
        try:
            self._store.release_attempt(file_id, note)
        except StoreUnavailableError:
            self._unreleased[file_id] = note

    def _give_back_attempts(self) -> None:
        for file_id, note in list(self._unreleased.items()):
            self._store.release_attempt(file_id, note)
            del self._unreleased[file_id]

    def _incomplete(
        self, record: FileRecord, error: IncompleteFileError, *, source: Source, candidate: Candidate
    ) -> IntakeResult | None:
        """A file that ends in the middle: probably still being written. Wait, don't reject it.

        Retried until a stability timeout, then quarantined; never rejected as invalid on the
        first try. The attempt is not counted against the file.
        """
        key = (candidate.source, candidate.location)
        first = self._first_incomplete.setdefault(key, time.monotonic())
        self._store.release_attempt(record.id, f"incomplete: {error}")
        if time.monotonic() - first < self._incomplete_seconds:
            log.info("file %s ends in the middle (%s): waiting for the rest", record.name, error)
            source.hold(candidate, max(1.0, self._incomplete_seconds / 10))
            return None
        self._first_incomplete.pop(key, None)
        return self.quarantine(
            self._store.file(record.id), source=source, candidate=candidate, incomplete=True
        )

    def _settings(self, source_config: SourceConfig | None) -> ValidationSettings:
        config = self._config
        return ValidationSettings(
            today=self._clock().astimezone(_zone(config.timezone)).date(),
            history=LookedAhead(self._store),
            clients=config.client_orgnrs(),
            source_clients=config.source_orgnrs(source_config) if source_config else None,
            strict_sequence=config.rules.strict_sequence,
            postal_directory=self._postal,
            max_attachment_bytes=config.rules.max_attachment_bytes,
            policy=config.on_case_error,
            fingerprint_cases=True,
            spool_folder=self._folders.spool,
            file_format=source_config.format if source_config else None,
            csv_mapping=source_config.csv_mapping if source_config else None,
        )

    def _judge_and_commit(
        self, record: FileRecord, candidate: Candidate, source: Source, staged: Path
    ) -> IntakeResult:
        source_config = next((s for s in self._config.sources if s.name == record.source), None)
        settings = self._settings(source_config)
        try:
            spool = _CaseSpool(self._folders.spool)
        except OSError as error:
            raise output_error(self._folders.spool, error) from error
        try:

            def keep_accepted(case: Case, outcome: CaseOutcome) -> None:
                if outcome.status is CaseStatus.ACCEPTED:
                    claims = tuple(claim.reference for claim in case.claims if claim.reference)
                    normalised = journal_case(case, today=settings.today, source_sha256=record.sha256)
                    spool.add(outcome.index, case.content_sha256, claims, normalised)

            # The time limit covers the work on the content only, never the commit.
            try:
                with _time_limit(self._file_timeout):
                    report = validate_file(staged, settings, name=record.name, on_case=keep_accepted)
            except OSError as error:
                # Reading the gateway's own copy or writing its spool: the environment's fault.
                raise output_error(self._folders.var, error) from error
            with report:
                if report.sha256 != record.sha256:
                    raise OutputError(
                        f"the staged copy of {record.name} changed while it was read",
                        folder=str(self._folders.staging),
                        waits_for="a staging folder nothing else writes",
                    )
                if report.truncated:
                    raise IncompleteFileError("the XML ends before the root element is closed")
                if report.verdict.accepted_count:
                    self._keep_attachments(staged)
                try:
                    spool.flush()  # a full disk shows here, not in the middle of the commit
                except OSError as error:
                    raise output_error(self._folders.spool, error) from error
                return self._commit_verdict(record, report, candidate, source, spool=spool)
        finally:
            spool.close()

    def _keep_attachments(self, path: Path) -> None:
        """Copy a package's attachments to var/attachments/<sha256> before the verdict is committed.

        Content-addressed: a name from outside is never used as a path, and an attachment sent
        twice is kept once. Only what passed rule A06 (type and size) is kept.
        """
        try:
            with path.open("rb") as raw:
                if not is_package(raw.read(4)):
                    return
                raw.seek(0)
                package = open_package(raw, max_attachment_bytes=self._config.rules.max_attachment_bytes)
                for name, facts in package.attachments.items():
                    target = self._folders.attachments / facts.sha256
                    if (
                        not facts.sha256
                        or target.exists()
                        or facts.content_type not in ALLOWED_ATTACHMENT_TYPES
                    ):
                        continue
                    with package.archive.open(name) as member:
                        try:
                            digest, _ = copy_new(member, target, mode=self._file_mode)  # type: ignore[arg-type]
                        except FileExistsError:
                            continue  # kept meanwhile: content-addressed, so the same bytes
                    if digest != facts.sha256:
                        target.unlink()
                        raise OutputError(
                            f"attachment {name} changed while it was copied",
                            folder=str(self._folders.attachments),
                            waits_for="a staging folder nothing else writes",
                        )
        except zipfile.BadZipFile as error:
            # Judged a moment ago from the same bytes: only the staged copy changing explains it.
            raise OutputError(
                f"the staged package changed: {error}",
                folder=str(self._folders.staging),
                waits_for="a staging folder nothing else writes",
            ) from error
        except OSError as error:
            raise output_error(self._folders.attachments, error) from error

    def _commit_verdict(
        self,
        record: FileRecord,
        report: FileReport,
        candidate: Candidate,
        source: Source,
        *,
        spool: _CaseSpool | None,
        final_dir: Path | None = None,
        status: str | None = None,
    ) -> IntakeResult:
        """Write the receipt (temporary name), check the file is still the one taken, commit,
        publish."""
        verdict = report.verdict
        orgnr = verdict.header.client_orgnr
        client_orgnr = "".join(c for c in orgnr if c.isdigit())[-10:] if orgnr else None
        accepting = verdict.accepted_count > 0
        client_id = self._client_ids.get(client_orgnr or "")
        if accepting and client_id is None:
            raise StoreError(f"cases accepted for {orgnr}, which is not a configured client")
        now = self._clock()
        # Every accepted case of a file is one client's: they all join its open journal.
        journal_id = self._store.open_journal_id(client_id, now=now) if accepting and client_id else None
        final_path = self._final_path(
            record, final_dir or (self._folders.archive if accepting else self._folders.rejected), now
        )
        receipt_path, receipt_sha256, previous, position = self._write_receipt(
            record, report, now, journal_id
        )
        if not source.unchanged(candidate):
            _temporary_receipt(receipt_path).unlink(missing_ok=True)
            raise FileUnavailableError(
                "changed or vanished in its source before its verdict", cause="changed"
            )
        accepted = (
            spool.read(client_id=client_id, client_orgnr=client_orgnr or "")
            if spool is not None and accepting and client_id is not None
            else iter(())
        )
        tally = verdict.tally
        self._store.record_judgement(
            Judgement(
                file_id=record.id,
                status=status or verdict.status.value,
                client_orgnr=client_orgnr,
                file_id_in_file=verdict.header.file_id,
                sequence=verdict.header.sequence,
                case_count=verdict.case_count,
                accepted=accepted,
                accepted_capital_ore=tally.ore[CaseStatus.ACCEPTED],
                receipt_id=receipt_path.name.removesuffix(".kvittens.xml"),
                receipt_path=self._folders.stored(receipt_path),
                receipt_sha256=receipt_sha256,
                previous_receipt_sha256=previous,
                chain_position=position,
                unjournaled=(
                    (outcome.index, outcome.reference, outcome.status.value)
                    for outcome in verdict.cases
                    if outcome.status is not CaseStatus.ACCEPTED
                ),
                final_path=self._folders.stored(final_path),
                judged_at=now,
                expected_journal=journal_id,
                client_id=client_id,
                rejected_count=tally.counts[CaseStatus.REJECTED],
                duplicate_count=tally.counts[CaseStatus.DUPLICATE],
                capital_in_ore=sum(tally.ore.values()),
                rejected_capital_ore=tally.ore[CaseStatus.REJECTED],
                duplicate_capital_ore=tally.ore[CaseStatus.DUPLICATE],
                finding_counts=tuple(
                    (code, severity, n) for (code, severity), n in sorted(tally.findings.items())
                ),
            )
        )
        log.info(
            "file %s: %s, %d of %d cases accepted; receipt %s",
            record.name,
            status or verdict.status.value,
            verdict.accepted_count,
            verdict.case_count,
            receipt_path.name,
            extra={
                **_fields("file-judged", record),
                "client": client_id,
                "journal": journal_id,
                "status": status or verdict.status.value,
            },
        )
        self._publish_now(record.id, candidate, source)
        return IntakeResult(record.id, status or verdict.status.value, receipt_path, final_path)

    def _final_path(self, record: FileRecord, folder: Path, now: datetime) -> Path:
        """Where the original goes: ``<folder>/<day>/<file id>-<safe name>`` (unique by its id)."""
        day = now.astimezone(_zone(self._config.timezone)).date().isoformat()
        name = f"{record.id}-{safe_file_name(record.name, max_bytes=ORIGINAL_NAME_MAX_BYTES)}"
        return (folder / day / name) if folder != self._folders.quarantine else folder / name

    def _write_receipt(
        self, record: FileRecord, report: FileReport, now: datetime, journal_id: str | None
    ) -> tuple[Path, str, str, int]:
        """Write the receipt under its temporary name (fsynced); return (final path, sha256, previous,
        its place in the chain).

        The final name is unique by construction: the plain contract name when no other file has
        it, else the same with the file's id in it (the store refuses a name another file holds).
        """
        day = now.astimezone(_zone(self._config.timezone)).date().isoformat()
        folder = self._folders.receipts / day
        final = folder / receipt_file_name(record.name, record.sha256)
        if self._store.receipt_path_taken(self._folders.stored(final)) or final.exists():
            final = folder / receipt_file_name(record.name, record.sha256, file_id=record.id)
        previous, length = self._store.receipt_chain_tip()
        stamp = ReceiptStamp(
            receipt_id=str(uuid.uuid4()),
            created=now,
            received=record.received_at,
            source=record.source,
            previous_sha256=previous,
            gateway_version=__version__,
            ruleset_version=RULESET_VERSION,
            config_sha256=self._config.sha256,
            chain_position=length + 1,
        )
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            sha256 = write_private(
                _temporary_receipt(final),
                lambda out: write_receipt(out, report, stamp, journal_id=journal_id),
                mode=self._file_mode,
            )
        except OSError as error:
            raise output_error(folder, error) from error
        return final, sha256, previous, length + 1

    # -- publishing: after the commit ----------------------------------------------------------

    def _publish_now(self, file_id: int, candidate: Candidate, source: Source) -> None:
        """Publish right after the commit; a failure leaves the file judged, tried again later."""
        try:
            self._publish(file_id, candidate, source)
        except PublishError as error:
            self._publish_failed(file_id, error)
        except OSError as error:
            self._publish_failed(file_id, error)
            raise output_error(_folder_of(error, self._folders.var), error) from error

    def publish_pending(self, *, now: bool = False) -> int:
        """Publish every committed file whose publishing failed or was cut short (at start, and
        then on every round with a backoff per file; ``now``: whatever the backoff). Returns how
        many were finished."""
        finished = 0
        moment = time.monotonic()
        for record in self._store.files_in_state(FileState.JUDGED):
            _, next_try = self._publish_backoff.get(record.id, (0, 0.0))
            if next_try > moment and not now:
                continue
            lease = file_lease_name(record.source, record.path)
            if not self._store.take_lease(lease, now=self._clock(), lease_seconds=self._lease_seconds):
                continue  # another node is publishing it (it judged it a moment ago)
            try:
                self._publish(record.id, None, None)
            except PublishError as error:
                self._publish_failed(record.id, error)
                continue
            except OSError as error:
                self._publish_failed(record.id, error)
                raise output_error(_folder_of(error, self._folders.var), error) from error
            finally:
                self._let_go(lease)
            finished += 1
        return finished

    def _publish_failed(self, file_id: int, error: BaseException) -> None:
        failures, _ = self._publish_backoff.get(file_id, (0, 0.0))
        delay = FILE_WAIT_BACKOFF.delay(failures + 1)
        if failures == 0:
            log.warning(
                "file %d: its receipt is committed but publishing it failed: %s (tried again)", file_id, error
            )
        self._publish_backoff[file_id] = (failures + 1, time.monotonic() + delay)

    def _publish(self, file_id: int, candidate: Candidate | None, source: Source | None) -> None:
        """Steps after the commit: receipt to its final name, the staged copy to its final place,
        the source tidied, done. Each step is safe to repeat; nothing is ever overwritten."""
        record = self._store.file(file_id)
        if record.state is not FileState.JUDGED:
            self._publish_backoff.pop(file_id, None)
            return
        assert record.receipt_path is not None and record.final_path is not None
        receipt = self._folders.located(record.receipt_path)
        temporary = _temporary_receipt(receipt)
        if temporary.exists():
            # Only where another node can write it: a process taken for dead that lost the file
            # may have written its own receipt over the committed one. (One daemon per data
            # folder cannot, and a big receipt is not read a second time for nothing.)
            shared = self._config.several_nodes
            if (
                shared
                and record.receipt_sha256 is not None
                and sha256_file(temporary) != record.receipt_sha256
            ):
                # Never published as if it were the committed receipt; a person looks.
                raise PublishError(
                    f"{temporary} is not the receipt committed for {record.name} (its SHA-256 differs): "
                    "not published"
                )
            try:
                publish(temporary, receipt)
            except FileExistsError:
                if sha256_file(receipt) != record.receipt_sha256:
                    raise PublishError(
                        f"{receipt} exists with other content: the receipt of {record.name} is not published over it"
                    ) from None
                temporary.unlink()  # published before a crash cut the tidying short
        elif not receipt.exists():
            log.error("file %s: its receipt %s is missing after a crash", record.name, receipt)
        if record.source in self._receipt_sources and receipt.exists():
            # The sender's copy, queued once the receipt is out and before the file is done: a
            # crash in between publishes again and queues again (a copy is queued once).
            self._store.queue_receipt_uploads(
                copies_of(
                    self._folders,
                    receipt,
                    sources=[record.source],
                    subject=f"file:{record.id}",
                    sha256=record.receipt_sha256,
                ),
                now=self._clock(),
            )
        self._place_original(record)
        source = source or self._sources.get(record.source)
        if source is not None and record.source_identity is not None:
            try:
                source.finish(candidate or _candidate_of(record), accepted=record.status in ACCEPTING)
            except SourceError as error:
                raise PublishError(f"the source could not be tidied: {error}") from error
        self._store.mark_done(record.id, final_path=record.final_path, now=self._clock())
        self._publish_backoff.pop(file_id, None)

    def _place_original(self, record: FileRecord) -> None:
        """The staged copy becomes the archived (rejected, quarantined) original, owner-only."""
        assert record.final_path is not None
        final = self._folders.located(record.final_path)
        staged = self._staged(record.id)
        if final.exists():
            if sha256_file(final) != record.sha256:
                raise PublishError(
                    f"{final} exists with other content: the original of {record.name} is not put over it"
                )
            staged.unlink(missing_ok=True)  # moved before a crash cut the tidying short
            return
        if staged.exists():
            move_new(staged, final)
            return
        legacy = Path(record.path)
        if record.source_identity is None and legacy.is_file() and sha256_file(legacy) == record.sha256:
            # Claimed by a gateway before version 5 of the store, which judged files in place.
            with legacy.open("rb") as original:
                final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                copy_new(original, final, mode=self._file_mode)
            legacy.unlink()
            return
        log.error("file %s: its original is neither staged nor at %s", record.name, final)

    def _staged(self, file_id: int) -> Path:
        return self._folders.staging / str(file_id)

    # -- file-level verdicts that read no case --------------------------------------------------

    def _name_not_utf8(self, record: FileRecord) -> FileReport:
        finding = Finding(
            "F01",
            Severity.ERROR,
            "/",
            None,
            f"Filnamnet är inte giltig UTF-8 ({record.name}); filen har inte lästs. Skicka den igen under ett "
            "namn med bara bokstäver, siffror, punkt, bindestreck och understreck.",
            f"The file name is not valid UTF-8 ({record.name}); the file was not read. Send it again under a "
            "name of letters, digits, dots, hyphens and underscores only.",
        )
        verdict = FileVerdict.of_file(FileStatus.REJECTED, [finding], FileHeader("/Arendefil/Filhuvud", None))
        return FileReport(record.name, record.size, record.sha256, verdict)

    def quarantine(
        self,
        record: FileRecord,
        *,
        source: Source,
        candidate: Candidate,
        incomplete: bool = False,
    ) -> IntakeResult:
        """Give up on a file that failed ``max_attempts`` times: a receipt, and the quarantine folder."""
        attempts = min(record.attempts, self._max_attempts)
        reason = record.last_error or "the gateway stopped (crashed or was killed) while processing it"
        if incomplete:
            sv = (
                f"Filen tar slut mitt i innehållet (XML eller JSON) och blev inte färdig på {self._incomplete_seconds:g} "
                "sekunder. Den har lagts i karantän; skicka den igen, hel (skriv gärna under ett tillfälligt "
                "namn som .part och byt namn när den är klar)."
            )
            en = (
                f"The file ends in the middle of its content (XML or JSON) and was not completed within {self._incomplete_seconds:g} "
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
        verdict = FileVerdict.of_file(FileStatus.REJECTED, [finding], FileHeader("/Arendefil/Filhuvud", None))
        report = FileReport(record.name, record.size, record.sha256, verdict)
        now = self._clock()
        final_path = self._final_path(record, self._folders.quarantine, now)
        # The reason first: after the commit a crash must not leave a quarantined file unexplained.
        reason_file = final_path.with_name(final_path.name + ".reason.txt")
        text = (
            f"file: {mask_identities(record.name)}\nsource: {record.source}\nsha256: {record.sha256}\n"
            f"attempts: {record.attempts}\nreceived: {record.received_at.isoformat()}\n"
            f"quarantined: {now.isoformat()}\nlast error: {mask_identities(display_name(reason))}\n"
        )
        try:
            self._folders.quarantine.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_private(reason_file, text.encode("utf-8"), mode=self._file_mode)
        except OSError as error:
            raise output_error(self._folders.quarantine, error) from error
        result = self._commit_verdict(
            record,
            report,
            candidate,
            source,
            spool=None,
            final_dir=self._folders.quarantine,
            status="quarantined",
        )
        self._store.log_event("file-quarantined", record.name, reason, now=now)
        log.error(
            "file %s quarantined after %d attempts: %s",
            record.name,
            attempts,
            reason,
            extra=_fields("file-quarantined", record),
        )
        return result

    # -- after a crash -------------------------------------------------------------------------

    def recover(self) -> int:
        """Finish every file that was committed but not yet published; drop stale temporaries and
        staged copies of files that were never committed (they are copied in again)."""
        finished = self.publish_pending(now=True)
        judged = self._store.files_in_state(FileState.JUDGED)
        # A committed file's temporary receipt and staged copy are all there is of them until
        # they are published: kept, whatever happened to publishing just now.
        kept_receipts = {
            _temporary_receipt(self._folders.located(r.receipt_path)) for r in judged if r.receipt_path
        }
        kept_staged = {str(r.id) for r in judged}
        shared = self._config.several_nodes
        for stale in self._folders.receipts.glob("*/.*.kvittens.xml.tmp"):
            if stale not in kept_receipts and not (shared and _younger_than(stale, OTHER_NODES_WORK_SECONDS)):
                stale.unlink(missing_ok=True)
        for folder in self._folders.written():
            remove_stale_temporaries(folder)
        if self._folders.staging.is_dir():
            for entry in self._folders.staging.iterdir():
                if not entry.is_file() or entry.name in kept_staged:
                    continue
                if entry.name.isdigit() and self._still_needed(int(entry.name)):
                    continue
                # Named by node and pid: any other name is another process's (of this node's
                # earlier run, or of another node: "gw" must not take "gw-2"'s for its own).
                others_incoming = entry.name.startswith(INCOMING_PREFIX) and entry.name != self._incoming.name
                if others_incoming and shared and _younger_than(entry, OTHER_NODES_WORK_SECONDS):
                    continue  # another node's copy being taken in
                entry.unlink(missing_ok=True)
        return finished

    def _still_needed(self, file_id: int) -> bool:
        """Whether the staged copy of file ``file_id`` is still someone's, asked now, entry by
        entry: another live node has the file in hand (its lease, taken before the copy was made
        and let go only after the copy was placed, is held), or its verdict is committed and the
        copy waits to be placed. Asked at the moment of removal, since another node may claim,
        judge or publish while this one looks (a list read earlier would be stale)."""
        try:
            record = self._store.file(file_id)
        except StoreUnavailableError:
            raise  # the store cannot tell now: nothing is removed (recovery is tried again)
        except StoreError:
            return False  # no such file: a copy a crash left before its claim was committed
        if record.state is FileState.JUDGED:
            return True
        lease = file_lease_name(record.source, record.path)
        return lease in self._store.leased_by_others(lease, now=self._clock())

    def abandon_vanished(self) -> int:
        """Drop the claims of files that failed (an attempt counted) and then left their source
        before they were tried again: they would otherwise stay "in progress" for ever."""
        dropped = 0
        in_hand = self._store.leased_by_others("file:", now=self._clock())
        for record in self._store.files_in_state(FileState.CLAIMED):
            source = self._sources.get(record.source)
            if source is None or record.source_identity is None:
                continue
            if file_lease_name(record.source, record.path) in in_hand:
                continue  # another node is judging it now
            if not source.unchanged(_candidate_of(record)):
                self._store.abandon_claim(record.id, "left its source before its verdict", now=self._clock())
                self._staged(record.id).unlink(missing_ok=True)
                dropped += 1
        return dropped


def _younger_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime < seconds
    except OSError:
        return False


def _folder_of(error: OSError, default: Path) -> Path:
    """The folder an OSError is about (its file's folder), so that a pause names the right one."""
    if error.filename:
        named = Path(os.fsdecode(error.filename))
        return named if named.is_dir() else named.parent
    return default


def _recorded(candidate: Candidate) -> str:
    """A candidate's place as the store keeps it: text (bytes that are not UTF-8 escaped). Only a
    restart uses it to reach the file again; where the escaping hides the real name, the file is
    then tidied as a leftover when it is next listed (same bytes, same identity)."""
    return display_name(candidate.location)


def _candidate_of(record: FileRecord) -> Candidate:
    """The candidate a committed file was, rebuilt from its record (after a restart)."""
    written = record.written_at or record.received_at
    return Candidate(
        record.source,
        record.name,
        record.path,
        record.size,
        int(written.timestamp() * 1e9),
        record.source_identity or "",
    )


def output_error(folder: Path, error: OSError) -> OutputError:
    """An OSError on one of the gateway's own folders, as what it waits for."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        waits_for = "free space"
    elif error.errno == errno.EROFS:
        waits_for = "the file system to be writable again"
    elif error.errno in (errno.EACCES, errno.EPERM):
        waits_for = "write access for the gateway's user"
    elif error.errno == errno.ENOENT:
        waits_for = "the folder to exist again"
    else:
        waits_for = "the folder to work again"
    return OutputError(f"{folder}: {error.strerror or error}", folder=str(folder), waits_for=waits_for)


def _temporary_receipt(final: Path) -> Path:
    return final.with_name(f".{final.name}.tmp")


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
