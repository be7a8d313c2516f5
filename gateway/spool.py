"""Bounded memory for unbounded files: what a judge must remember of every case, kept on disk.

A file may hold a million cases. Judging it needs, per case, the outcome (for the receipt written
after the last case) and the references seen so far (a reference repeated within the file, A04
and R08). Both are small per case and large in sum, so each is kept in memory up to a threshold
and spilled to a temporary file beyond it: a file of ordinary size never touches the disk, and a
huge one costs a few megabytes whatever its size. Temporary files are unlinked at once (nothing
to clean up after a crash).
"""

from __future__ import annotations

import pickle
import sqlite3
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, TypeVar

from gateway.domain.findings import Finding, Severity
from gateway.domain.judging import CaseOutcome, CaseStatus

#: Outcomes kept in memory before they go to disk in chunks (about 0.5 KB each with findings).
OUTCOMES_IN_MEMORY = 10_000
#: References kept in a dict before the rest go to a temporary SQLite table.
KEYS_IN_MEMORY = 20_000

_V = TypeVar("_V")

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
    item assignment and ``setdefault``; keys are never removed."""

    def __init__(self, folder: Path | None = None, *, in_memory: int = KEYS_IN_MEMORY) -> None:
        super().__init__()
        self._folder = folder
        self._in_memory = in_memory
        self._db: sqlite3.Connection | None = None
        self._spilled = 0

    def _table(self) -> sqlite3.Connection:
        if self._db is None:
            # A file of our own, unlinked at once: SQLite keeps its own pages bounded (its cache).
            handle = tempfile.NamedTemporaryFile(dir=self._folder, suffix=".keys", delete=False)  # noqa: SIM115
            handle.close()
            self._db = sqlite3.connect(handle.name, isolation_level=None)
            Path(handle.name).unlink()
            self._db.execute("PRAGMA journal_mode = OFF")
            self._db.execute("PRAGMA synchronous = OFF")
            self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, value) WITHOUT ROWID")
        return self._db

    def _lookup(self, key: str) -> tuple[bool, Any]:
        if dict.__contains__(self, key):
            return True, dict.__getitem__(self, key)
        if self._spilled:
            row = self._table().execute("SELECT value FROM seen WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return True, row[0]
        return False, None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._lookup(key)[0]

    def __getitem__(self, key: str) -> _V:
        found, value = self._lookup(key)
        if not found:
            raise KeyError(key)
        return value  # type: ignore[no-any-return]

    def get(self, key: str, default: Any = None) -> Any:
        found, value = self._lookup(key)
        return value if found else default

    def __setitem__(self, key: str, value: _V) -> None:
        if dict.__contains__(self, key) or dict.__len__(self) < self._in_memory:
            dict.__setitem__(self, key, value)
            return
        self._table().execute("INSERT OR REPLACE INTO seen (key, value) VALUES (?, ?)", (key, value))
        self._spilled += 1

    def setdefault(self, key: str, default: Any = None) -> Any:
        found, value = self._lookup(key)
        if found:
            return value
        self[key] = default
        return default

    def __len__(self) -> int:
        return dict.__len__(self) + self._spilled

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
