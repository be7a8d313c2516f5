"""Bounded memory for unbounded files: what a judge must remember of every case, kept on disk.

A file may hold a million cases. Judging it needs, per case, the outcome (for the receipt written
after the last case) and the references seen so far (a reference repeated within the file, A04
and R08). Both are small per case and large in sum, so each is kept in memory up to a threshold
and spilled to a temporary file beyond it: a file of ordinary size never touches the disk, and a
huge one costs a few megabytes whatever its size. Temporary files are unlinked at once (nothing
to clean up after a crash).
"""

from __future__ import annotations

import errno
import pickle
import sqlite3
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, TypeVar

from gateway.domain.findings import Finding, Severity
from gateway.domain.judging import CaseOutcome, CaseStatus, FileJudge

#: Outcomes kept in memory before they go to disk in chunks (about 0.5 KB each with findings).
OUTCOMES_IN_MEMORY = 10_000
#: References kept in a dict before the rest go to a temporary SQLite table.
KEYS_IN_MEMORY = 20_000
#: New spilled references written to the table at a time.
PENDING_BATCH = 8_192
#: Bits of the Bloom filter in front of the table (2 MiB): with 2 hashes, about 1.4 % false
#: "maybe"s at a million references (each then costs one lookup in the table).
BLOOM_BITS = 16 * 1024 * 1024

_V = TypeVar("_V")
_S = TypeVar("_S", "SpooledOutcomes", "SpillingMap[Any]")
_MISSING: Any = object()

_STATUS = {status.value: status for status in CaseStatus}
_SEVERITY = {severity.value: severity for severity in Severity}


def _pack(outcome: CaseOutcome) -> tuple[Any, ...]:
    # Tuples pickle about ten times faster than the dataclasses themselves.
    findings = tuple(
        (f.code, f.severity.value, f.path, f.line, f.message_sv, f.message_en) for f in outcome.findings
    )
    return (
        outcome.index,
        outcome.reference,
        outcome.line,
        outcome.status.value,
        findings,
        str(outcome.capital),
        outcome.claim_count,
        outcome.protected,
    )


def _unpack(packed: tuple[Any, ...]) -> CaseOutcome:
    index, reference, line, status, findings, capital, claims, protected = packed
    return CaseOutcome(
        index,
        reference,
        line,
        _STATUS[status],
        tuple(Finding(c, _SEVERITY[s], p, n, sv, en) for c, s, p, n, sv, en in findings),
        Decimal(capital),
        claims,
        protected,
    )


def _as_os_error(error: sqlite3.Error) -> OSError:
    """The spill table's failure is its folder's: a full or failing disk, not the file's fault."""
    full = "full" in str(error).lower()
    return OSError(errno.ENOSPC if full else errno.EIO, f"spilling references to disk: {error}")


class Spill:
    """Moves a judge's per-case memory to disk once a file proves large.

    A judge starts with a plain list and plain dicts (the fastest there is); after each case,
    :meth:`after_case` swaps in a spilling version of whichever has reached its threshold. A file
    of ordinary size never pays for the spilling versions' Python-level methods.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder
        self.spools: list[SpooledOutcomes | SpillingMap[Any]] = []

    def after_case(self, judge: FileJudge) -> None:
        state = judge.state
        if type(state.references) is dict and len(state.references) >= KEYS_IN_MEMORY:
            state.references = self._keep(SpillingMap.taking(state.references, self._folder))
        if type(state.claim_references) is dict and len(state.claim_references) >= KEYS_IN_MEMORY:
            state.claim_references = self._keep(SpillingMap.taking(state.claim_references, self._folder))
        outcomes = judge.outcomes
        if isinstance(outcomes, list) and len(outcomes) >= OUTCOMES_IN_MEMORY:
            judge.outcomes = self._keep(SpooledOutcomes.taking(outcomes, self._folder))

    def _keep(self, spool: _S) -> _S:
        self.spools.append(spool)
        return spool

    def close(self) -> None:
        for spool in self.spools:
            spool.close()


class SpooledOutcomes:
    """An :class:`~gateway.domain.judging.OutcomeLog` that spills to a temporary file.

    Appending and then reading back (any number of times) is all it does; memory holds at most
    one chunk of outcomes.
    """

    def __init__(self, folder: Path | None = None, *, in_memory: int = OUTCOMES_IN_MEMORY) -> None:
        self._folder = folder
        self._chunk_size = in_memory
        self._chunk: list[CaseOutcome] = []
        self._file: IO[bytes] | None = None
        self._spilled = 0
        self._count = 0

    @classmethod
    def taking(cls, outcomes: list[CaseOutcome], folder: Path | None) -> SpooledOutcomes:
        spooled = cls(folder)
        for outcome in outcomes:
            spooled.append(outcome)
        return spooled

    def append(self, outcome: CaseOutcome, /) -> None:
        self._chunk.append(outcome)
        self._count += 1
        if len(self._chunk) >= self._chunk_size:
            self._spill()

    def _spill(self) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(dir=self._folder)  # noqa: SIM115 - closed in close()
        self._file.seek(0, 2)
        pickle.dump([_pack(outcome) for outcome in self._chunk], self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self._spilled += 1
        self._chunk = []

    def __iter__(self) -> Iterator[CaseOutcome]:
        if self._file is not None:
            self._file.flush()
            with open(self._file.fileno(), "rb", closefd=False) as reader:
                reader.seek(0)
                for _ in range(self._spilled):
                    # Only what this object wrote itself is ever unpickled.
                    for packed in pickle.load(reader):
                        yield _unpack(packed)
        yield from self._chunk

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class SpillingMap(dict[str, _V]):
    """A str-keyed map (the references of one file) that keeps its first entries in memory and
    the rest in a temporary SQLite table. Offers what the rules use: ``get``, ``in``,
    item assignment and ``setdefault``; keys are never removed.

    Most lookups are for keys never seen (references are unique in a good file), so a Bloom
    filter answers those without the table, and new entries reach the table in batches.
    """

    def __init__(self, folder: Path | None = None, *, in_memory: int = KEYS_IN_MEMORY) -> None:
        super().__init__()
        self._folder = folder
        self._in_memory = in_memory
        self._db: sqlite3.Connection | None = None
        self._pending: dict[str, Any] = {}
        self._bloom: bytearray | None = None
        self._spilled = 0
        self._last_miss: str | None = None

    @classmethod
    def taking(cls, entries: dict[str, _V], folder: Path | None) -> SpillingMap[_V]:
        """A spilling map holding ``entries`` in memory; what comes after them spills."""
        spilling: SpillingMap[_V] = cls(folder, in_memory=len(entries))
        dict.update(spilling, entries)
        return spilling

    def _table(self) -> sqlite3.Connection:
        if self._db is None:
            # A file of our own, unlinked at once: SQLite keeps its own pages bounded (its cache).
            handle = tempfile.NamedTemporaryFile(dir=self._folder, suffix=".keys", delete=False)  # noqa: SIM115
            handle.close()
            try:
                self._db = sqlite3.connect(handle.name, isolation_level=None)
                Path(handle.name).unlink()
                self._db.execute("PRAGMA journal_mode = OFF")
                self._db.execute("PRAGMA synchronous = OFF")
                self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, value) WITHOUT ROWID")
            except sqlite3.Error as error:
                raise _as_os_error(error) from error
        return self._db

    def _spilled_value(self, key: str) -> Any:
        """The value of a spilled key, or _MISSING. Two positions in a Bloom filter, from Python's
        own string hash (salted per process: the filter never leaves it), rule most keys out
        without the table; written flat, for it runs for every reference of a big file. The rules
        ask about the same new key twice in a row (a rule, then the judge): the last miss is kept."""
        if key is self._last_miss:
            return _MISSING
        bloom = self._bloom
        if bloom is None:
            return _MISSING
        value = hash(key)
        a, b = (value & 0xFFFFFFFF) % BLOOM_BITS, ((value >> 32) & 0xFFFFFFFF) % BLOOM_BITS
        if not (bloom[a >> 3] & (1 << (a & 7)) and bloom[b >> 3] & (1 << (b & 7))):
            self._last_miss = key
            return _MISSING
        found = self._pending.get(key, _MISSING)
        if found is _MISSING:
            try:
                row = self._table().execute("SELECT value FROM seen WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error as error:
                raise _as_os_error(error) from error
            if row is not None:
                found = row[0]
        if found is _MISSING:
            self._last_miss = key
        return found

    def get(self, key: str, default: Any = None) -> Any:
        value = dict.get(self, key, _MISSING)
        if value is _MISSING and self._bloom is not None:
            value = self._spilled_value(key)
        return default if value is _MISSING else value

    def __contains__(self, key: object) -> bool:
        if dict.__contains__(self, key):
            return True
        return self._bloom is not None and isinstance(key, str) and self._spilled_value(key) is not _MISSING

    def __getitem__(self, key: str) -> _V:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value  # type: ignore[no-any-return]

    def __setitem__(self, key: str, value: _V) -> None:
        if dict.__len__(self) < self._in_memory or dict.__contains__(self, key):
            dict.__setitem__(self, key, value)
        else:
            self._spill(key, value)

    def _spill(self, key: str, value: Any) -> None:
        self._last_miss = None
        if self._bloom is None:
            self._bloom = bytearray(BLOOM_BITS // 8)
        bloom = self._bloom
        hashed = hash(key)
        a, b = (hashed & 0xFFFFFFFF) % BLOOM_BITS, ((hashed >> 32) & 0xFFFFFFFF) % BLOOM_BITS
        bloom[a >> 3] |= 1 << (a & 7)
        bloom[b >> 3] |= 1 << (b & 7)
        self._pending[key] = value
        self._spilled += 1
        if len(self._pending) >= PENDING_BATCH:
            self._flush()

    def setdefault(self, key: str, default: Any = None) -> Any:
        value = dict.get(self, key, _MISSING)
        if value is not _MISSING:
            return value
        if dict.__len__(self) < self._in_memory:
            dict.__setitem__(self, key, default)
            return default
        value = self._spilled_value(key)
        if value is _MISSING:
            self._spill(key, default)
            return default
        return value

    def _flush(self) -> None:
        # One transaction per batch (each statement would otherwise be its own), in key order.
        table = self._table()
        table.execute("BEGIN")
        table.executemany(
            "INSERT OR REPLACE INTO seen (key, value) VALUES (?, ?)", sorted(self._pending.items())
        )
        table.execute("COMMIT")
        self._pending = {}

    def __len__(self) -> int:
        return dict.__len__(self) + self._spilled

    def close(self) -> None:
        self._pending = {}
        self._bloom = None
        if self._db is not None:
            self._db.close()
            self._db = None
