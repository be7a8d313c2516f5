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

What the store does is written once, in :mod:`gateway.store.sql`; this module is SQLite's side of
it: opening the file, the schema version (``PRAGMA user_version``), the write lock, the online
backup and its errors.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gateway.errors import (
    StoreConflictError,
    StoreError,
    StoreMissingError,
    StoreOutdatedError,
    StoreUnavailableError,
)
from gateway.fsutil import fsync_folder, temporary_name
from gateway.store.sql import (
    DEFAULT_BUSY_SECONDS,
    LEASE_HOLDER,
    MIGRATIONS,
    SCHEMA_VERSION,
    SqlStore,
    map_driver_errors,
)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Schema", "SqliteConnection", "SqliteStore", "reference_schema"]


@dataclass(frozen=True)
class Schema:
    """The schema as the migrations leave it: its statements, in the order SQLite created the
    objects, and each table's columns in order."""

    statements: tuple[str, ...]
    tables: dict[str, tuple[str, ...]]


@functools.cache
def reference_schema() -> Schema:
    """The current schema, from the migrations run on an empty database in memory: what every
    backend's schema is made from (PostgreSQL's too), so that it is written once."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        for script in MIGRATIONS:
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
        objects = db.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
        ).fetchall()
        tables = {
            str(name): tuple(str(column[1]) for column in db.execute(f"PRAGMA table_info({name})"))
            for kind, name, _ in objects
            if kind == "table"
        }
    return Schema(tuple(str(sql) for _, _, sql in objects), tables)


class SqliteConnection(sqlite3.Connection):
    """SQLite's dialect of :class:`gateway.store.sql.Connection`: the driver's own connection
    (``?`` placeholders, lazy cursors) and what differs, as methods."""

    def begin_write(self) -> None:
        # The write lock at the start: a step never upgrades a read to a write (and deadlocks).
        self.execute("BEGIN IMMEDIATE")

    def begin_snapshot(self) -> None:
        # A read transaction: WAL keeps what it reads as of its first read.
        self.execute("BEGIN")

    def stream(self, sql: str, parameters: Sequence[Any] = ()) -> Iterator[Any]:
        # SQLite's cursors step through the result: nothing more to do.
        return iter(self.execute(sql, parameters))

    def insert_returning_ids(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        # In process, a statement is no round trip: one each (executemany returns no rows).
        return [int(self.execute(sql, row).fetchone()[0]) for row in rows]


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


@map_driver_errors
class SqliteStore(SqlStore):
    """The store in one SQLite file. Not shared between threads; open one per process."""

    driver_errors = (sqlite3.Error,)

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
        super().__init__(location=str(path), read_only=read_only, lease_holder=lease_holder)
        self._private: Path | None = None
        if read_only:
            self._sqlite = self._connect_read_only(path, at_rest=at_rest)
            self._db = self._sqlite
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Create it owner-only before SQLite does: it holds personal identity numbers.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, file_mode))
        self._sqlite = sqlite3.connect(
            path,
            isolation_level=None,
            timeout=busy_seconds,
            check_same_thread=False,
            factory=SqliteConnection,
        )
        self._db = self._sqlite
        try:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _translate_error(self, error: Exception) -> StoreError:
        assert isinstance(error, sqlite3.Error)
        return _translate(error, self.path)

    def _connect_read_only(self, path: Path, *, at_rest: bool) -> SqliteConnection:
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

    def tables(self) -> dict[str, tuple[str, ...]]:
        return reference_schema().tables

    @staticmethod
    def _read_only(uri: str) -> SqliteConnection:
        db = sqlite3.connect(
            uri,
            uri=True,
            isolation_level=None,
            timeout=5.0,
            check_same_thread=False,
            factory=SqliteConnection,
        )
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opening is lazy: read now
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        super().close()
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)

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
                self._sqlite.backup(copy)
                copy.execute("PRAGMA journal_mode = DELETE")
            finally:
                copy.close()
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        temporary.replace(target)
        fsync_folder(target.parent)
        return SqliteStore(target, read_only=True, at_rest=True)
