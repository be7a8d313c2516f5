"""The one polling source: finished files taken from a folder of any :class:`FileSystem`.

A file is taken only when it is finished: never under a temporary name (``.part``, ``.tmp``, a
leading dot); when a done-marker is configured, only once ``<name><marker>`` exists; otherwise once
its size and mtime have stayed the same for ``stable_seconds`` on the gateway's own monotonic clock
(a copy can carry an old mtime, and the producer's clock may be skewed). Files are offered oldest
first. After its receipt a file is tidied away (removed, or moved into ``processed/`` or
``rejected/``), but only while it is still the file that was taken: it is renamed first, in one
atomic step, and compared after; a new version under the same name gets its name back.

A name is never used as a local path here (the gateway stages by its own numbers); a name that
could reach outside the folder (holding ``/``) is never taken; a name that is not UTF-8 is offered
(answered F01 by the service) and never hides the others.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import posixpath
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import BinaryIO, Literal, cast

from gateway.adapters.ports import Candidate, FileSystem, Kind, Opened, UnreachableError
from gateway.backoff import Backoff
from gateway.errors import FileUnavailableError, SourceError
from gateway.fsutil import display_name, is_being_written, is_temporary_name, is_valid_text

PROCESSED_FOLDER = "processed"
REJECTED_FOLDER = "rejected"
#: While a producer is writing under a temporary name, a rename into place is coming: a source
#: that polls looks again this soon, not only after its poll interval.
RENAME_POLL_SECONDS = 1.0
#: A name no folder entry can have on a sane server: logged once, never taken.
_NOT_A_PLAIN_NAME = "not a plain file name"


class StabilityTracker:
    """Size and mtime unchanged for ``stable_seconds`` on the gateway's own clock since first sight.

    A copy may carry an old mtime and the producer's clock may be skewed, so only our monotonic
    clock decides how long a file has been still. A file the gateway could not take (it may not
    read it, say) is *held*: not offered again until its hold ends, so that it is neither retried
    in a hot loop nor forgotten.
    """

    def __init__(self, stable_seconds: float, clock: Callable[[], float]) -> None:
        self._stable_seconds = stable_seconds
        self._clock = clock
        self._seen: dict[str, tuple[int, int, float]] = {}  # name -> (size, mtime, since)
        self._held: dict[str, float] = {}  # name -> until (monotonic)

    def observe(self, present: dict[str, tuple[int, int]]) -> set[str]:
        """Record what a listing shows (name -> (size, mtime)); return the names that are stable."""
        now = self._clock()
        stable = set()
        for name, shape in present.items():
            seen = self._seen.get(name)
            if seen is None or seen[:2] != shape:
                self._seen[name] = (*shape, now)
                self._held.pop(name, None)  # a changed file gets a fresh chance
            elif now - seen[2] >= self._stable_seconds and self._held.get(name, 0.0) <= now:
                stable.add(name)
        for gone in set(self._seen) - set(present):
            del self._seen[gone]
            self._held.pop(gone, None)
        return stable

    def hold(self, name: str, seconds: float) -> None:
        self._held[name] = self._clock() + seconds

    def held(self, name: str) -> bool:
        return self._held.get(name, 0.0) > self._clock()

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)
        self._held.pop(name, None)

    def __len__(self) -> int:
        return len(self._seen)

    def next_stable_in(self) -> float | None:
        if not self._seen:
            return None
        now = self._clock()
        return max(
            0.0,
            min(
                max(since + self._stable_seconds, self._held.get(name, 0.0)) - now
                for name, (_, _, since) in self._seen.items()
            ),
        )


class PollingSource:
    """Lists finished files in one folder of a file system, oldest first.

    The medium's own ways are options, each named: ``poll_seconds`` (a remote folder is listed at
    most that often; 0 lists at every scan), ``reconnect`` (after a lost connection the next try
    waits, growing), ``after`` (``delete``: the file is removed; ``move``: into ``processed/`` or
    ``rejected/`` beside it), ``max_per_scan`` (a burst is worked through in slices) and
    ``report_odd_entries`` (a folder, a link or a FIFO named like a case file is logged once as
    not taken; off where such entries are expected, as the ``processed/`` folder on a server).
    """

    def __init__(
        self,
        *,
        name: str,
        fs: FileSystem,
        folder: str,
        stable_seconds: float,
        pattern: str = "*",
        done_marker: str | None = None,
        after: Literal["delete", "move"] = "delete",
        poll_seconds: float = 0.0,
        reconnect: Backoff | None = None,
        max_per_scan: int | None = None,
        report_odd_entries: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.fs = fs
        self._folder = folder
        self._pattern = pattern
        self._done_marker = done_marker
        self._after = after
        self._poll_seconds = poll_seconds
        self._reconnect = reconnect
        self._max_per_scan = max_per_scan
        self._report_odd_entries = report_odd_entries
        self._clock = clock
        self._stability = StabilityTracker(stable_seconds, clock)
        self._next_poll = 0.0
        self._failures = 0
        self._reported: dict[str, str] = {}  # entries never taken, told once each while they stay
        #: Files under a temporary name at the last scan: a producer is about to rename one.
        self.being_written = 0
        self.last_success: str | None = None
        self.last_error: str | None = None

    @property
    def where(self) -> str:
        """The folder as messages name it."""
        return self.fs.describe(self._folder)

    # -- listing -------------------------------------------------------------------------------

    def scan(self) -> list[Candidate]:
        now = self._clock()
        if now < self._next_poll:
            return []
        self._next_poll = now + self._poll_seconds
        try:
            entries = self.fs.list(self._folder)
        except UnreachableError as error:
            raise self._failed(error) from error
        except OSError as error:
            raise SourceError(f"{self.where}: cannot list the folder: {error.strerror or error}") from error
        marker = self._done_marker
        markers = {entry.name for entry in entries if marker and entry.name.endswith(marker)}
        ready: list[Candidate] = []
        present: dict[str, tuple[int, int]] = {}
        found: dict[str, Candidate] = {}
        odd: dict[str, str] = {}
        being_written = 0
        for entry in entries:
            name = entry.name
            if is_temporary_name(name):
                being_written += is_being_written(name)
                continue
            if marker and name.endswith(marker):
                continue
            if "/" in name or "\x00" in name:
                odd[name] = _NOT_A_PLAIN_NAME
                continue
            if not fnmatch.fnmatch(name, self._pattern):
                continue
            if entry.kind is not Kind.FILE:
                if self._report_odd_entries:
                    odd[name] = entry.kind.value
                continue
            candidate = Candidate(
                self.name,
                display_name(name),
                posixpath.join(self._folder, name),
                entry.size,
                entry.mtime_ns,
                entry.identity,
                name_is_valid=is_valid_text(name),
            )
            if marker:
                if name + marker in markers and not self._stability.held(name):
                    ready.append(candidate)
                continue
            present[name] = (entry.size, entry.mtime_ns)
            found[name] = candidate
        self.being_written = being_written
        self._report(odd)
        ready += [found[name] for name in self._stability.observe(present)]
        ready.sort(key=lambda candidate: (candidate.mtime_ns, candidate.name))
        if being_written:
            self._next_poll = min(self._next_poll, now + RENAME_POLL_SECONDS)
        self._failures = 0
        self.last_success = datetime.now(UTC).isoformat(timespec="seconds")
        return ready if self._max_per_scan is None else ready[: self._max_per_scan]

    def _report(self, odd: dict[str, str]) -> None:
        """One warning per entry that will never be taken (a FIFO, a folder, a link named x.xml)."""
        for name, what in odd.items():
            if self._reported.get(name) == what:
                continue
            if what == _NOT_A_PLAIN_NAME:
                self.fs.log.warning(
                    "source %s: the server lists a name that is not a plain file name (%s): not taken",
                    self.name,
                    display_name(name),
                )
            else:
                self.fs.log.warning(
                    "source %s: %s is %s and is not taken; move it away", self.name, display_name(name), what
                )
        self._reported = odd

    # -- one file ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def open(self, candidate: Candidate) -> Iterator[BinaryIO]:
        with contextlib.ExitStack() as stack:
            try:
                opened = stack.enter_context(self.fs.open(candidate.location))
            except UnreachableError as error:
                raise self._failed(error) from error
            except OSError as error:
                raise self._unavailable(candidate, error) from error
            if opened.entry.identity != candidate.identity:
                raise FileUnavailableError(
                    self.fs.wording.changed.format(name=candidate.name), cause="changed"
                )
            yield cast(BinaryIO, _Reading(opened, self, candidate))

    def unchanged(self, candidate: Candidate) -> bool:
        try:
            return self.fs.stat(candidate.location).identity == candidate.identity
        except FileNotFoundError:
            return False
        except UnreachableError as error:
            raise self._failed(error) from error

    def hold(self, candidate: Candidate, seconds: float) -> None:
        self._stability.hold(posixpath.basename(candidate.location), seconds)

    def finish(self, candidate: Candidate, *, accepted: bool) -> None:
        """Remove the file (or move it aside into processed/ or rejected/) and its done-marker,
        only if it is still the file taken.

        The file is first renamed (one atomic step) and only then compared with what was taken: a
        producer who puts a new version under the same name at that very moment gets it back,
        instead of losing it. Raises SourceError when the folder refuses or the server cannot be
        reached: the file stays, is recognised as received when it is listed again, and only
        tidied."""
        name = posixpath.basename(candidate.location)
        self._stability.forget(name)
        try:
            target = self._tidy_target(name, candidate, accepted=accepted)
            try:
                self.fs.rename(candidate.location, target)
            except FileNotFoundError:
                pass  # gone already (tidied before a crash cut the rest short)
            else:
                self._settle(target, candidate)
            if self._done_marker:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.remove(candidate.location + self._done_marker)
        except UnreachableError as error:
            raise self._failed(error) from error
        except OSError as error:
            raise SourceError(
                f"{self.where}: cannot remove {candidate.name} after its receipt: {error.strerror or error}"
            ) from error

    def _tidy_target(self, name: str, candidate: Candidate, *, accepted: bool) -> str:
        """Where the file is renamed to: aside in its folder (to be removed), or its new folder."""
        if self._after == "move":
            folder = posixpath.join(self._folder, PROCESSED_FOLDER if accepted else REJECTED_FOLDER)
            self.fs.mkdir(folder)
            target = posixpath.join(folder, name)
            try:
                self.fs.stat(target)
            except OSError:
                return target
            return posixpath.join(folder, f"{int(time.time())}-{name}")  # never over an earlier one
        # Named after the file, so that a crash between the two steps is finished next time.
        key = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        aside = posixpath.join(self._folder, f".gateway-taking-{key}.tmp")
        try:
            self.fs.stat(aside)
        except FileNotFoundError:
            return aside
        self._settle(aside, candidate)
        return aside

    def _settle(self, moved: str, candidate: Candidate) -> None:
        """Keep (or, after ``delete``, remove) the file renamed to ``moved`` if it is the one
        taken; else give it its name back."""
        try:
            if self.fs.stat(moved).identity == candidate.identity:
                if self._after == "delete":
                    self.fs.remove(moved)
                return
            self.fs.log.info(self.fs.wording.taken_again, self.name, candidate.name)
            self._put_back(moved, candidate.location)
        except FileNotFoundError:
            return  # gone meanwhile: nothing is left to settle

    def _put_back(self, moved: str, location: str) -> None:
        """Give a file renamed away its name again, never over a newer one that took the name."""
        path = PurePosixPath(location)
        for attempt in range(100):
            target = location if attempt == 0 else str(path.with_name(f"{path.stem}.{attempt}{path.suffix}"))
            try:
                self.fs.rename_new(moved, target)
            except FileExistsError:
                continue
            return
        raise FileExistsError(f"no free name for {location} beside it")

    # -- waiting and connections ---------------------------------------------------------------

    def waiting(self) -> int:
        """Files in the folder that are not finished yet or not yet taken."""
        return len(self._stability)

    def next_stable_in(self) -> float | None:
        """Seconds until the earliest unfinished file could be stable (and the folder is listed
        again); None when none waits."""
        if self._done_marker:
            return None
        waiting = self._stability.next_stable_in()
        return None if waiting is None else max(waiting, self._next_poll - self._clock(), 0.0)

    def end_batch(self) -> None:
        """A fresh connection serves one batch: a long-lived one dies silently behind firewalls."""
        self.fs.close()

    def _failed(self, error: UnreachableError) -> SourceError:
        """The connection failed: closed, and the next listing waits (growing with each failure)."""
        self.end_batch()
        self._failures += 1
        delay = self._reconnect.delay(self._failures) if self._reconnect is not None else 0.0
        self._next_poll = self._clock() + delay
        self.last_error = f"{datetime.now(UTC).isoformat(timespec='seconds')} {error}"
        return SourceError(f"{self.where}: {error} (next try in {delay:.0f} s)")

    def _unavailable(self, candidate: Candidate, error: OSError) -> FileUnavailableError:
        """This one file cannot be read now: it waits (the source is fine)."""
        wording = self.fs.wording
        if isinstance(error, FileNotFoundError):
            return FileUnavailableError(wording.vanished.format(name=candidate.name), cause="vanished")
        if isinstance(error, PermissionError):
            return FileUnavailableError(
                wording.unreadable.format(name=candidate.name, reason=error.strerror), cause="unreadable"
            )
        if error.errno == errno.ELOOP:
            return FileUnavailableError(
                f"{candidate.name} became a symbolic link: not followed", cause="link"
            )
        return FileUnavailableError(
            f"{candidate.name} cannot be read: {error.strerror or error}", cause="read-error"
        )


class _Reading:
    """A producer's file as the service reads it: a read error is that file's to wait out; a lost
    connection is the source's."""

    def __init__(self, opened: Opened, source: PollingSource, candidate: Candidate) -> None:
        self._opened = opened
        self._source = source
        self._candidate = candidate

    def read(self, size: int = -1) -> bytes:
        try:
            return self._opened.read(size)
        except UnreachableError as error:
            raise self._source._failed(error) from error
        except OSError as error:
            raise self._source._unavailable(self._candidate, error) from error
