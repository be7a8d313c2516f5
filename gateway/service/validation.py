"""Validate one arriving file end to end: package or plain XML, stream, schema, rules, verdict.

This is the one place that wires the reader (formats) to the judge (domain); both ``validate``
and the daemon's pipeline call :func:`validate_file`, so a dry run and real intake can never
disagree about a file.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from gateway.domain.judging import CaseErrorPolicy, CaseOutcome, FileJudge, FileVerdict
from gateway.domain.model import Case, FileHeader
from gateway.domain.rules import History, NoHistory, RuleContext
from gateway.domain.rules.registry import DEFAULT_MAX_ATTACHMENT_BYTES
from gateway.formats.casecsv import CsvCaseFileReader, CsvMapping
from gateway.formats.casefile import ByteSource, CaseFileReader
from gateway.formats.casejson import JsonCaseFileReader
from gateway.formats.package import PackageError, is_package, open_package
from gateway.fsutil import HashingReader, sha256_stream
from gateway.service.spool import Spill
from gateway.store.roles import IntakeStore

#: How many cases are read ahead, and their history asked for at once, when the history is a store.
LOOK_AHEAD = 500


class LookedAhead:
    """The store as the rules' :class:`History`, asked a batch of cases ahead: what the cases
    about to be judged ask (their references' fingerprints, their claims' cases) is fetched in one
    query each, not one per case (a round trip each to a database server). Answers are the
    store's as of the batch's start; nothing is written while a file is judged, and the verdict's
    commit refuses what another writer took meanwhile, as without looking ahead."""

    def __init__(self, store: IntakeStore) -> None:
        self._store = store
        self._client: str | None = None
        self._references: frozenset[str] = frozenset()
        self._claim_references: frozenset[str] = frozenset()
        self._fingerprints: dict[str, str] = {}
        self._claims: dict[str, str] = {}

    def ask_ahead(self, client_orgnr: str, cases: Sequence[Case]) -> None:
        self._client = client_orgnr
        self._references = frozenset(case.reference for case in cases if case.reference)
        self._claim_references = frozenset(
            claim.reference for case in cases for claim in case.claims if claim.reference
        )
        self._fingerprints = self._store.accepted_case_fingerprints(client_orgnr, sorted(self._references))
        self._claims = self._store.cases_for_claim_references(client_orgnr, sorted(self._claim_references))

    def receipt_for_bytes(self, sha256: str) -> str | None:
        return self._store.receipt_for_bytes(sha256)

    def receipt_for_file_id(self, client_orgnr: str, file_id: str) -> str | None:
        return self._store.receipt_for_file_id(client_orgnr, file_id)

    def last_sequence(self, client_orgnr: str) -> int | None:
        return self._store.last_sequence(client_orgnr)

    def accepted_case_fingerprint(self, client_orgnr: str, reference: str) -> str | None:
        if client_orgnr == self._client and reference in self._references:
            return self._fingerprints.get(reference)
        return self._store.accepted_case_fingerprint(client_orgnr, reference)

    def case_for_claim_reference(self, client_orgnr: str, claim_reference: str) -> str | None:
        if client_orgnr == self._client and claim_reference in self._claim_references:
            return self._claims.get(claim_reference)
        return self._store.case_for_claim_reference(client_orgnr, claim_reference)


@dataclass(frozen=True, slots=True)
class ValidationSettings:
    """Everything a validation needs from outside the file; "today" comes from the edge."""

    today: date
    history: History = dataclasses.field(default_factory=NoHistory)
    clients: frozenset[str] | None = None
    source_clients: frozenset[str] | None = None
    strict_sequence: bool = False
    postal_directory: Mapping[str, str] | None = None
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
    policy: CaseErrorPolicy = CaseErrorPolicy.REJECT_CASE
    #: Fingerprint every case's content: needed only when the history can tell duplicates (A04/A05).
    fingerprint_cases: bool = False
    #: Where the outcomes and references of a large file spill to (None: the system's temp folder).
    spool_folder: Path | None = None
    #: "xml", "json" or "csv" as the source says; None: by the name's extension, else the content.
    file_format: str | None = None
    #: How a CSV file's columns make cases (a source's ``mapping``); a CSV file without one is refused.
    csv_mapping: CsvMapping | None = None


#: The formats a case file may come in, as the ``format`` of a source names them.
FORMATS = ("xml", "json", "csv")


def file_format(name: str, head: bytes, configured: str | None) -> str:
    """The format a file is read in: the source's ``format``, else the name's extension, else
    the content (a JSON case file starts with ``{``, after any byte-order mark and white space).

    >>> file_format("a.json", b"<", None), file_format("a.txt", b" {", None), file_format("a", b"{", "xml")
    ('json', 'json', 'xml')
    """
    if configured is not None:
        return configured
    suffix = Path(name).suffix.lower()
    if suffix in (".json", ".csv"):
        return suffix[1:]
    if suffix != ".xml" and head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{"):
        return "json"
    return "xml"


@dataclass(slots=True)
class FileReport:
    name: str
    size: int
    sha256: str
    verdict: FileVerdict
    #: The XML ended in the middle, at the end of the data (see CaseFileReader.truncated).
    truncated: bool = False
    #: What the judge moved to disk, behind the verdict's cases; closed by :meth:`close`.
    spill: Spill | None = None

    def close(self) -> None:
        """Free the verdict's spooled outcomes (the report is not read again after this)."""
        if self.spill is not None:
            self.spill.close()

    def __enter__(self) -> FileReport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


CaseCallback = Callable[[Case, CaseOutcome], None]


def validate_file(
    path: Path,
    settings: ValidationSettings,
    *,
    name: str | None = None,
    on_case: CaseCallback | None = None,
) -> FileReport:
    """Validate the file at ``path``; ``on_case`` sees each case with its verdict as it streams.

    Raises OSError when the file itself cannot be opened or read: that is an operational problem
    for the caller, not a finding about the file's content.
    """
    context = RuleContext(
        today=settings.today,
        history=settings.history,
        clients=settings.clients,
        source_clients=settings.source_clients,
        strict_sequence=settings.strict_sequence,
        postal_directory=settings.postal_directory,
        max_attachment_bytes=settings.max_attachment_bytes,
    )
    with path.open("rb") as raw:
        head = raw.read(4)
        raw.seek(0)
        if is_package(head) or path.suffix.lower() == ".zip":
            sha256, size = sha256_stream(raw)
            raw.seek(0)
            context = dataclasses.replace(context, file_sha256=sha256)
            try:
                package = open_package(raw, max_attachment_bytes=settings.max_attachment_bytes)
            except PackageError as refused:
                judge = FileJudge(context, settings.policy)
                nothing_read = FileHeader("/Arendefil/Filhuvud", None)
                verdict = judge.finish(nothing_read, None, [refused.finding])
                return FileReport(name or path.name, size, sha256, verdict)
            context = dataclasses.replace(context, attachments=package.attachments)
            judge, spill = (
                FileJudge(context, settings.policy, settings.fingerprint_cases),
                Spill(settings.spool_folder),
            )
            try:
                with package.open_case_file() as member:
                    reader = _run_cases(CaseFileReader(member), judge, on_case, spill)
                verdict = judge.finish(reader.header, reader.summary, reader.findings)
            except BaseException:
                spill.close()
                raise
            return FileReport(name or path.name, size, sha256, verdict, spill=spill)

        head = raw.read(64)
        raw.seek(0)
        kind = file_format(name or path.name, head, settings.file_format)
        judge, spill = (
            FileJudge(context, settings.policy, settings.fingerprint_cases),
            Spill(settings.spool_folder),
        )
        try:
            hashing = HashingReader(raw)
            reader = _run_cases(_reader(kind, hashing, name or path.name, settings), judge, on_case, spill)
            hashing.drain()
            sha256 = hashing.digest.hexdigest()
            judge.context = dataclasses.replace(context, file_sha256=sha256)
            verdict = judge.finish(reader.header, reader.summary, reader.findings)
        except BaseException:
            spill.close()
            raise
        return FileReport(name or path.name, hashing.size, sha256, verdict, reader.truncated, spill=spill)


CaseReader = CaseFileReader | JsonCaseFileReader | CsvCaseFileReader


def _reader(kind: str, stream: ByteSource, name: str, settings: ValidationSettings) -> CaseReader:
    if kind == "json":
        return JsonCaseFileReader(stream)
    if kind == "csv":
        return CsvCaseFileReader(stream, settings.csv_mapping, name=Path(name).name, today=settings.today)
    return CaseFileReader(stream)


def _run_cases(
    reader: CaseReader, judge: FileJudge, on_case: CaseCallback | None, spill: Spill | None = None
) -> CaseReader:
    history = judge.context.history
    ahead = LOOK_AHEAD if isinstance(history, LookedAhead) else 1
    begun = False
    cases = reader.cases()
    while batch := list(itertools.islice(cases, ahead)):
        if not begun:
            judge.begin(reader.header)
            begun = True
        if isinstance(history, LookedAhead) and judge.state.client_orgnr:
            history.ask_ahead(judge.state.client_orgnr, [case for case, _ in batch])
        for case, schema_findings in batch:
            outcome = judge.judge_case(case, schema_findings)
            if on_case is not None:
                on_case(case, outcome)
            if spill is not None:
                spill.after_case(judge)
    if not begun:
        judge.begin(reader.header)
    return reader
