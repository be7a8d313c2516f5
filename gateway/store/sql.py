"""The store's SQL, written once for every backend: the schema (as migrations), every step and
every query. Each step is one write transaction that takes the store's one write lock first, so
that two processes (the daemon and `journal seal`, or two nodes) can never both seal or number
the same journal, and journal numbers and the receipt chain stay one sequence.

A backend (:mod:`gateway.store.sqlite`, :mod:`gateway.store.postgres`) opens a connection that
speaks its dialect (:class:`Connection`: how a write or a snapshot begins, streaming a query, an
insert that returns its ids), creates or migrates the schema, and says what its driver's errors
mean: :func:`map_driver_errors` makes sure that none leaves the store, each becomes a
:class:`~gateway.errors.StoreError` (unavailable, conflict, missing, outdated).

Timestamps are ISO 8601 strings in UTC, so that they sort and compare the same in every backend.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from gateway.domain.alarms import Condition
from gateway.domain.chain import GENESIS_SHA256
from gateway.domain.journal import JournalCase
from gateway.errors import (
    StoreConflictError,
    StoreError,
)
from gateway.store import (
    AlarmNotification,
    AlarmRecord,
    CaseMismatch,
    FileRecord,
    FileState,
    JournalRecord,
    JournalState,
    Judgement,
    NodeRecord,
    ReceiptBacklog,
    ReceiptUpload,
    ReceivedFile,
    RunningTotals,
    StoredCase,
    file_lease_name,
)
from gateway.store.roles import LedgerReader

#: Each entry migrates the schema from version N to N+1; run in order at start, never edited.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        received_at TEXT NOT NULL,
        status TEXT,
        client_orgnr TEXT,
        file_id TEXT,
        sequence INTEGER,
        case_count INTEGER,
        accepted_count INTEGER,
        accepted_capital_ore INTEGER,
        receipt_id TEXT,
        receipt_path TEXT,
        receipt_sha256 TEXT,
        previous_receipt_sha256 TEXT,
        final_path TEXT,
        judged_at TEXT,
        finished_at TEXT,
        last_error TEXT
    );
    CREATE INDEX files_state ON files(state);
    CREATE INDEX files_sha256 ON files(sha256);
    CREATE INDEX files_client_file_id ON files(client_orgnr, file_id);
    CREATE TABLE journals (
        id INTEGER PRIMARY KEY,
        client_id TEXT NOT NULL,
        sequence INTEGER,
        state TEXT NOT NULL,
        needs_review INTEGER NOT NULL DEFAULT 0,
        opened_at TEXT NOT NULL,
        sealed_at TEXT,
        approved_by TEXT,
        approved_at TEXT,
        built_at TEXT,
        file_name TEXT,
        sha256 TEXT,
        size INTEGER,
        lease_until TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        delivered_at TEXT,
        last_error TEXT
    );
    CREATE UNIQUE INDEX journals_one_open ON journals(client_id) WHERE state = 'open';
    CREATE UNIQUE INDEX journals_sequence ON journals(client_id, sequence) WHERE sequence IS NOT NULL;
    CREATE TABLE cases (
        id INTEGER PRIMARY KEY,
        file_row INTEGER NOT NULL REFERENCES files(id),
        position INTEGER NOT NULL,
        client_id TEXT NOT NULL,
        client_orgnr TEXT NOT NULL,
        reference TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        journal_row INTEGER NOT NULL REFERENCES journals(id),
        capital_ore INTEGER NOT NULL,
        claim_count INTEGER NOT NULL,
        protected INTEGER NOT NULL,
        payload TEXT NOT NULL,
        payload_sha256 TEXT NOT NULL,
        withdrawn_at TEXT,
        withdrawn_by TEXT,
        withdrawn_reason TEXT
    );
    CREATE UNIQUE INDEX cases_live_reference ON cases(client_orgnr, reference) WHERE withdrawn_at IS NULL;
    CREATE INDEX cases_journal ON cases(journal_row, id);
    CREATE TABLE claim_references (
        client_orgnr TEXT NOT NULL,
        claim_reference TEXT NOT NULL,
        case_row INTEGER NOT NULL REFERENCES cases(id),
        PRIMARY KEY (client_orgnr, claim_reference)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    """,
    # 2: the delivery lease names its holder (so a dead holder's lease is taken over at once) and
    # the backoff after a failure is kept apart from the lease.
    """
    ALTER TABLE journals ADD COLUMN lease_holder TEXT;
    ALTER TABLE journals ADD COLUMN retry_at TEXT
    """,
    # 3: what the reconciliation report and the statistics need: when the producer finished the
    # file (its modification time: drop-to-receipt latency), the client, every case and krona of
    # a file by outcome, and the findings per rule code. Files judged before this version did not
    # record their rejected and duplicate cases' capital: they count as 0.
    """
    ALTER TABLE files ADD COLUMN written_at TEXT;
    ALTER TABLE files ADD COLUMN client_id TEXT;
    ALTER TABLE files ADD COLUMN rejected_count INTEGER;
    ALTER TABLE files ADD COLUMN duplicate_count INTEGER;
    ALTER TABLE files ADD COLUMN capital_in_ore INTEGER;
    ALTER TABLE files ADD COLUMN rejected_capital_ore INTEGER;
    ALTER TABLE files ADD COLUMN duplicate_capital_ore INTEGER;
    UPDATE files SET rejected_count = case_count - accepted_count, duplicate_count = 0,
        capital_in_ore = accepted_capital_ore, rejected_capital_ore = 0, duplicate_capital_ore = 0
        WHERE state != 'claimed';
    CREATE INDEX files_received ON files(received_at);
    CREATE INDEX cases_file ON cases(file_row);
    CREATE TABLE file_findings (
        file_row INTEGER NOT NULL REFERENCES files(id),
        code TEXT NOT NULL,
        severity TEXT NOT NULL,
        findings INTEGER NOT NULL,
        PRIMARY KEY (file_row, code, severity)
    );
    CREATE INDEX events_subject ON events(subject)
    """,
    # 4: `audit verify` walks the receipt chain by each receipt's predecessor and looks up every
    # receipt it finds on disk, without holding the store in memory; a journal receipt's own
    # SHA-256 is kept, so that an edit to it is found too.
    """
    CREATE INDEX files_previous_receipt ON files(previous_receipt_sha256);
    CREATE INDEX files_receipt_path ON files(receipt_path);
    CREATE INDEX files_final_path ON files(final_path);
    ALTER TABLE journals ADD COLUMN receipt_sha256 TEXT
    """,
    # 5: how the source showed a file when it was claimed (local: device, inode, size and mtime;
    # SFTP: size and mtime), so that a file changed while it was processed, or uploaded again
    # after it was received, is told from the one that was taken; and which process delivered
    # a journal (a person's `journal send` reports it).
    """
    ALTER TABLE files ADD COLUMN source_identity TEXT;
    ALTER TABLE journals ADD COLUMN delivered_by TEXT;
    CREATE INDEX files_claimed_path ON files(source, path) WHERE state = 'claimed'
    """,
    # 6: a data folder that can be moved and copied: receipts and originals are recorded relative
    # to the data folder (they always lie in its outbox/receipts/ and var/). The receipt chain's
    # length is kept beside its head (each receipt carries its place in the chain). The cases a
    # verdict did not journal are recorded by reference (`trace` finds a rejected case too), and
    # a person's dealing with a quarantined file is recorded on it.
    """
    UPDATE files SET receipt_path = substr(receipt_path, instr(receipt_path, '/outbox/receipts/') + 1)
        WHERE instr(receipt_path, '/outbox/receipts/') > 0;
    UPDATE files SET final_path = substr(final_path, instr(final_path, '/var/archive/') + 1)
        WHERE instr(final_path, '/var/archive/') > 0;
    UPDATE files SET final_path = substr(final_path, instr(final_path, '/var/rejected/') + 1)
        WHERE instr(final_path, '/var/rejected/') > 0;
    UPDATE files SET final_path = substr(final_path, instr(final_path, '/var/quarantine/') + 1)
        WHERE instr(final_path, '/var/quarantine/') > 0;
    INSERT OR REPLACE INTO meta (key, value)
        SELECT 'receipt_chain_length', CAST(COUNT(*) AS TEXT) FROM files WHERE state IN ('judged', 'done');
    CREATE TABLE unjournaled_cases (
        file_row INTEGER NOT NULL REFERENCES files(id),
        position INTEGER NOT NULL,
        reference TEXT NOT NULL,
        status TEXT NOT NULL
    );
    CREATE INDEX unjournaled_cases_reference ON unjournaled_cases(reference);
    ALTER TABLE files ADD COLUMN resolved_at TEXT;
    ALTER TABLE files ADD COLUMN resolved_by TEXT;
    ALTER TABLE files ADD COLUMN resolution TEXT
    """,
    # 7: several nodes on one store. Each daemon registers as a node with a lease its heartbeat
    # renews; a lease on a name (a file in hand) is held by a node's process and lapses with it;
    # a duty (a scheduled seal, a nightly report) is done once per schedule slot.
    """
    CREATE TABLE nodes (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        version TEXT NOT NULL,
        started_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL,
        lease_until TEXT NOT NULL,
        stopped_at TEXT
    );
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        taken_at TEXT NOT NULL,
        lease_until TEXT NOT NULL
    );
    CREATE INDEX leases_holder ON leases(holder);
    CREATE TABLE duties (
        duty TEXT NOT NULL,
        slot TEXT NOT NULL,
        holder TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        PRIMARY KEY (duty, slot)
    )
    """,
    # 8: alarms. An alarm on a subject is one row from the moment it is raised until it is
    # resolved (one firing row per alarm and subject at a time); ``node`` names the node whose
    # own fact it is (NULL: the store's). Each change is told on each channel from the outbox.
    """
    CREATE TABLE alarms (
        id INTEGER PRIMARY KEY,
        alarm TEXT NOT NULL,
        subject TEXT NOT NULL,
        state TEXT NOT NULL,
        node TEXT,
        since TEXT NOT NULL,
        raised_at TEXT NOT NULL,
        raised_by TEXT NOT NULL,
        resolved_at TEXT,
        resolved_by TEXT,
        message_sv TEXT NOT NULL,
        message_en TEXT NOT NULL
    );
    CREATE UNIQUE INDEX alarms_one_firing ON alarms(alarm, subject) WHERE state = 'firing';
    CREATE INDEX alarms_resolved ON alarms(resolved_at);
    CREATE TABLE alarm_notifications (
        id INTEGER PRIMARY KEY,
        alarm_row INTEGER NOT NULL REFERENCES alarms(id),
        state TEXT NOT NULL,
        channel TEXT NOT NULL,
        node TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_try_at TEXT NOT NULL,
        lease_holder TEXT,
        lease_until TEXT,
        sent_at TEXT,
        last_error TEXT
    );
    CREATE INDEX alarm_notifications_unsent ON alarm_notifications(alarm_row) WHERE sent_at IS NULL
    """,
    # 9: copies of receipts owed to the senders' receipt folders (a source's
    # receipt_dir), queued once the local receipt is published and sent until they are there; a
    # copy refused for good (another file has its name there) waits for a person.
    """
    CREATE TABLE receipt_uploads (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        local_path TEXT NOT NULL,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        subject TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        queued_at TEXT NOT NULL,
        next_try TEXT NOT NULL,
        last_error TEXT,
        done_at TEXT
    );
    CREATE UNIQUE INDEX receipt_uploads_name ON receipt_uploads(source, name);
    CREATE INDEX receipt_uploads_due ON receipt_uploads(state, next_try)
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
#: Where a backend without a schema version of its own (SQLite has ``PRAGMA user_version``) keeps
#: it: in ``meta``, under this key, which a copy of the store never carries over.
SCHEMA_VERSION_KEY = "schema_version"

#: Who holds a delivery lease when no node name is given (a command): this machine and process.
LEASE_HOLDER = f"{socket.gethostname()}:{os.getpid()}"


_FILE_COLUMNS = (
    "id, source, name, path, sha256, size, state, attempts, received_at, status, receipt_path, "
    "receipt_sha256, final_path, last_error, previous_receipt_sha256, written_at, judged_at, finished_at, "
    "client_id, source_identity"
)
_ALARM_COLUMNS = "a.id, a.alarm, a.subject, a.state, a.since, a.raised_at, a.resolved_at, a.message_sv, a.message_en, a.node"
_JOURNAL_COLUMNS = (
    "j.id, j.client_id, j.sequence, j.state, j.needs_review, j.opened_at, j.sealed_at, j.approved_by, "
    "j.approved_at, j.built_at, j.file_name, j.sha256, j.size, j.delivered_at, j.attempts, j.last_error, "
    "j.receipt_sha256, j.delivered_by, (SELECT COUNT(*) FROM cases c WHERE c.journal_row = j.id AND c.withdrawn_at IS NULL), "
    "(SELECT COALESCE(SUM(c.capital_ore), 0) FROM cases c WHERE c.journal_row = j.id AND c.withdrawn_at IS NULL)"
)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _holder_alive(holder: str | None) -> bool:
    """Whether a lease holder may still be working: on another machine we cannot tell, so yes."""
    if not holder:
        return False
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_node_holder(holder: str) -> bool:
    return holder.count(":") == 2


def journal_id_of(client_id: str, row: int) -> str:
    return f"{client_id}-j{row}"


def _row_of(journal_id: str) -> int:
    try:
        return int(journal_id.rsplit("-j", 1)[1])
    except (IndexError, ValueError):
        raise StoreError(f"no such journal: {journal_id}") from None


#: How long a step waits for another process's write lock before the store is "unavailable".
DEFAULT_BUSY_SECONDS = 30.0

#: How many rows a step writes in one batch (one round trip to a server).
WRITE_BATCH = 1000
#: How many keys one lookup asks for at once (SQLite allows 999 parameters in older builds).
LOOKUP_BATCH = 500

_Method = TypeVar("_Method", bound=Callable[..., Any])
_Item = TypeVar("_Item")


def _mapped(method: _Method) -> _Method:
    """Wrap a store method so that no driver error leaves the store."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self: SqlStore, *args: Any, **kwargs: Any) -> Any:
            try:
                yield from method(self, *args, **kwargs)
            except self.driver_errors as error:
                raise self._translate_error(error) from error

        return generator  # type: ignore[return-value]

    @functools.wraps(method)
    def plain(self: SqlStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except self.driver_errors as error:
            raise self._translate_error(error) from error

    return plain  # type: ignore[return-value]


_Store = TypeVar("_Store", bound="SqlStore")


def map_driver_errors(cls: type[_Store]) -> type[_Store]:
    """Every public method of the store, and its constructor, behind :func:`_mapped`.

    A ``@contextmanager`` method is mapped inside: its generator (the code around ``yield``, run
    when the block is entered and left) is wrapped and the context manager made again, so that a
    commit failing at the end of the block is mapped too. Each backend's class is decorated too:
    its own methods (the constructor, the backup) are mapped the same way."""
    for name, member in list(vars(cls).items()):
        if not callable(member) or (name.startswith("_") and name != "__init__"):
            continue
        inner = getattr(member, "__wrapped__", None)  # what @contextmanager keeps of the generator
        if not inspect.isgeneratorfunction(member) and inspect.isgeneratorfunction(inner):
            setattr(cls, name, contextmanager(_mapped(inner)))
        else:
            setattr(cls, name, _mapped(member))
    return cls


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A backend's connection, speaking its dialect: SQL is written once here, with ``?``
    placeholders and what SQLite (3.35 and later) and PostgreSQL both understand (``RETURNING``,
    ``ON CONFLICT``, ``CAST(? AS TEXT)`` where a parameter's type is not otherwise known); the
    few things that differ are these methods."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> object: ...

    @property
    def in_transaction(self) -> bool: ...

    def close(self) -> None: ...

    def begin_write(self) -> None:
        """Begin a write transaction that holds the store's one write lock until it ends: the
        writers of every process (and node) one after the other."""

    def begin_snapshot(self) -> None:
        """Begin a read transaction: everything read inside is of one moment."""

    def stream(self, sql: str, parameters: Sequence[Any] = ..., /) -> Iterator[Any]:
        """The rows of a query as they are read, never all in memory at once."""

    def insert_returning_ids(self, sql: str, rows: Sequence[Sequence[Any]], /) -> list[int]:
        """Run an ``INSERT ... RETURNING id`` for each row, in one batch: the new ids in order."""


def _batches(items: Iterable[_Item], size: int) -> Iterator[list[_Item]]:
    batch: list[_Item] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@map_driver_errors
class SqlStore:
    """What every SQL store does, written once; a backend's class opens the connection (and
    creates or migrates the schema) and maps its driver's errors. Not shared between threads;
    open one per process."""

    #: The driver's exceptions, each turned into the gateway's own by :meth:`_translate_error`.
    driver_errors: ClassVar[tuple[type[Exception], ...]] = ()
    _db: Connection

    def __init__(self, *, location: str, read_only: bool, lease_holder: str) -> None:
        self.location = location
        self.read_only = read_only
        self._holder = lease_holder

    def _translate_error(self, error: Exception) -> StoreError:
        raise NotImplementedError

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        self._db.begin_write()
        try:
            yield self._db
        except BaseException:
            # SQLite rolls back by itself after some errors (a full disk): then there is nothing left.
            if self._db.in_transaction:
                with contextlib.suppress(*self.driver_errors):  # the original error is the one to report
                    self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def schema_version(self) -> int:
        raise NotImplementedError

    def tables(self) -> dict[str, tuple[str, ...]]:
        """Every table and its columns, in an order in which rows can be inserted (a table
        after those it refers to)."""
        raise NotImplementedError

    def _ids_copied(self) -> None:
        """Rows were copied in with their ids (called inside the copy's transaction)."""

    # -- copying a whole store -------------------------------------------------------------------

    def holds_nothing(self) -> bool:
        """Whether the store has no row but the backend's own notes (``meta``)."""
        return all(
            self._db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None
            for table in self.tables()
            if table != "meta"
        )

    def copy_into(self, target: SqlStore, *, batch: int = WRITE_BATCH) -> dict[str, int]:
        """Every row of this store, as of one moment, into ``target``, an empty store of the
        same schema version (of any backend), with the same ids; in one transaction there, in
        batches (memory stays flat). The rows copied, per table."""
        if target.schema_version() != self.schema_version():
            raise StoreError(
                f"the store {target.location} has schema version {target.schema_version()}, "
                f"{self.location} {self.schema_version()}: start the gateway on both first"
            )
        if not target.holds_nothing():
            raise StoreConflictError(
                f"the store {target.location} is not empty: copy only into a new, empty database"
            )
        copied: dict[str, int] = {}
        try:
            with self.snapshot(), target._tx() as db:
                for table, columns in self.tables().items():
                    names = ", ".join(columns)
                    query = f"SELECT {names} FROM {table}"
                    insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})"
                    if table == "meta":
                        query += f" WHERE key != '{SCHEMA_VERSION_KEY}'"
                        insert += " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                    elif "id" in columns:
                        query += " ORDER BY id"
                    copied[table] = 0
                    for rows in _batches(self._db.stream(query), batch):
                        db.executemany(insert, rows)
                        copied[table] += len(rows)
                target._ids_copied()
        except target.driver_errors as error:  # this store's own are mapped around the method
            raise target._translate_error(error) from error
        return copied

    # -- History (the rules' view of earlier files) --------------------------------------------

    def receipt_for_bytes(self, sha256: str) -> str | None:
        row = self._db.execute(
            # Only files that were accepted: the same bytes sent again after a rejection (a fixed
            # config, a claim that has now fallen due) are judged again, not called duplicates.
            "SELECT receipt_path FROM files WHERE sha256 = ? AND state IN ('judged', 'done') "
            "AND status IN ('accepted', 'partially-accepted') ORDER BY id LIMIT 1",
            (sha256,),
        ).fetchone()
        return None if row is None else Path(row[0]).name

    def receipt_for_file_id(self, client_orgnr: str, file_id: str) -> str | None:
        row = self._db.execute(
            "SELECT receipt_path FROM files WHERE client_orgnr = ? AND file_id = ? AND state IN ('judged', 'done') "
            "AND status IN ('accepted', 'partially-accepted') ORDER BY id LIMIT 1",
            (client_orgnr, file_id),
        ).fetchone()
        return None if row is None else Path(row[0]).name

    def last_sequence(self, client_orgnr: str) -> int | None:
        row = self._db.execute(
            "SELECT sequence FROM files WHERE client_orgnr = ? AND sequence IS NOT NULL AND state IN ('judged', 'done') "
            "AND status IN ('accepted', 'partially-accepted') ORDER BY id DESC LIMIT 1",
            (client_orgnr,),
        ).fetchone()
        return None if row is None else int(row[0])

    def accepted_case_fingerprint(self, client_orgnr: str, reference: str) -> str | None:
        row = self._db.execute(
            "SELECT fingerprint FROM cases WHERE client_orgnr = ? AND reference = ? AND withdrawn_at IS NULL",
            (client_orgnr, reference),
        ).fetchone()
        return None if row is None else str(row[0])

    def case_for_claim_reference(self, client_orgnr: str, claim_reference: str) -> str | None:
        row = self._db.execute(
            "SELECT c.reference FROM claim_references r JOIN cases c ON c.id = r.case_row "
            "WHERE r.client_orgnr = ? AND r.claim_reference = ? AND c.withdrawn_at IS NULL",
            (client_orgnr, claim_reference),
        ).fetchone()
        return None if row is None else str(row[0])

    def accepted_case_fingerprints(self, client_orgnr: str, references: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _batches(dict.fromkeys(references), LOOKUP_BATCH):
            rows = self._db.execute(
                "SELECT reference, fingerprint FROM cases WHERE client_orgnr = ? AND withdrawn_at IS NULL "
                f"AND reference IN ({', '.join('?' for _ in chunk)})",
                (client_orgnr, *chunk),
            )
            found.update((str(reference), str(fingerprint)) for reference, fingerprint in rows)
        return found

    def cases_for_claim_references(
        self, client_orgnr: str, claim_references: Sequence[str]
    ) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _batches(dict.fromkeys(claim_references), LOOKUP_BATCH):
            rows = self._db.execute(
                "SELECT r.claim_reference, c.reference FROM claim_references r JOIN cases c ON c.id = r.case_row "
                "WHERE r.client_orgnr = ? AND c.withdrawn_at IS NULL "
                f"AND r.claim_reference IN ({', '.join('?' for _ in chunk)})",
                (client_orgnr, *chunk),
            )
            found.update((str(claim), str(reference)) for claim, reference in rows)
        return found

    # -- files ---------------------------------------------------------------------------------

    def _file(self, row: tuple[object, ...]) -> FileRecord:
        (
            id_,
            source,
            name,
            path,
            sha256,
            size,
            state,
            attempts,
            received,
            status,
            receipt,
            receipt_sha,
            final,
            err,
            previous,
            written,
            judged,
            finished,
            client_id,
            identity,
        ) = row
        return FileRecord(
            id=int(id_),  # type: ignore[call-overload]
            source=str(source),
            name=str(name),
            path=str(path),
            sha256=str(sha256),
            size=int(size),  # type: ignore[call-overload]
            state=FileState(state),
            attempts=int(attempts),  # type: ignore[call-overload]
            received_at=datetime.fromisoformat(str(received)),
            status=None if status is None else str(status),
            receipt_path=None if receipt is None else str(receipt),
            receipt_sha256=None if receipt_sha is None else str(receipt_sha),
            final_path=None if final is None else str(final),
            last_error=None if err is None else str(err),
            previous_receipt_sha256=None if previous is None else str(previous),
            written_at=_moment(None if written is None else str(written)),
            judged_at=_moment(None if judged is None else str(judged)),
            finished_at=_moment(None if finished is None else str(finished)),
            client_id=None if client_id is None else str(client_id),
            source_identity=None if identity is None else str(identity),
        )

    def claim_file(
        self,
        *,
        source: str,
        name: str,
        path: str,
        sha256: str,
        size: int,
        now: datetime,
        written_at: datetime | None = None,
        identity: str | None = None,
    ) -> FileRecord:
        """Record (or find again) the file at ``path`` with these bytes and count one more attempt.

        A claim of the same path with other bytes that never got a verdict is dropped: the
        producer rewrote the file before it was judged, and only the new version arrived.
        """
        with self._tx() as db:
            row = db.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE source = ? AND path = ? AND sha256 = ? "
                "AND state = 'claimed' ORDER BY id DESC LIMIT 1",
                (source, path, sha256),
            ).fetchone()
            superseded = db.execute(
                "SELECT id FROM files WHERE source = ? AND path = ? AND sha256 != ? AND state = 'claimed'",
                (source, path, sha256),
            ).fetchall()
            for (old_id,) in superseded:
                self._drop_claim(
                    db, old_id, "superseded: the producer rewrote the file before its verdict", now
                )
            if row is None:
                (file_id,) = db.execute(
                    "INSERT INTO files (source, name, path, sha256, size, state, attempts, received_at, "
                    "written_at, source_identity) VALUES (?, ?, ?, ?, ?, 'claimed', 1, ?, ?, ?) RETURNING id",
                    (source, name, path, sha256, size, _iso(now), _iso(written_at), identity),
                ).fetchone()
            else:
                file_id = row[0]
                db.execute(
                    "UPDATE files SET attempts = attempts + 1, source_identity = ? WHERE id = ?",
                    (identity, file_id),
                )
            return self._file(
                db.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE id = ?", (file_id,)).fetchone()
            )

    def _drop_claim(self, db: Connection, file_id: int, reason: str, now: datetime) -> None:
        name = db.execute("SELECT name FROM files WHERE id = ? AND state = 'claimed'", (file_id,)).fetchone()
        if name is None:
            return
        # Kept (never deleted: its id must not be reused), but no longer counted as an arrival.
        db.execute(
            "UPDATE files SET state = 'abandoned', last_error = ?, finished_at = ? WHERE id = ? AND state = 'claimed'",
            (reason[:2000], _iso(now), file_id),
        )
        db.execute(
            "INSERT INTO events (at, kind, subject, detail) VALUES (?, 'file-abandoned', ?, ?)",
            (_iso(now), name[0], reason[:2000]),
        )

    def abandon_claim(self, file_id: int, reason: str, *, now: datetime) -> None:
        """Forget a claim that never got a verdict: the file changed or vanished in its source
        before it was judged (it was never received; a new version is claimed on its own)."""
        with self._tx() as db:
            self._drop_claim(db, file_id, reason, now)

    def file(self, file_id: int) -> FileRecord:
        row = self._db.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None:
            raise StoreError(f"no file with id {file_id}")
        return self._file(row)

    def received_file(
        self, *, source: str, path: str, sha256: str, identity: str | None
    ) -> FileRecord | None:
        """The file from this source at this place, with these bytes and as the source showed it
        then, already judged: a leftover in the source (a crash came before it was tidied, or
        tidying it waits), not a new arrival. The same bytes uploaded again are another identity."""
        row = self._db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE source = ? AND path = ? AND sha256 = ? "
            "AND state IN ('judged', 'done') "
            "AND (source_identity = ? OR (source_identity IS NULL AND CAST(? AS TEXT) IS NULL)) "
            "ORDER BY id DESC LIMIT 1",
            (source, path, sha256, identity, identity),
        ).fetchone()
        return None if row is None else self._file(row)

    def receipt_path_taken(self, receipt_path: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM files WHERE receipt_path = ? LIMIT 1", (receipt_path,)
        ).fetchone()
        return row is not None

    def meta_items(self, prefix: str) -> dict[str, str]:
        rows = self._db.execute("SELECT key, value FROM meta WHERE key LIKE ? ORDER BY key", (prefix + "%",))
        return {str(key): str(value) for key, value in rows}

    def release_attempt(self, file_id: int, note: str) -> None:
        """The attempt was not a failure (the file was not finished): do not count it."""
        with self._tx() as db:
            db.execute(
                "UPDATE files SET attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, last_error = ? WHERE id = ? AND state = 'claimed'",
                (note[:2000], file_id),
            )

    def files_in_state(self, state: FileState) -> list[FileRecord]:
        rows = self._db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE state = ? ORDER BY id", (state.value,)
        )
        return [self._file(row) for row in rows]

    def file_by_name_or_sha(self, key: str) -> list[FileRecord]:
        """Files by name, or by SHA-256 or its first 12 hex digits or more (any case)."""
        prefix = (
            key.lower() if 12 <= len(key) <= 64 and all(c in "0123456789abcdefABCDEF" for c in key) else None
        )
        rows = self._db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE name = ? OR (CAST(? AS TEXT) IS NOT NULL AND substr(sha256, 1, ?) = ?) "
            "ORDER BY id",
            (key, prefix, len(key), prefix),
        )
        return [self._file(row) for row in rows]

    def record_failure(self, file_id: int, error: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE files SET last_error = ? WHERE id = ?", (error[:2000], file_id))

    def open_journal_id(self, client_id: str, *, now: datetime) -> str:
        with self._tx() as db:
            return journal_id_of(client_id, self._open_journal(db, client_id, now))

    def record_judgement(self, judgement: Judgement) -> None:
        with self._tx() as db:
            state = db.execute(
                "SELECT state, source, path FROM files WHERE id = ?", (judgement.file_id,)
            ).fetchone()
            if state is None or state[0] != FileState.CLAIMED.value:
                raise StoreError(f"file {judgement.file_id} is not waiting for a verdict")
            # Fenced: a process whose lease on the file another took over (it was thought dead)
            # cannot give it a second verdict.
            lease = db.execute(
                "SELECT holder FROM leases WHERE name = ?", (file_lease_name(state[1], state[2]),)
            ).fetchone()
            if lease is not None and lease[0] != self._holder:
                raise StoreConflictError(
                    f"file {judgement.file_id} is in the hands of another process ({lease[0]}) now"
                )
            journal_row: int | None = None
            if judgement.expected_journal is not None:
                journal_row = _row_of(judgement.expected_journal)
                still_open = db.execute(
                    "SELECT 1 FROM journals WHERE id = ? AND state = 'open'", (journal_row,)
                ).fetchone()
                if still_open is None:
                    raise StoreConflictError(
                        f"journal {judgement.expected_journal} was sealed while the file was judged"
                    )
            taken = db.execute(
                "SELECT 1 FROM files WHERE (receipt_path = ? OR final_path = ?) AND id != ? LIMIT 1",
                (judgement.receipt_path, judgement.final_path, judgement.file_id),
            ).fetchone()
            if taken is not None:
                raise StoreConflictError(f"{judgement.receipt_path} is taken by another file's receipt")
            accepted_count = 0
            # In batches: a file of 100,000 cases is a few hundred round trips to a server, not
            # 200,000, and never all in memory.
            for batch in _batches(judgement.accepted, WRITE_BATCH):
                accepted_count += len(batch)
                if journal_row is None:
                    raise StoreError("accepted cases without an open journal")
                case_rows = db.insert_returning_ids(
                    "INSERT INTO cases (file_row, position, client_id, client_orgnr, reference, fingerprint, "
                    "journal_row, capital_ore, claim_count, protected, payload, payload_sha256) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    [
                        (
                            judgement.file_id,
                            case.position,
                            case.client_id,
                            case.client_orgnr,
                            case.reference,
                            case.fingerprint,
                            journal_row,
                            case.capital_ore,
                            case.claim_count,
                            int(case.protected),
                            case.payload,
                            case.payload_sha256,
                        )
                        for case in batch
                    ],
                )
                db.executemany(
                    "INSERT INTO claim_references (client_orgnr, claim_reference, case_row) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    [
                        (case.client_orgnr, reference, case_row)
                        for case, case_row in zip(batch, case_rows, strict=True)
                        for reference in case.claim_references
                    ],
                )
            db.execute(
                "UPDATE files SET state = 'judged', status = ?, client_orgnr = ?, file_id = ?, sequence = ?, "
                "case_count = ?, accepted_count = ?, accepted_capital_ore = ?, receipt_id = ?, receipt_path = ?, "
                "receipt_sha256 = ?, previous_receipt_sha256 = ?, final_path = ?, judged_at = ?, last_error = NULL, "
                "client_id = ?, rejected_count = ?, duplicate_count = ?, capital_in_ore = ?, "
                "rejected_capital_ore = ?, duplicate_capital_ore = ? WHERE id = ?",
                (
                    judgement.status,
                    judgement.client_orgnr,
                    judgement.file_id_in_file,
                    judgement.sequence,
                    judgement.case_count,
                    accepted_count,
                    judgement.accepted_capital_ore,
                    judgement.receipt_id,
                    judgement.receipt_path,
                    judgement.receipt_sha256,
                    judgement.previous_receipt_sha256,
                    judgement.final_path,
                    _iso(judgement.judged_at),
                    judgement.client_id,
                    judgement.rejected_count,
                    judgement.duplicate_count,
                    judgement.capital_in_ore,
                    judgement.rejected_capital_ore,
                    judgement.duplicate_capital_ore,
                    judgement.file_id,
                ),
            )
            db.executemany(
                "INSERT INTO file_findings (file_row, code, severity, findings) VALUES (?, ?, ?, ?)",
                [
                    (judgement.file_id, code, severity, count)
                    for code, severity, count in judgement.finding_counts
                ],
            )
            db.executemany(
                "INSERT INTO unjournaled_cases (file_row, position, reference, status) VALUES (?, ?, ?, ?)",
                (
                    (judgement.file_id, position, reference, status)
                    for position, reference, status in judgement.unjournaled
                ),
            )
            head, length = self._chain_tip(db)
            if head != judgement.previous_receipt_sha256 or length + 1 != judgement.chain_position:
                raise StoreConflictError("the receipt chain moved: another writer wrote a receipt in between")
            db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [
                    ("receipt_chain_head", judgement.receipt_sha256),
                    ("receipt_chain_length", str(judgement.chain_position)),
                ],
            )

    @staticmethod
    def _chain_tip(db: Connection) -> tuple[str, int]:
        rows = dict(
            db.execute(
                "SELECT key, value FROM meta WHERE key IN ('receipt_chain_head', 'receipt_chain_length')"
            ).fetchall()
        )
        return rows.get("receipt_chain_head", GENESIS_SHA256), int(rows.get("receipt_chain_length", "0"))

    def _open_journal(self, db: Connection, client_id: str, now: datetime) -> int:
        row = db.execute(
            "SELECT id FROM journals WHERE client_id = ? AND state = 'open'", (client_id,)
        ).fetchone()
        if row is not None:
            return int(row[0])
        (row_id,) = db.execute(
            "INSERT INTO journals (client_id, state, opened_at) VALUES (?, 'open', ?) RETURNING id",
            (client_id, _iso(now)),
        ).fetchone()
        return int(row_id)

    def mark_done(self, file_id: int, *, final_path: str, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE files SET state = 'done', final_path = ?, finished_at = ? WHERE id = ?",
                (final_path, _iso(now), file_id),
            )

    def receipt_chain_head(self) -> str:
        return self._chain_tip(self._db)[0]

    def receipt_chain_tip(self) -> tuple[str, int]:
        """The newest receipt's SHA-256 and the chain's length (the next receipt's place - 1)."""
        return self._chain_tip(self._db)

    def unjournaled_cases(self, reference: str) -> list[tuple[FileRecord, str]]:
        """The files in which a case with this reference was not journaled, and its status there."""
        rows = self._db.execute(
            f"SELECT u.status, {', '.join('f.' + c.strip() for c in _FILE_COLUMNS.split(','))} "
            "FROM unjournaled_cases u JOIN files f ON f.id = u.file_row WHERE u.reference = ? ORDER BY f.id",
            (reference,),
        ).fetchall()
        return [(self._file(row[1:]), str(row[0])) for row in rows]

    def resolve_quarantined(self, file_id: int, *, by: str, resolution: str, now: datetime) -> FileRecord:
        """A person has dealt with a quarantined file (what they did is recorded, the file stays)."""
        with self._tx() as db:
            row = db.execute("SELECT status, resolved_at FROM files WHERE id = ?", (file_id,)).fetchone()
            if row is None or row[0] != "quarantined":
                raise StoreError(f"file {file_id} is not in quarantine")
            if row[1] is not None:
                raise StoreError(f"file {file_id} was dealt with already")
            db.execute(
                "UPDATE files SET resolved_at = ?, resolved_by = ?, resolution = ? WHERE id = ?",
                (_iso(now), by, resolution[:2000], file_id),
            )
            db.execute(
                "INSERT INTO events (at, kind, subject, detail) "
                "SELECT CAST(? AS TEXT), 'quarantine-resolved', name, CAST(? AS TEXT) FROM files WHERE id = ?",
                (_iso(now), f"by {by}: {resolution}"[:2000], file_id),
            )
        return self.file(file_id)

    def quarantined_files(self, *, unresolved_only: bool = True) -> list[FileRecord]:
        query = f"SELECT {_FILE_COLUMNS} FROM files WHERE status = 'quarantined'"
        if unresolved_only:
            query += " AND resolved_at IS NULL"
        return [self._file(row) for row in self._db.execute(query + " ORDER BY id")]

    def last_received(self) -> dict[str, datetime]:
        """Each source's most recent arrival."""
        rows = self._db.execute(
            "SELECT source, MAX(received_at) FROM files WHERE state != 'abandoned' GROUP BY source"
        )
        return {str(source): datetime.fromisoformat(at) for source, at in rows}

    # -- journals ------------------------------------------------------------------------------

    def _journal(self, row: tuple[object, ...]) -> JournalRecord:
        (id_, client, seq, state, review, opened, sealed, by, approved, built, name, sha, size, delivered,
         attempts, error, receipt_sha, delivered_by, count, capital) = row  # fmt: skip
        return JournalRecord(
            id=int(id_),  # type: ignore[call-overload]
            journal_id=journal_id_of(str(client), int(id_)),  # type: ignore[call-overload]
            client_id=str(client),
            sequence=None if seq is None else int(seq),  # type: ignore[call-overload]
            state=JournalState(state),
            needs_review=bool(review),
            case_count=int(count),  # type: ignore[call-overload]
            capital_ore=int(capital),  # type: ignore[call-overload]
            opened_at=datetime.fromisoformat(str(opened)),
            sealed_at=_moment(sealed),  # type: ignore[arg-type]
            approved_by=None if by is None else str(by),
            approved_at=_moment(approved),  # type: ignore[arg-type]
            built_at=_moment(built),  # type: ignore[arg-type]
            file_name=None if name is None else str(name),
            sha256=None if sha is None else str(sha),
            size=None if size is None else int(size),  # type: ignore[call-overload]
            delivered_at=_moment(delivered),  # type: ignore[arg-type]
            attempts=int(attempts),  # type: ignore[call-overload]
            last_error=None if error is None else str(error),
            receipt_sha256=None if receipt_sha is None else str(receipt_sha),
            delivered_by=None if delivered_by is None else str(delivered_by),
        )

    def seal_journals(
        self,
        *,
        now: datetime,
        client_ids: Sequence[str] | None,
        manual_review: bool,
        numbers_used: Mapping[str, int] | None = None,
    ) -> list[JournalRecord]:
        """Seal every open journal with cases (of these clients) and number it; one transaction.

        ``numbers_used``: the highest journal number of each client found outside the store (in
        var/sent): a number once delivered is never used again, even by a store restored from
        an older backup."""
        sealed: list[int] = []
        with self._tx() as db:
            rows = db.execute(
                "SELECT j.id, j.client_id, "
                "(SELECT COUNT(*) FROM cases c WHERE c.journal_row = j.id AND c.withdrawn_at IS NULL), "
                "(SELECT COUNT(*) FROM cases c WHERE c.journal_row = j.id AND c.withdrawn_at IS NULL "
                " AND c.protected = 1) "
                "FROM journals j WHERE j.state = 'open' ORDER BY j.id"
            ).fetchall()
            for row_id, client_id, count, protected in rows:
                if count == 0 or (client_ids is not None and client_id not in client_ids):
                    continue
                (last,) = db.execute(
                    "SELECT COALESCE(MAX(sequence), 0) FROM journals WHERE client_id = ?", (client_id,)
                ).fetchone()
                last = max(int(last), (numbers_used or {}).get(client_id, 0))
                # A protected identity is always reviewed by a person (rule M16).
                review = manual_review or protected > 0
                db.execute(
                    "UPDATE journals SET state = ?, sequence = ?, sealed_at = ?, needs_review = ?, "
                    "approved_by = ?, approved_at = ? WHERE id = ?",
                    (
                        JournalState.SEALED.value if review else JournalState.APPROVED.value,
                        last + 1,
                        _iso(now),
                        int(review),
                        None if review else "auto",
                        None if review else _iso(now),
                        row_id,
                    ),
                )
                sealed.append(row_id)
        return [self._journal_by_row(row_id) for row_id in sealed]

    def _journal_by_row(self, row_id: int) -> JournalRecord:
        row = self._db.execute(
            f"SELECT {_JOURNAL_COLUMNS} FROM journals j WHERE j.id = ?", (row_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no journal with row {row_id}")
        return self._journal(row)

    def journal(self, journal_id: str) -> JournalRecord | None:
        try:
            record = self._journal_by_row(_row_of(journal_id))
        except StoreError:
            return None
        return record if record.journal_id == journal_id else None

    def journals(self, *, states: Sequence[JournalState] | None = None) -> list[JournalRecord]:
        query = f"SELECT {_JOURNAL_COLUMNS} FROM journals j"
        params: tuple[str, ...] = ()
        if states is not None:
            query += f" WHERE j.state IN ({', '.join('?' for _ in states)})"
            params = tuple(state.value for state in states)
        return [self._journal(row) for row in self._db.execute(query + " ORDER BY j.id", params)]

    def approve_journal(self, journal_id: str, *, by: str, now: datetime) -> JournalRecord:
        row_id = _row_of(journal_id)
        with self._tx() as db:
            row = db.execute("SELECT state FROM journals WHERE id = ?", (row_id,)).fetchone()
            if row is None:
                raise StoreError(f"no such journal: {journal_id}")
            if row[0] != JournalState.SEALED.value:
                raise StoreError(f"journal {journal_id} is {row[0]}, not sealed and waiting for approval")
            db.execute(
                "UPDATE journals SET state = 'approved', approved_by = ?, approved_at = ? WHERE id = ?",
                (by, _iso(now), row_id),
            )
        return self._journal_by_row(row_id)

    def journal_cases(self, journal_id: str) -> Iterator[JournalCase]:
        cursor = self._db.stream(
            "SELECT payload FROM cases WHERE journal_row = ? AND withdrawn_at IS NULL ORDER BY id",
            (_row_of(journal_id),),
        )
        for (payload,) in cursor:
            yield JournalCase.from_json(payload)

    def journal_references(self, journal_id: str) -> list[str]:
        rows = self._db.execute(
            "SELECT reference FROM cases WHERE journal_row = ? AND withdrawn_at IS NULL ORDER BY id",
            (_row_of(journal_id),),
        )
        return [str(reference) for (reference,) in rows]

    def record_journal_building(self, journal_id: str, *, file_name: str) -> None:
        """Name the journal's file before it is written, so that a file of that name found after
        a crash is known as this journal's own (and adopted), never taken for a stranger's."""
        with self._tx() as db:
            db.execute(
                "UPDATE journals SET file_name = ? WHERE id = ? AND file_name IS NULL AND state = 'approved'",
                (file_name, _row_of(journal_id)),
            )

    def record_journal_built(
        self, journal_id: str, *, file_name: str, sha256: str, size: int, built_at: datetime
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE journals SET file_name = ?, sha256 = ?, size = ?, built_at = ? "
                "WHERE id = ? AND (file_name IS NULL OR file_name = ?) AND sha256 IS NULL AND state = 'approved'",
                (file_name, sha256, size, _iso(built_at), _row_of(journal_id), file_name),
            )

    def journal_file_known(self, file_name: str) -> bool:
        """Whether some journal's file (built, being built or delivered) has this name."""
        row = self._db.execute("SELECT 1 FROM journals WHERE file_name = ? LIMIT 1", (file_name,)).fetchone()
        return row is not None

    def newest_judgement(self) -> datetime | None:
        """When the newest verdict was committed (None: no file was ever judged)."""
        (newest,) = self._db.execute("SELECT MAX(judged_at) FROM files").fetchone()
        return _moment(newest)

    def probe(self, *, now: datetime) -> None:
        """A tiny real write: raises StoreUnavailableError while the store cannot take one."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_iso(now),),
            )

    def begin_delivery(self, journal_id: str, *, now: datetime, lease_seconds: float) -> bool:
        """Take the journal's delivery lease and count an attempt; False when it is not to be sent now.

        Not now: another live process holds the lease, or the journal's retry time (the backoff
        after a failure) has not come. A lease whose holder died (kill -9 mid-delivery) on this
        machine is taken over at once rather than after it expires.
        """
        row_id = _row_of(journal_id)
        with self._tx() as db:
            row = db.execute(
                "SELECT state, lease_until, lease_holder, retry_at FROM journals WHERE id = ?", (row_id,)
            ).fetchone()
            if row is None or row[0] != JournalState.APPROVED.value or self._stale_node(db, now):
                return False
            _, lease_until, holder, retry_at = row
            if retry_at is not None and datetime.fromisoformat(retry_at) > now:
                return False
            leased = lease_until is not None and datetime.fromisoformat(lease_until) > now
            if leased and holder != self._holder and self._alive(db, holder, now):
                return False
            db.execute(
                "UPDATE journals SET lease_until = ?, lease_holder = ?, retry_at = NULL, attempts = attempts + 1 "
                "WHERE id = ?",
                (_iso(now + timedelta(seconds=lease_seconds)), self._holder, row_id),
            )
            return True

    def record_delivery_failure(self, journal_id: str, error: str, *, retry_at: datetime) -> None:
        """Release the lease; the next attempt waits until ``retry_at`` (the backoff). Nothing
        changes when the lease is no longer this process's (another node took the delivery over)."""
        with self._tx() as db:
            db.execute(
                "UPDATE journals SET last_error = ?, retry_at = ?, lease_until = NULL, lease_holder = NULL "
                "WHERE id = ? AND lease_holder = ?",
                (error[:2000], _iso(retry_at), _row_of(journal_id), self._holder),
            )

    def release_delivery_lease(self, journal_id: str) -> None:
        """A person asked to send now: forget the backoff (the attempt itself still takes a lease)."""
        with self._tx() as db:
            db.execute(
                "UPDATE journals SET retry_at = NULL WHERE id = ? AND state = 'approved'",
                (_row_of(journal_id),),
            )

    def record_delivered(self, journal_id: str, *, now: datetime, receipt_sha256: str | None = None) -> None:
        """Fenced: only the holder of the journal's delivery lease records it delivered. A process
        whose lease was taken over (it was thought dead) gets StoreConflictError and changes nothing."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE journals SET state = 'delivered', delivered_at = ?, lease_until = NULL, lease_holder = NULL, "
                "retry_at = NULL, last_error = NULL, receipt_sha256 = ?, delivered_by = ? "
                "WHERE id = ? AND state = 'approved' AND lease_holder = ?",
                (_iso(now), receipt_sha256, self._holder, _row_of(journal_id), self._holder),
            )
            if cursor.rowcount != 1:
                row = db.execute(
                    "SELECT state, delivered_by FROM journals WHERE id = ?", (_row_of(journal_id),)
                ).fetchone()
                if row is not None and tuple(row) == (JournalState.DELIVERED.value, self._holder):
                    return  # recorded by this process already: the first record stands
                raise StoreConflictError(
                    f"journal {journal_id}: this process no longer holds its delivery lease (another "
                    "node took the delivery over); the delivery is recorded by that node"
                )

    def withdraw_case(
        self, reference: str, *, client_id: str | None, by: str, reason: str, now: datetime
    ) -> StoredCase:
        with self._tx() as db:
            query = (
                "SELECT c.id, c.client_id, c.journal_row, j.state, j.file_name FROM cases c "
                "JOIN journals j ON j.id = c.journal_row WHERE c.reference = ? AND c.withdrawn_at IS NULL"
            )
            params: tuple[str, ...] = (reference,)
            if client_id is not None:
                query += " AND c.client_id = ?"
                params += (client_id,)
            rows = db.execute(query, params).fetchall()
            if not rows:
                raise StoreError(f"no case {reference!r} in any journal")
            if len(rows) > 1:
                raise StoreError(
                    f"case {reference!r} exists for several clients: name the client with --client"
                )
            case_row, case_client, journal_row, journal_state, file_name = rows[0]
            journal_id = journal_id_of(case_client, journal_row)
            # Only from a journal nobody is delivering: open, or sealed and waiting for approval.
            # An approved journal may be being built right now; its cases are fixed.
            if journal_state not in (JournalState.OPEN.value, JournalState.SEALED.value) or file_name:
                raise StoreError(
                    f"case {reference!r} is in journal {journal_id}, which is {journal_state}: it can no longer "
                    'be withdrawn here (with review = "manual" a sealed journal can be edited until approved)'
                )
            if journal_state == JournalState.SEALED.value:
                (live,) = db.execute(
                    "SELECT COUNT(*) FROM cases WHERE journal_row = ? AND withdrawn_at IS NULL",
                    (journal_row,),
                ).fetchone()
                if live <= 1:
                    raise StoreError(
                        f"case {reference!r} is the last case of sealed journal {journal_id}: a numbered journal "
                        "cannot be emptied (its number would be a gap); approve and send it, or contact the receiver"
                    )
            db.execute(
                "UPDATE cases SET withdrawn_at = ?, withdrawn_by = ?, withdrawn_reason = ? WHERE id = ?",
                (_iso(now), by, reason, case_row),
            )
        return self.case_by_row(case_row)

    def case_by_row(self, case_row: int) -> StoredCase:
        row = self._db.execute(
            "SELECT c.id, c.reference, c.client_id, c.journal_row, f.name, c.withdrawn_reason, c.payload "
            "FROM cases c JOIN files f ON f.id = c.file_row WHERE c.id = ?",
            (case_row,),
        ).fetchone()
        if row is None:
            raise StoreError(f"no case with row {case_row}")
        case_id, reference, client, journal_row, file_name, reason, payload = row
        return StoredCase(
            id=case_id,
            reference=reference,
            client_id=client,
            journal_id=journal_id_of(client, journal_row),
            file_name=file_name,
            withdrawn_reason=reason,
            journal_case=JournalCase.from_json(payload),
        )

    def cases_by_reference(self, reference: str) -> list[StoredCase]:
        rows = self._db.execute(
            "SELECT id FROM cases WHERE reference = ? ORDER BY id", (reference,)
        ).fetchall()
        return [self.case_by_row(row_id) for (row_id,) in rows]

    # -- reports, audit, trace: read-only ------------------------------------------------------

    def received_files(self, start: datetime, end: datetime) -> Iterator[ReceivedFile]:
        """Every file received in [start, end), oldest first (a cursor: a year of files is fine)."""
        rows = self._db.stream(
            "SELECT id, source, name, client_id, state, status, received_at, written_at, finished_at, "
            "COALESCE(case_count, 0), COALESCE(accepted_count, 0), COALESCE(rejected_count, 0), "
            "COALESCE(duplicate_count, 0), COALESCE(capital_in_ore, 0), COALESCE(accepted_capital_ore, 0), "
            "COALESCE(rejected_capital_ore, 0), COALESCE(duplicate_capital_ore, 0), receipt_path, final_path, "
            "client_orgnr, sha256 FROM files WHERE received_at >= ? AND received_at < ? AND state != 'abandoned' "
            "ORDER BY received_at, id",
            (_iso(start), _iso(end)),
        )
        for row in rows:
            values = list(row)
            values[4] = FileState(values[4])
            values[6] = datetime.fromisoformat(values[6])
            values[7] = _moment(values[7])
            values[8] = _moment(values[8])
            yield ReceivedFile(*values)

    def case_mismatches(
        self, start: datetime, end: datetime, client_orgnr: str | None = None
    ) -> list[CaseMismatch]:
        """Judged files received in [start, end) whose stored cases do not match their verdict."""
        rows = self._db.execute(
            "SELECT f.name, f.accepted_count, COUNT(c.id), f.accepted_capital_ore, COALESCE(SUM(c.capital_ore), 0) "
            "FROM files f LEFT JOIN cases c ON c.file_row = f.id "
            "WHERE f.received_at >= ? AND f.received_at < ? AND f.state IN ('judged', 'done') "
            "AND (CAST(? AS TEXT) IS NULL OR f.client_orgnr = ?) GROUP BY f.id "
            "HAVING COUNT(c.id) != f.accepted_count OR COALESCE(SUM(c.capital_ore), 0) != f.accepted_capital_ore",
            (_iso(start), _iso(end), client_orgnr, client_orgnr),
        )
        # PostgreSQL's SUM of a BIGINT is a NUMERIC: the figures are made ints here, once.
        return [CaseMismatch(str(name), *(int(n) for n in figures)) for name, *figures in rows]

    def capital_by_state(
        self, start: datetime, end: datetime, client_id: str | None
    ) -> list[tuple[str, int, int]]:
        """Where the cases of files received in [start, end) are now: (state, cases, öre)."""
        rows = self._db.execute(
            "SELECT CASE WHEN c.withdrawn_at IS NOT NULL THEN 'withdrawn' ELSE j.state END AS now_in, "
            "COUNT(*), SUM(c.capital_ore) FROM cases c JOIN files f ON f.id = c.file_row "
            "JOIN journals j ON j.id = c.journal_row "
            "WHERE f.received_at >= ? AND f.received_at < ? AND (CAST(? AS TEXT) IS NULL OR c.client_id = ?) GROUP BY now_in",
            (_iso(start), _iso(end), client_id, client_id),
        )
        return [(str(state), int(count), int(ore)) for state, count, ore in rows]

    def journal_sequences(self) -> dict[str, list[int]]:
        """Every client's journal sequence numbers in use."""
        sequences: dict[str, list[int]] = {}
        for client, sequence in self._db.execute(
            "SELECT client_id, sequence FROM journals WHERE sequence IS NOT NULL ORDER BY client_id, sequence"
        ):
            sequences.setdefault(str(client), []).append(int(sequence))
        return sequences

    def finding_counts(
        self, start: datetime, end: datetime
    ) -> Iterator[tuple[datetime, str | None, str | None, str, str, int]]:
        """(received, client id, client orgnr, code, severity, findings) per file received in [start, end)."""
        rows = self._db.stream(
            "SELECT f.received_at, f.client_id, f.client_orgnr, ff.code, ff.severity, ff.findings "
            "FROM file_findings ff JOIN files f ON f.id = ff.file_row "
            "WHERE f.received_at >= ? AND f.received_at < ? ORDER BY f.received_at",
            (_iso(start), _iso(end)),
        )
        for received, client, orgnr, code, severity, findings in rows:
            yield datetime.fromisoformat(received), client, orgnr, code, severity, int(findings)

    def file_findings(self, file_id: int) -> list[tuple[str, str, int]]:
        rows = self._db.execute(
            "SELECT code, severity, findings FROM file_findings WHERE file_row = ? ORDER BY code", (file_id,)
        )
        return [(str(code), str(severity), int(n)) for code, severity, n in rows]

    def journals_touched(self, start: datetime, end: datetime) -> list[JournalRecord]:
        """Journals sealed, approved or delivered in [start, end), and those not yet delivered."""
        bounds = (_iso(start), _iso(end))
        rows = self._db.execute(
            f"SELECT {_JOURNAL_COLUMNS} FROM journals j WHERE j.state != 'delivered' "
            "OR (j.sealed_at >= ? AND j.sealed_at < ?) OR (j.approved_at >= ? AND j.approved_at < ?) "
            "OR (j.delivered_at >= ? AND j.delivered_at < ?) ORDER BY j.client_id, j.sequence, j.id",
            bounds * 3,
        )
        return [self._journal(row) for row in rows]

    def cases_awaiting_review(self, *, client_id: str | None, limit: int) -> tuple[int, list[StoredCase]]:
        """Cases in sealed journals held for a person's approval (manual review, M16): how many,
        and the first ``limit``."""
        where = "WHERE j.state = 'sealed' AND c.withdrawn_at IS NULL AND (CAST(? AS TEXT) IS NULL OR c.client_id = ?)"
        (count,) = self._db.execute(
            f"SELECT COUNT(*) FROM cases c JOIN journals j ON j.id = c.journal_row {where}",
            (client_id, client_id),
        ).fetchone()
        rows = self._db.execute(
            f"SELECT c.id FROM cases c JOIN journals j ON j.id = c.journal_row {where} ORDER BY j.id, c.id LIMIT ?",
            (client_id, client_id, limit),
        ).fetchall()
        return int(count), [self.case_by_row(row_id) for (row_id,) in rows]

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Read everything inside as of one moment (a read transaction: consistent while the
        daemon goes on writing)."""
        self._db.begin_snapshot()
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def backup_to(self, target: Path) -> LedgerReader:
        """A copy of the store as of one moment at ``target`` (an SQLite file), opened to read."""
        raise NotImplementedError

    def receipt_chain(self) -> Iterator[FileRecord]:
        """Every file with a committed receipt in the order of the receipt chain, oldest first.

        Follows each receipt's recorded predecessor from the genesis value, one indexed lookup per
        receipt (nothing held in memory). A receipt whose predecessor is not in the chain is not
        reached: compare the count with :meth:`receipt_count`.
        """
        link = GENESIS_SHA256
        while True:
            row = self._db.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE previous_receipt_sha256 = ? AND state IN ('judged', 'done') "
                "ORDER BY id LIMIT 1",
                (link,),
            ).fetchone()
            if row is None:
                return
            record = self._file(row)
            yield record
            if not record.receipt_sha256:
                return
            link = record.receipt_sha256

    def receipt_count(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM files WHERE state IN ('judged', 'done')").fetchone()
        return int(count)

    def knows_path(self, path: str) -> bool:
        """Whether a receipt or original at ``path`` is one the gateway wrote."""
        row = self._db.execute(
            "SELECT 1 FROM files WHERE receipt_path = ? OR final_path = ? LIMIT 1", (path, path)
        ).fetchone()
        return row is not None

    def events_about(self, subjects: Sequence[str]) -> list[tuple[str, str, str, str]]:
        if not subjects:
            return []
        marks = ", ".join("?" for _ in subjects)
        rows = self._db.execute(
            f"SELECT at, kind, subject, detail FROM events WHERE subject IN ({marks}) ORDER BY id",
            tuple(subjects),
        )
        return [(str(at), str(kind), str(subject), str(detail)) for at, kind, subject, detail in rows]

    def cases_of_file(self, file_id: int, *, limit: int) -> tuple[int, list[StoredCase]]:
        """How many cases of a file were journaled, and the first ``limit`` of them."""
        (count,) = self._db.execute("SELECT COUNT(*) FROM cases WHERE file_row = ?", (file_id,)).fetchone()
        rows = self._db.execute(
            "SELECT id FROM cases WHERE file_row = ? ORDER BY position LIMIT ?", (file_id, limit)
        ).fetchall()
        return int(count), [self.case_by_row(row_id) for (row_id,) in rows]

    def files_of_journal(self, journal_id: str) -> list[FileRecord]:
        rows = self._db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE id IN "
            "(SELECT DISTINCT file_row FROM cases WHERE journal_row = ?) ORDER BY id",
            (_row_of(journal_id),),
        )
        return [self._file(row) for row in rows]

    def file_of_case(self, case_row: int) -> FileRecord:
        row = self._db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE id = (SELECT file_row FROM cases WHERE id = ?)",
            (case_row,),
        ).fetchone()
        if row is None:
            raise StoreError(f"no case with row {case_row}")
        return self._file(row)

    # -- bookkeeping ---------------------------------------------------------------------------

    # -- nodes, leases and duties ----------------------------------------------------------------

    @property
    def holder(self) -> str:
        return self._holder

    def _alive(self, db: Connection, holder: str, now: datetime) -> bool:
        """Whether the process ``holder`` may still be working. A daemon node is alive while its
        registration is its own and its heartbeat lease runs; a command (not a node) is alive
        while its process runs on this host, and on another host is trusted until its lease ends."""
        if holder == self._holder:
            return True
        if _is_node_holder(holder):
            return self._alive_node(db, holder, now)
        return _holder_alive(holder)

    def _stale_node(self, db: Connection, now: datetime) -> bool:
        """Whether this process is a daemon node whose own lease ran out (its heartbeat stopped):
        it takes nothing new until its heartbeat renews it, since others may already have taken
        over what it held."""
        return _is_node_holder(self._holder) and not self._alive_node(db, self._holder, now)

    def _alive_node(self, db: Connection, holder: str, now: datetime) -> bool:
        row = db.execute(
            "SELECT 1 FROM nodes WHERE name = ? AND holder = ? AND lease_until > ? AND stopped_at IS NULL",
            (holder.split(":")[0], holder, _iso(now)),
        ).fetchone()
        return row is not None

    def register_node(self, node: str, *, version: str, now: datetime, lease_seconds: float) -> str | None:
        """Join as ``node`` with this process's holder, taking the name over from whoever had it:
        the daemon holds its node's lock on the data folder, so an earlier holder is a process
        that died (kill -9) or a host that restarted. Returns that holder when its lease still
        ran (the caller says so), else None."""
        with self._tx() as db:
            row = db.execute("SELECT holder FROM nodes WHERE name = ?", (node,)).fetchone()
            previous = None
            if row is not None and row[0] != self._holder and self._alive(db, str(row[0]), now):
                previous = str(row[0])
            until = _iso(now + timedelta(seconds=lease_seconds))
            db.execute(
                "INSERT INTO nodes (name, holder, version, started_at, heartbeat_at, lease_until) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                "version = excluded.version, started_at = excluded.started_at, "
                "heartbeat_at = excluded.heartbeat_at, lease_until = excluded.lease_until, stopped_at = NULL",
                (node, self._holder, version, _iso(now), _iso(now), until),
            )
            return previous

    def renew_node(self, node: str, *, now: datetime, lease_seconds: float) -> bool:
        """The heartbeat: this node's lease and every lease it holds run ``lease_seconds`` from now.
        False when the registration is no longer this process's (it was taken over)."""
        until = _iso(now + timedelta(seconds=lease_seconds))
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE nodes SET heartbeat_at = ?, lease_until = ? WHERE name = ? AND holder = ?",
                (_iso(now), until, node, self._holder),
            )
            if cursor.rowcount != 1:
                return False
            db.execute("UPDATE leases SET lease_until = ? WHERE holder = ?", (until, self._holder))
            # A journal this node is delivering stays its own while the node lives, however long
            # the delivery takes (a slow link must not let another node send it a second time).
            db.execute(
                "UPDATE journals SET lease_until = ? WHERE lease_holder = ? AND state = 'approved' "
                "AND lease_until < ?",
                (until, self._holder, until),
            )
            return True

    def leave_node(self, node: str, *, now: datetime) -> None:
        """A clean stop: the node's leases go at once, so that another node need not wait for them."""
        with self._tx() as db:
            db.execute(
                "UPDATE nodes SET stopped_at = ?, lease_until = ? WHERE name = ? AND holder = ?",
                (_iso(now), _iso(now), node, self._holder),
            )
            db.execute("DELETE FROM leases WHERE holder = ?", (self._holder,))

    def nodes(self) -> list[NodeRecord]:
        rows = self._db.execute(
            "SELECT name, holder, version, started_at, heartbeat_at, lease_until, stopped_at FROM nodes ORDER BY name"
        )
        return [
            NodeRecord(
                name=str(name),
                holder=str(holder),
                version=str(version),
                started_at=datetime.fromisoformat(str(started)),
                heartbeat_at=datetime.fromisoformat(str(beat)),
                lease_until=datetime.fromisoformat(str(until)),
                stopped_at=_moment(None if stopped is None else str(stopped)),
            )
            for name, holder, version, started, beat, until, stopped in rows
        ]

    def take_lease(self, name: str, *, now: datetime, lease_seconds: float) -> bool:
        """Hold ``name`` (a file in hand, say) for this process. False while another live process
        holds it; a lease whose holder died, stopped or let it run out is taken over."""
        until = _iso(now + timedelta(seconds=lease_seconds))
        with self._tx() as db:
            if self._stale_node(db, now):
                return False
            row = db.execute("SELECT holder, lease_until FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] != self._holder:
                holder, lease_until = str(row[0]), datetime.fromisoformat(str(row[1]))
                if lease_until > now and self._alive(db, holder, now):
                    return False
            db.execute(
                "INSERT INTO leases (name, holder, taken_at, lease_until) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, taken_at = excluded.taken_at, "
                "lease_until = excluded.lease_until",
                (name, self._holder, _iso(now), until),
            )
            return True

    def release_lease(self, name: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, self._holder))

    def leased_by_others(self, prefix: str, *, now: datetime) -> set[str]:
        """The names under ``prefix`` that another live process holds now."""
        # The prefix is matched as it is written: LIKE's wildcards in a file name ("50%.xml",
        # "a_b.xml") are escaped, with an escape character both SQLite and PostgreSQL take as such.
        pattern = prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
        rows = self._db.execute(
            "SELECT name, holder FROM leases WHERE name LIKE ? ESCAPE '!' AND lease_until > ? AND holder != ?",
            (pattern, _iso(now), self._holder),
        ).fetchall()
        return {str(name) for name, holder in rows if self._alive(self._db, str(holder), now)}

    def take_duty(self, duty: str, slot: str, *, now: datetime) -> bool:
        """Whether this process is to do ``duty`` for ``slot`` (a scheduled seal at 16:00 on a day,
        the report of a day): True for exactly one process while the duty is undone, also for a
        process taking it over from one that died doing it; False once it is done."""
        with self._tx() as db:
            if self._stale_node(db, now):
                return False
            row = db.execute(
                "SELECT holder, finished_at FROM duties WHERE duty = ? AND slot = ?", (duty, slot)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO duties (duty, slot, holder, started_at) VALUES (?, ?, ?, ?)",
                    (duty, slot, self._holder, _iso(now)),
                )
                return True
            holder, finished = str(row[0]), row[1]
            if finished is not None:
                return False
            if holder != self._holder and self._alive(db, holder, now):
                return False
            db.execute(
                "UPDATE duties SET holder = ?, started_at = ? WHERE duty = ? AND slot = ?",
                (self._holder, _iso(now), duty, slot),
            )
            return True

    def finish_duty(self, duty: str, slot: str, *, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE duties SET finished_at = ? WHERE duty = ? AND slot = ? AND holder = ?",
                (_iso(now), duty, slot, self._holder),
            )

    def running_totals(self) -> RunningTotals:
        """Aggregates over the whole store, read at every scrape: one pass over files, the
        journals, and the delivery events found through the events' subject index."""
        with self.snapshot():
            files = {
                (str(source), str(status)): int(count)
                for source, status, count in self._db.execute(
                    "SELECT source, status, COUNT(*) FROM files WHERE state IN ('judged', 'done') "
                    "GROUP BY source, status"
                )
            }
            cases: dict[tuple[str, str], int] = {}
            capital: dict[str, int] = {}
            for client, accepted, rejected, duplicate, ore in self._db.execute(
                "SELECT COALESCE(client_id, ''), SUM(COALESCE(accepted_count, 0)), "
                "SUM(COALESCE(rejected_count, 0)), SUM(COALESCE(duplicate_count, 0)), "
                "SUM(COALESCE(accepted_capital_ore, 0)) FROM files WHERE state IN ('judged', 'done') "
                "GROUP BY COALESCE(client_id, '')"
            ):
                for outcome, count in (
                    ("accepted", accepted),
                    ("rejected", rejected),
                    ("duplicate", duplicate),
                ):
                    cases[(str(client), outcome)] = int(count)
                capital[str(client)] = int(ore)
            journals: dict[tuple[str, str], int] = {}
            delivered: dict[str, datetime] = {}
            for client, state, count, last in self._db.execute(
                "SELECT client_id, CASE WHEN state = 'approved' AND last_error IS NOT NULL THEN 'failed' "
                "ELSE state END, COUNT(*), MAX(delivered_at) FROM journals GROUP BY 1, 2"
            ):
                journals[(str(client), str(state))] = int(count)
                if last is not None:
                    delivered[str(client)] = datetime.fromisoformat(str(last))
            failures = {
                (str(client), "permanent" if kind == "delivery-failed" else "temporary"): int(count)
                for client, kind, count in self._db.execute(
                    "SELECT j.client_id, e.kind, COUNT(*) FROM journals j "
                    "JOIN events e ON e.subject = j.client_id || '-j' || CAST(j.id AS TEXT) "
                    "WHERE e.kind IN ('delivery-failed', 'delivery-retry') GROUP BY j.client_id, e.kind"
                )
            }
            (in_progress,) = self._db.execute("SELECT COUNT(*) FROM files WHERE state = 'claimed'").fetchone()
        return RunningTotals(
            files=files,
            cases=cases,
            accepted_capital_ore=capital,
            journals=journals,
            last_delivered=delivered,
            delivery_failures=failures,
            in_progress=int(in_progress),
        )

    # -- copies of receipts for their senders -------------------------------------------------

    _UPLOAD_COLUMNS = "id, source, local_path, name, sha256, size, subject, state, attempts, queued_at, next_try, last_error"

    @staticmethod
    def _upload(row: Sequence[Any]) -> ReceiptUpload:
        id_, source, local_path, name, sha256, size, subject, state, attempts, queued, next_try, error = row
        return ReceiptUpload(
            id=int(id_),
            source=str(source),
            local_path=str(local_path),
            name=str(name),
            sha256=str(sha256),
            size=int(size),
            subject=str(subject),
            state=str(state),
            attempts=int(attempts),
            queued_at=_moment(str(queued)),
            next_try=_moment(str(next_try)),
            last_error=None if error is None else str(error),
        )

    def queue_receipt_uploads(self, uploads: Sequence[ReceiptUpload], *, now: datetime) -> None:
        """Queue copies, due now; one already queued for the same source and name stays as it is
        (queuing is repeated when a crash cut publishing short)."""
        if not uploads:
            return
        with self._tx() as db:
            db.executemany(
                "INSERT INTO receipt_uploads (source, local_path, name, sha256, size, subject, state, "
                "queued_at, next_try) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) "
                "ON CONFLICT (source, name) DO NOTHING",
                [
                    (u.source, u.local_path, u.name, u.sha256, u.size, u.subject, _iso(now), _iso(now))
                    for u in uploads
                ],
            )

    def due_receipt_uploads(self, *, now: datetime, limit: int) -> list[ReceiptUpload]:
        rows = self._db.execute(
            f"SELECT {self._UPLOAD_COLUMNS} FROM receipt_uploads WHERE state = 'pending' AND next_try <= ? "
            "ORDER BY next_try, id LIMIT ?",
            (_iso(now), limit),
        ).fetchall()
        return [self._upload(row) for row in rows]

    def receipt_upload_due(self, upload_id: int, *, now: datetime) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM receipt_uploads WHERE id = ? AND state = 'pending' AND next_try <= ?",
            (upload_id, _iso(now)),
        ).fetchone()
        return row is not None

    def record_receipt_uploaded(self, upload_id: int, *, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE receipt_uploads SET state = 'done', attempts = attempts + 1, done_at = ?, "
                "last_error = NULL WHERE id = ? AND state = 'pending'",
                (_iso(now), upload_id),
            )

    def record_receipt_upload_failure(self, upload_id: int, error: str, *, retry_at: datetime | None) -> None:
        """Tried again at ``retry_at``; None: refused for good (it waits for a person)."""
        with self._tx() as db:
            if retry_at is None:
                db.execute(
                    "UPDATE receipt_uploads SET state = 'refused', attempts = attempts + 1, last_error = ? "
                    "WHERE id = ? AND state = 'pending'",
                    (error[:2000], upload_id),
                )
            else:
                db.execute(
                    "UPDATE receipt_uploads SET attempts = attempts + 1, last_error = ?, next_try = ? "
                    "WHERE id = ? AND state = 'pending'",
                    (error[:2000], _iso(retry_at), upload_id),
                )

    def retry_refused_receipt_uploads(self, *, now: datetime) -> int:
        """Refused copies are due again (a daemon's start: a person may have cleared the name)."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE receipt_uploads SET state = 'pending', next_try = ? WHERE state = 'refused'",
                (_iso(now),),
            )
            return int(cursor.rowcount)

    def receipt_upload_backlog(self, *, limit: int) -> ReceiptBacklog:
        pending, oldest, failing = self._db.execute(
            "SELECT COUNT(*), MIN(queued_at), COUNT(last_error) FROM receipt_uploads WHERE state = 'pending'"
        ).fetchone()
        refused = [
            self._upload(row)
            for row in self._db.execute(
                f"SELECT {self._UPLOAD_COLUMNS} FROM receipt_uploads WHERE state = 'refused' ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        ]
        return ReceiptBacklog(
            pending=int(pending),
            oldest_queued_at=_moment(None if oldest is None else str(oldest)),
            failing=int(failing),
            refused=refused,
        )

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def log_event(self, kind: str, subject: str, detail: str, *, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (at, kind, subject, detail) VALUES (?, ?, ?, ?)",
                (_iso(now), kind, subject, detail[:2000]),
            )

    def recent_events(self, limit: int) -> list[tuple[str, str, str, str]]:
        rows = self._db.execute(
            "SELECT at, kind, subject, detail FROM events ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]

    def counts(self) -> dict[str, int]:
        """Files by state and status, for `status`."""
        result: dict[str, int] = {}
        for state, status, count in self._db.execute(
            "SELECT state, COALESCE(status, ''), COUNT(*) FROM files WHERE state != 'abandoned' GROUP BY state, status"
        ):
            result[f"{state}:{status}" if status else str(state)] = int(count)
        return result

    # -- alarms ----------------------------------------------------------------------------------

    @staticmethod
    def _alarm(row: Sequence[Any]) -> AlarmRecord:
        return AlarmRecord(
            id=int(row[0]),
            alarm=str(row[1]),
            subject=str(row[2]),
            firing=row[3] == "firing",
            since=datetime.fromisoformat(str(row[4])),
            raised_at=datetime.fromisoformat(str(row[5])),
            resolved_at=_moment(None if row[6] is None else str(row[6])),
            message_sv=str(row[7]),
            message_en=str(row[8]),
            node=None if row[9] is None else str(row[9]),
        )

    def files_received_count(
        self, *, source: str, client_id: str | None, start: datetime | None, end: datetime
    ) -> int:
        query = (
            "SELECT COUNT(*) FROM files WHERE source = ? AND state IN ('judged', 'done') "
            "AND received_at < ? AND received_at >= ?"
        )
        parameters: list[Any] = [source, _iso(end), _iso(start) if start is not None else ""]
        if client_id is not None:
            query += " AND client_id = ?"
            parameters.append(client_id)
        (count,) = self._db.execute(query, parameters).fetchone()
        return int(count)

    def alarm_states(self, *, resolved_since: datetime) -> list[AlarmRecord]:
        rows = self._db.execute(
            f"SELECT {_ALARM_COLUMNS} FROM alarms a WHERE a.state = 'firing' OR a.resolved_at >= ? ORDER BY a.id",
            (_iso(resolved_since),),
        ).fetchall()
        return [self._alarm(row) for row in rows]

    def reconcile_alarms(
        self, conditions: Sequence[Condition], *, node: str, channels: Sequence[str], now: datetime
    ) -> list[AlarmRecord]:
        """One step under the write lock: each change is made by whoever asks first, and only once
        (the firing row is unique per alarm and subject; a resolution changes a row still firing)."""
        changed: list[int] = []
        holding = {condition.key for condition in conditions}
        with self._tx() as db:
            firing = {
                (str(alarm), str(subject)): (int(row_id), None if owner is None else str(owner))
                for row_id, alarm, subject, owner in db.execute(
                    "SELECT id, alarm, subject, node FROM alarms WHERE state = 'firing'"
                ).fetchall()
            }
            for key, (row_id, owner) in firing.items():
                if key in holding or (owner is not None and owner != node):
                    continue
                cursor = db.execute(
                    "UPDATE alarms SET state = 'resolved', resolved_at = ?, resolved_by = ? "
                    "WHERE id = ? AND state = 'firing'",
                    (_iso(now), self._holder, row_id),
                )
                if cursor.rowcount == 1:
                    changed.append(row_id)
                    self._queue_notifications(db, row_id, "resolved", node, channels, now)
            for condition in conditions:
                if condition.key in firing:
                    continue
                row = db.execute(
                    "INSERT INTO alarms (alarm, subject, state, node, since, raised_at, raised_by, "
                    "message_sv, message_en) VALUES (?, ?, 'firing', ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING RETURNING id",
                    (
                        condition.alarm,
                        condition.subject,
                        condition.node,
                        _iso(condition.since),
                        _iso(now),
                        self._holder,
                        condition.message_sv[:2000],
                        condition.message_en[:2000],
                    ),
                ).fetchone()
                if row is not None:
                    changed.append(int(row[0]))
                    self._queue_notifications(db, int(row[0]), "firing", node, channels, now)
            if not changed:
                return []
            marks = ", ".join("?" for _ in changed)
            rows = db.execute(
                f"SELECT {_ALARM_COLUMNS} FROM alarms a WHERE a.id IN ({marks}) ORDER BY a.id", changed
            ).fetchall()
        return [self._alarm(row) for row in rows]

    @staticmethod
    def _queue_notifications(
        db: Connection, row_id: int, state: str, node: str, channels: Sequence[str], now: datetime
    ) -> None:
        for channel in channels:
            db.execute(
                "INSERT INTO alarm_notifications (alarm_row, state, channel, node, created_at, next_try_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (row_id, state, channel, node, _iso(now), _iso(now)),
            )

    def take_notifications(
        self, *, now: datetime, lease_seconds: float, limit: int
    ) -> list[AlarmNotification]:
        until = _iso(now + timedelta(seconds=lease_seconds))
        with self._tx() as db:
            rows = db.execute(
                f"SELECT n.id, n.channel, n.state, n.node, n.attempts, {_ALARM_COLUMNS} "
                "FROM alarm_notifications n JOIN alarms a ON a.id = n.alarm_row "
                "WHERE n.sent_at IS NULL AND n.next_try_at <= ? "
                "AND (n.lease_until IS NULL OR n.lease_until <= ? OR n.lease_holder = ?) "
                "AND NOT EXISTS (SELECT 1 FROM alarm_notifications e WHERE e.alarm_row = n.alarm_row "
                "AND e.channel = n.channel AND e.id < n.id AND e.sent_at IS NULL) "
                "ORDER BY n.id LIMIT ?",
                (_iso(now), _iso(now), self._holder, limit),
            ).fetchall()
            taken: list[AlarmNotification] = []
            for row in rows:
                db.execute(
                    "UPDATE alarm_notifications SET lease_holder = ?, lease_until = ?, attempts = attempts + 1 "
                    "WHERE id = ?",
                    (self._holder, until, int(row[0])),
                )
                taken.append(
                    AlarmNotification(
                        id=int(row[0]),
                        channel=str(row[1]),
                        state=str(row[2]),
                        node=str(row[3]),
                        attempts=int(row[4]) + 1,
                        alarm=self._alarm(row[5:]),
                    )
                )
        return taken

    def notification_sent(self, notification_id: int, *, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE alarm_notifications SET sent_at = ?, lease_holder = NULL, lease_until = NULL, "
                "last_error = NULL WHERE id = ? AND sent_at IS NULL",
                (_iso(now), notification_id),
            )

    def notification_failed(self, notification_id: int, error: str, *, retry_at: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE alarm_notifications SET next_try_at = ?, last_error = ?, lease_holder = NULL, "
                "lease_until = NULL WHERE id = ? AND sent_at IS NULL AND lease_holder = ?",
                (_iso(retry_at), error[:2000], notification_id, self._holder),
            )
