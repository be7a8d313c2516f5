"""The embedded store: SQLite in WAL mode, one ``BEGIN IMMEDIATE`` transaction per step.

WAL lets the command line read while the daemon writes; ``BEGIN IMMEDIATE`` takes the write lock
at the start of a step, so two processes (the daemon and `journal seal`, say) can never both seal
or number the same journal. ``synchronous = FULL``: a committed step survives a power cut, which is
what an auditor assumes of a receipt that says "received".

Read-only commands open the store with ``read_only=True``: a ``mode=ro`` connection that never
takes the write lock, never migrates and never waits behind a writer (WAL readers do not).
Every ``sqlite3`` error stops at this module's boundary: a lock held too long, a full disk or an
I/O error becomes :class:`~gateway.errors.StoreUnavailableError` (the daemon pauses and retries), a
constraint that another writer tripped becomes :class:`~gateway.errors.StoreConflictError`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import shutil
import socket
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from gateway.domain.chain import GENESIS_SHA256
from gateway.domain.journal import JournalCase
from gateway.errors import (
    StoreConflictError,
    StoreError,
    StoreMissingError,
    StoreOutdatedError,
    StoreUnavailableError,
)
from gateway.fsutil import fsync_folder, temporary_name
from gateway.store import (
    CaseMismatch,
    FileRecord,
    FileState,
    JournalRecord,
    JournalState,
    Judgement,
    ReceivedFile,
    RunningTotals,
    StoredCase,
)

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
)
SCHEMA_VERSION = len(MIGRATIONS)

#: Who holds a delivery lease: this machine and process.
LEASE_HOLDER = f"{socket.gethostname()}:{os.getpid()}"

_FILE_COLUMNS = (
    "id, source, name, path, sha256, size, state, attempts, received_at, status, receipt_path, "
    "receipt_sha256, final_path, last_error, previous_receipt_sha256, written_at, judged_at, finished_at, "
    "client_id, source_identity"
)
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


def journal_id_of(client_id: str, row: int) -> str:
    return f"{client_id}-j{row}"


def _row_of(journal_id: str) -> int:
    try:
        return int(journal_id.rsplit("-j", 1)[1])
    except (IndexError, ValueError):
        raise StoreError(f"no such journal: {journal_id}") from None


#: How long a step waits for another process's write lock before the store is "unavailable".
DEFAULT_BUSY_SECONDS = 30.0

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _translate(error: sqlite3.Error, path: Path) -> StoreError:
    """A driver error as the gateway's own: what it means and what it waits for."""
    text = str(error)
    lowered = text.lower()
    if isinstance(error, sqlite3.IntegrityError):
        return StoreConflictError(f"the store {path}: another writer got there first ({text})")
    if isinstance(error, sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return StoreError(f"the store {path}: {text}")
    if "locked" in lowered or "busy" in lowered:
        reason = "another process holds its write lock"
    elif "full" in lowered:
        reason = "the disk is full"
    elif "readonly" in lowered or "read-only" in lowered:
        reason = "it cannot be written (read-only file or folder)"
    elif "malformed" in lowered or "not a database" in lowered or "corrupt" in lowered:
        reason = "it is damaged (restore it from a backup)"
    elif "unable to open" in lowered:
        reason = "it cannot be opened"
    else:
        reason = text
    return StoreUnavailableError(f"the store {path} cannot be used now: {reason} ({text})")


def _mapped(method: _Method) -> _Method:
    """Wrap a store method so that no sqlite3 error leaves the store."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self: SqliteStore, *args: Any, **kwargs: Any) -> Any:
            try:
                yield from method(self, *args, **kwargs)
            except sqlite3.Error as error:
                raise _translate(error, self.path) from error

        return generator  # type: ignore[return-value]

    @functools.wraps(method)
    def plain(self: SqliteStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as error:
            raise _translate(error, self.path) from error

    return plain  # type: ignore[return-value]


def _map_driver_errors(cls: type[SqliteStore]) -> type[SqliteStore]:
    """Every public method of the store, and its constructor, behind :func:`_mapped`.

    A ``@contextmanager`` method is mapped inside: its generator (the code around ``yield``, run
    when the block is entered and left) is wrapped and the context manager made again, so that a
    commit failing at the end of the block is mapped too."""
    for name, member in list(vars(cls).items()):
        if not callable(member) or (name.startswith("_") and name != "__init__"):
            continue
        inner = getattr(member, "__wrapped__", None)  # what @contextmanager keeps of the generator
        if not inspect.isgeneratorfunction(member) and inspect.isgeneratorfunction(inner):
            setattr(cls, name, contextmanager(_mapped(inner)))
        else:
            setattr(cls, name, _mapped(member))
    return cls


@_map_driver_errors
class SqliteStore:
    """The store in one SQLite file. Not shared between threads; open one per process."""

    def __init__(
        self,
        path: Path,
        *,
        file_mode: int = 0o600,
        read_only: bool = False,
        at_rest: bool = False,
        busy_seconds: float = DEFAULT_BUSY_SECONDS,
        lease_holder: str = LEASE_HOLDER,
    ) -> None:
        """``lease_holder``: who this process is when it takes a delivery lease, "<host>:<pid>"
        (another name only for a test that plays a second machine)."""
        self.path = path
        self.read_only = read_only
        self._holder = lease_holder
        self._private: Path | None = None
        if read_only:
            self._db = self._connect_read_only(path, at_rest=at_rest)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Create it owner-only before SQLite does: it holds personal identity numbers.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, file_mode))
        self._db = sqlite3.connect(path, isolation_level=None, timeout=busy_seconds, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _connect_read_only(self, path: Path, *, at_rest: bool) -> sqlite3.Connection:
        """A connection that can only read: never the write lock, never a migration, never a new
        file. WAL readers see the last commit and do not wait for a writer.

        ``at_rest``: no daemon uses this store (a copy, a restored backup). Reading a WAL store
        needs its shared-memory file, which a user who may only read cannot create; then a store
        at rest is read as immutable, or, when it still holds a WAL of commits, from a private
        copy of both: nothing is ever written beside the store being read."""
        if not path.is_file():
            raise StoreMissingError(
                f"no store at {path}: start the daemon once (`inkasso-gateway run`) to create it"
            )
        try:
            db = self._read_only(f"file:{quote(str(path))}?mode=ro")
        except sqlite3.OperationalError:
            if not at_rest:
                raise
            wal = Path(f"{path}-wal")
            if not wal.exists() or wal.stat().st_size == 0:
                db = self._read_only(f"file:{quote(str(path))}?mode=ro&immutable=1")
            else:
                self._private = Path(tempfile.mkdtemp(prefix="inkasso-gateway-store-"))
                for suffix in ("", "-wal"):
                    shutil.copyfile(f"{path}{suffix}", self._private / f"gateway.db{suffix}")
                db = self._read_only(str(self._private / "gateway.db"))
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
        except BaseException:
            db.close()
            raise
        if version > SCHEMA_VERSION:
            db.close()
            raise StoreMissingError(
                f"the store {path} has schema version {version}, newer than this gateway ({SCHEMA_VERSION}): "
                "upgrade the gateway"
            )
        if version < SCHEMA_VERSION:
            db.close()
            raise StoreOutdatedError(
                f"the store {path} has schema version {version}, older than this gateway ({SCHEMA_VERSION}): "
                "start the daemon once to migrate it (a read-only command never does)"
            )
        db.execute("PRAGMA query_only = ON")
        return db

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            # SQLite rolls back by itself after some errors (a full disk): then there is nothing left.
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the original error is the one to report
                    self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreMissingError(
                    f"the store has schema version {version}, newer than this gateway knows "
                    f"({len(MIGRATIONS)}): upgrade the gateway, do not downgrade it"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @staticmethod
    def _read_only(uri: str) -> sqlite3.Connection:
        db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5.0, check_same_thread=False)
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opening is lazy: read now
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        self._db.close()
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)

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
                cursor = db.execute(
                    "INSERT INTO files (source, name, path, sha256, size, state, attempts, received_at, "
                    "written_at, source_identity) VALUES (?, ?, ?, ?, ?, 'claimed', 1, ?, ?, ?)",
                    (source, name, path, sha256, size, _iso(now), _iso(written_at), identity),
                )
                file_id = cursor.lastrowid
            else:
                file_id = row[0]
                db.execute(
                    "UPDATE files SET attempts = attempts + 1, source_identity = ? WHERE id = ?",
                    (identity, file_id),
                )
            return self._file(
                db.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE id = ?", (file_id,)).fetchone()
            )

    def _drop_claim(self, db: sqlite3.Connection, file_id: int, reason: str, now: datetime) -> None:
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
            "AND state IN ('judged', 'done') AND source_identity IS ? ORDER BY id DESC LIMIT 1",
            (source, path, sha256, identity),
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
                "UPDATE files SET attempts = MAX(attempts - 1, 0), last_error = ? WHERE id = ? AND state = 'claimed'",
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
            f"SELECT {_FILE_COLUMNS} FROM files WHERE name = ? OR (? IS NOT NULL AND substr(sha256, 1, ?) = ?) "
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
            state = db.execute("SELECT state FROM files WHERE id = ?", (judgement.file_id,)).fetchone()
            if state is None or state[0] != FileState.CLAIMED.value:
                raise StoreError(f"file {judgement.file_id} is not waiting for a verdict")
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
            for case in judgement.accepted:
                accepted_count += 1
                if journal_row is None:
                    raise StoreError("accepted cases without an open journal")
                cursor = db.execute(
                    "INSERT INTO cases (file_row, position, client_id, client_orgnr, reference, fingerprint, "
                    "journal_row, capital_ore, claim_count, protected, payload, payload_sha256) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    ),
                )
                case_row = cursor.lastrowid
                db.executemany(
                    "INSERT OR IGNORE INTO claim_references (client_orgnr, claim_reference, case_row) VALUES (?, ?, ?)",
                    [(case.client_orgnr, reference, case_row) for reference in case.claim_references],
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
    def _chain_tip(db: sqlite3.Connection) -> tuple[str, int]:
        rows = dict(
            db.execute(
                "SELECT key, value FROM meta WHERE key IN ('receipt_chain_head', 'receipt_chain_length')"
            ).fetchall()
        )
        return rows.get("receipt_chain_head", GENESIS_SHA256), int(rows.get("receipt_chain_length", "0"))

    def _open_journal(self, db: sqlite3.Connection, client_id: str, now: datetime) -> int:
        row = db.execute(
            "SELECT id FROM journals WHERE client_id = ? AND state = 'open'", (client_id,)
        ).fetchone()
        if row is not None:
            return int(row[0])
        cursor = db.execute(
            "INSERT INTO journals (client_id, state, opened_at) VALUES (?, 'open', ?)", (client_id, _iso(now))
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

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
                "INSERT INTO events (at, kind, subject, detail) SELECT ?, 'quarantine-resolved', name, ? FROM files WHERE id = ?",
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
        cursor = self._db.execute(
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
            if row is None or row[0] != JournalState.APPROVED.value:
                return False
            _, lease_until, holder, retry_at = row
            if retry_at is not None and datetime.fromisoformat(retry_at) > now:
                return False
            leased = lease_until is not None and datetime.fromisoformat(lease_until) > now
            if leased and holder != self._holder and _holder_alive(holder):
                return False
            db.execute(
                "UPDATE journals SET lease_until = ?, lease_holder = ?, retry_at = NULL, attempts = attempts + 1 "
                "WHERE id = ?",
                (_iso(now + timedelta(seconds=lease_seconds)), self._holder, row_id),
            )
            return True

    def record_delivery_failure(self, journal_id: str, error: str, *, retry_at: datetime) -> None:
        """Release the lease; the next attempt waits until ``retry_at`` (the backoff)."""
        with self._tx() as db:
            db.execute(
                "UPDATE journals SET last_error = ?, retry_at = ?, lease_until = NULL, lease_holder = NULL "
                "WHERE id = ?",
                (error[:2000], _iso(retry_at), _row_of(journal_id)),
            )

    def release_delivery_lease(self, journal_id: str) -> None:
        """A person asked to send now: forget the backoff (the attempt itself still takes a lease)."""
        with self._tx() as db:
            db.execute(
                "UPDATE journals SET retry_at = NULL WHERE id = ? AND state = 'approved'",
                (_row_of(journal_id),),
            )

    def record_delivered(self, journal_id: str, *, now: datetime, receipt_sha256: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE journals SET state = 'delivered', delivered_at = ?, lease_until = NULL, lease_holder = NULL, "
                "retry_at = NULL, last_error = NULL, receipt_sha256 = ?, delivered_by = ? "
                "WHERE id = ? AND state = 'approved'",
                (_iso(now), receipt_sha256, self._holder, _row_of(journal_id)),
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
        rows = self._db.execute(
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
            "AND (? IS NULL OR f.client_orgnr = ?) GROUP BY f.id "
            "HAVING COUNT(c.id) != f.accepted_count OR COALESCE(SUM(c.capital_ore), 0) != f.accepted_capital_ore",
            (_iso(start), _iso(end), client_orgnr, client_orgnr),
        )
        return [CaseMismatch(*row) for row in rows]

    def capital_by_state(
        self, start: datetime, end: datetime, client_id: str | None
    ) -> list[tuple[str, int, int]]:
        """Where the cases of files received in [start, end) are now: (state, cases, öre)."""
        rows = self._db.execute(
            "SELECT CASE WHEN c.withdrawn_at IS NOT NULL THEN 'withdrawn' ELSE j.state END AS now_in, "
            "COUNT(*), SUM(c.capital_ore) FROM cases c JOIN files f ON f.id = c.file_row "
            "JOIN journals j ON j.id = c.journal_row "
            "WHERE f.received_at >= ? AND f.received_at < ? AND (? IS NULL OR c.client_id = ?) GROUP BY now_in",
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
        rows = self._db.execute(
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
        where = "WHERE j.state = 'sealed' AND c.withdrawn_at IS NULL AND (? IS NULL OR c.client_id = ?)"
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
        """Read everything inside as of one moment (a read transaction: WAL keeps it consistent
        while the daemon goes on writing)."""
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def backup_to(self, target: Path) -> SqliteStore:
        """A copy of the store as of one moment at ``target``, opened to read: SQLite's online
        backup in one step (in steps, a daemon writing meanwhile would make SQLite start over,
        perhaps for ever), out of WAL so that the copy is one self-contained file anybody who may
        read it can open. Written beside ``target`` owner-only and renamed over an earlier copy."""
        temporary = temporary_name(target)
        os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        try:
            temporary.chmod(0o600)  # whatever the umask: SQLite must be able to write it
            copy = sqlite3.connect(temporary)
            try:
                self._db.backup(copy)
                copy.execute("PRAGMA journal_mode = DELETE")
            finally:
                copy.close()
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        temporary.replace(target)
        fsync_folder(target.parent)
        return SqliteStore(target, read_only=True, at_rest=True)

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

    # -- monitoring ----------------------------------------------------------------------------

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
                    "JOIN events e ON e.subject = j.client_id || '-j' || j.id "
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
