"""The adapters over their file-system seam, without a disk or a server: the one polling source and
the one transport over the shipped MemoryFileSystem (as a folder source and as an SFTP source), and
SftpFileSystem's mapping of paramiko's errors over a small fake SFTP client. Milliseconds each;
tests/test_sftp.py runs the same code against a real sshd."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from paramiko import sftp as sftp_module
from paramiko.message import Message

from gateway.adapters.folder import FolderSource, FolderTransport, LocalFileSystem, not_taken_reason
from gateway.adapters.memory import MemoryFileSystem
from gateway.adapters.ports import Candidate, Delivery, Kind, RefusedError, UnreachableError
from gateway.adapters.sftp import (
    SFTP_WORDING,
    Endpoint,
    HostKeyError,
    SftpFileSystem,
    SftpSource,
    SftpTransport,
)
from gateway.errors import FileUnavailableError, PermanentDeliveryError, SourceError, TemporaryDeliveryError

STABLE = 5.0
ENDPOINT = Endpoint("sftp.example", 2222, "gateway", Path("id_ed25519"), Path("known_hosts"), "/in")
OUTBOX = Endpoint("sftp.example", 2222, "gateway", Path("id_ed25519"), Path("known_hosts"), "/out")
SFTP_LOG = "gateway.adapters.sftp"


class Clock:
    """The gateway's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fs() -> MemoryFileSystem:
    memory = MemoryFileSystem()
    memory.make("/in", Kind.FOLDER)
    return memory


@pytest.fixture
def server() -> MemoryFileSystem:
    """A memory file system standing in for an SFTP server (its words, its logger)."""
    memory = MemoryFileSystem(wording=SFTP_WORDING, log=logging.getLogger(SFTP_LOG))
    memory.make("/in", Kind.FOLDER)
    return memory


def folder_source(fs: MemoryFileSystem, clock: Clock, **options: Any) -> FolderSource:
    return FolderSource(name="erp", folder=Path("/in"), stable_seconds=STABLE, clock=clock, fs=fs, **options)


def sftp_source(fs: Any, clock: Clock, **options: Any) -> SftpSource:
    options.setdefault("poll_seconds", 0.0)
    return SftpSource(
        name="erp-sftp", endpoint=ENDPOINT, stable_seconds=STABLE, clock=clock, fs=fs, **options
    )


def settled(source: FolderSource | SftpSource, clock: Clock) -> list[Candidate]:
    """What the source offers once what it lists now has stood still for stable_seconds."""
    source.scan()
    clock.advance(STABLE)
    return source.scan()


def names(candidates: list[Candidate]) -> list[str]:
    return [candidate.name for candidate in candidates]


def aside(name: str) -> str:
    """Where a source renames a file it is removing, before it compares it with the file taken."""
    return (
        f"/in/.gateway-taking-{hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()[:16]}.tmp"
    )


# -- which files are offered, and when -----------------------------------------------------------


def test_a_file_is_offered_once_its_size_and_mtime_stood_still_for_stable_seconds_on_our_clock(
    fs: MemoryFileSystem, clock: Clock
) -> None:
    source = folder_source(fs, clock)
    fs.write("/in/a.xml", b"<Arende", mtime_ns=1)  # an old mtime, as a copy keeps its original's
    assert source.scan() == []  # first sight
    clock.advance(STABLE - 0.5)
    assert source.scan() == []
    fs.write("/in/a.xml", b"<Arendefil/>", mtime_ns=1)  # still growing: the wait starts again
    clock.advance(0.25)
    assert source.scan() == []
    clock.advance(STABLE - 0.5)
    assert source.scan() == []
    clock.advance(0.5)
    (candidate,) = source.scan()
    assert (candidate.source, candidate.name, candidate.location, candidate.size) == (
        "erp",
        "a.xml",
        "/in/a.xml",
        len(b"<Arendefil/>"),
    )


def test_next_stable_in_says_when_a_waiting_file_could_be_offered_and_a_hold_defers_it(
    fs: MemoryFileSystem, clock: Clock
) -> None:
    source = folder_source(fs, clock)
    assert source.next_stable_in() is None
    fs.write("/in/a.xml", b"<a/>")
    source.scan()
    clock.advance(2.0)
    assert source.next_stable_in() == pytest.approx(STABLE - 2.0)
    clock.advance(STABLE - 2.0)
    (candidate,) = source.scan()
    source.hold(candidate, 60.0)  # could not be taken now: not offered again in a hot loop
    assert source.scan() == []
    assert source.next_stable_in() == pytest.approx(60.0)
    clock.advance(60.0)
    assert names(source.scan()) == ["a.xml"]


def test_temporary_and_hidden_names_are_never_taken_and_a_producers_temporary_counts_as_being_written(
    fs: MemoryFileSystem, clock: Clock
) -> None:
    source = folder_source(fs, clock)
    for name in ("a.xml.part", "b.xml.tmp", ".c.xml", ".gitkeep", "d.xml"):
        fs.write(f"/in/{name}", b"<x/>")
    assert names(settled(source, clock)) == ["d.xml"]
    assert source.being_written == 3  # .gitkeep is hidden, but no rename into place is coming


def test_files_matching_the_pattern_are_offered_oldest_first_at_most_max_per_scan(
    fs: MemoryFileSystem, clock: Clock
) -> None:
    source = folder_source(fs, clock, pattern="*.xml", max_per_scan=2)
    fs.write("/in/new.xml", mtime_ns=3_000)
    fs.write("/in/old.xml", mtime_ns=1_000)
    fs.write("/in/mid.xml", mtime_ns=2_000)
    fs.write("/in/notes.txt", mtime_ns=0)
    assert names(settled(source, clock)) == ["old.xml", "mid.xml"]


def test_with_a_done_marker_a_file_is_taken_once_its_marker_is_there_and_the_marker_goes_with_it(
    fs: MemoryFileSystem, clock: Clock
) -> None:
    source = folder_source(fs, clock, done_marker=".done")
    fs.write("/in/a.xml", b"<a/>")
    assert source.scan() == []
    clock.advance(3600.0)
    assert source.scan() == []  # however still it stands, it is not finished without its marker
    assert source.next_stable_in() is None  # nothing to wait for on the clock
    fs.write("/in/a.xml.done")
    (candidate,) = source.scan()  # at once: the marker says it is finished
    source.hold(candidate, 10.0)
    assert source.scan() == []
    clock.advance(10.0)
    (candidate,) = source.scan()
    source.finish(candidate, accepted=True)
    assert fs.names("/in") == []


def test_a_folder_a_link_or_a_fifo_named_like_a_case_file_is_reported_once_and_never_taken(
    fs: MemoryFileSystem, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    source = folder_source(fs, clock, pattern="*.xml")
    fs.make("/in/pipe.xml", Kind.PIPE)
    fs.make("/in/folder.xml", Kind.FOLDER)
    fs.make("/in/link.xml", Kind.LINK)
    fs.make("/in/pipe-not-matching", Kind.PIPE)
    with caplog.at_level(logging.WARNING, logger="gateway.adapters.memory"):
        assert settled(source, clock) == []
        source.scan()
    assert sorted(record.getMessage() for record in caplog.records) == [
        "source erp: folder.xml is a folder and is not taken; move it away",
        "source erp: link.xml is a symbolic link (never followed) and is not taken; move it away",
        "source erp: pipe.xml is a named pipe (FIFO) and is not taken; move it away",
    ]


def test_a_name_that_is_not_utf8_is_offered_escaped_for_f01_and_never_hides_the_others(
    fs: MemoryFileSystem, clock: Clock
) -> None:
    source = folder_source(fs, clock)
    latin1 = "export-\udce5\udce4\udcf6.xml"  # Latin-1 åäö, kept as os.fsdecode keeps them
    fs.write(f"/in/{latin1}", b"<odd/>", mtime_ns=1)
    fs.write("/in/good.xml", b"<good/>", mtime_ns=2)
    odd, good = settled(source, clock)
    assert (odd.name, odd.name_is_valid, good.name, good.name_is_valid) == (
        "export-\\xe5\\xe4\\xf6.xml",
        False,
        "good.xml",
        True,
    )
    assert odd.location == f"/in/{latin1}"  # the source reaches it by its own bytes
    with source.open(odd) as stream:
        assert stream.read() == b"<odd/>"
    source.finish(odd, accepted=False)
    assert fs.names("/in") == ["good.xml"]


# -- reading a file ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "cause", "message"),
    [
        (
            FileNotFoundError(errno.ENOENT, "No such file or directory"),
            "vanished",
            "a.xml vanished before it was read",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied"),
            "unreadable",
            "a.xml may not be read by the gateway's user (Permission denied): give the gateway read access "
            "(e.g. the inbox's group)",
        ),
        (
            OSError(errno.ELOOP, "Too many levels of symbolic links"),
            "link",
            "a.xml became a symbolic link: not followed",
        ),
        (OSError(errno.EIO, "Input/output error"), "read-error", "a.xml cannot be read: Input/output error"),
    ],
)
def test_a_file_that_cannot_be_opened_waits_with_its_cause_and_the_source_is_fine(
    fs: MemoryFileSystem, clock: Clock, error: OSError, cause: str, message: str
) -> None:
    source = folder_source(fs, clock)
    fs.write("/in/a.xml", b"<a/>")
    (candidate,) = settled(source, clock)
    fs.fail("open", error, path="/in/a.xml")
    with pytest.raises(FileUnavailableError) as raised, source.open(candidate):
        pass
    assert (raised.value.cause, str(raised.value)) == (cause, message)


def test_a_read_error_midway_is_the_files_and_a_new_version_is_not_read_as_the_one_listed(
    fs: MemoryFileSystem, clock: Clock
) -> None:
    source = folder_source(fs, clock)
    fs.write("/in/a.xml", b"<a/>")
    (candidate,) = settled(source, clock)
    fs.fail("read", OSError(errno.EIO, "Input/output error"))
    with (
        pytest.raises(FileUnavailableError, match="cannot be read: Input/output error"),
        source.open(candidate) as stream,
    ):
        stream.read()
    fs.write("/in/a.xml", b"<the producer's next version/>")
    with (
        pytest.raises(FileUnavailableError, match=r"^a\.xml changed after it was listed$") as raised,
        source.open(candidate),
    ):
        pass
    assert raised.value.cause == "changed"


def test_unchanged_tells_the_file_taken_from_a_new_version_or_from_none(
    fs: MemoryFileSystem, clock: Clock
) -> None:
    source = folder_source(fs, clock)
    fs.write("/in/a.xml", b"<a/>")
    (candidate,) = settled(source, clock)
    assert source.unchanged(candidate)
    fs.write("/in/a.xml", b"<a version='2'/>")
    assert not source.unchanged(candidate)
    fs.remove("/in/a.xml")
    assert not source.unchanged(candidate)


def test_a_folder_that_cannot_be_listed_is_a_source_error_naming_it_and_is_listed_again_next_scan(
    fs: MemoryFileSystem, clock: Clock
) -> None:
    source = folder_source(fs, clock)
    fs.write("/in/a.xml", b"<a/>")
    fs.fail("list", PermissionError(errno.EACCES, "Permission denied"))
    with pytest.raises(SourceError, match=r"^memory:/in: cannot list the folder: Permission denied$"):
        source.scan()
    assert names(settled(source, clock)) == ["a.xml"]  # a local folder: no reconnect wait


# -- tidying a file away after its receipt -------------------------------------------------------


def test_finish_removes_the_file_that_was_taken_and_leaves_nothing_aside(
    fs: MemoryFileSystem, clock: Clock
) -> None:
    source = folder_source(fs, clock)
    fs.write("/in/a.xml", b"<a/>")
    fs.write("/in/b.xml", b"<b/>")
    first, _ = settled(source, clock)
    source.finish(first, accepted=False)
    assert fs.names("/in") == ["b.xml"]


def test_a_new_version_written_after_the_file_was_taken_is_given_its_name_back_not_removed(
    fs: MemoryFileSystem, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    source = folder_source(fs, clock)
    fs.write("/in/a.xml", b"<first/>")
    (candidate,) = settled(source, clock)
    fs.write("/in/a.xml", b"<second version/>")
    with caplog.at_level(logging.INFO, logger="gateway.adapters.memory"):
        source.finish(candidate, accepted=True)
    assert fs.names("/in") == ["a.xml"] and fs.read("/in/a.xml") == b"<second version/>"
    assert caplog.messages == [
        "source erp: a.xml was replaced by a new version after it was taken; the new one is taken on its own"
    ]
    (again,) = settled(source, clock)  # the new version's own turn
    assert again.size == len(b"<second version/>")


def test_a_version_given_its_name_back_never_replaces_one_that_took_the_name_meanwhile(
    fs: MemoryFileSystem, clock: Clock
) -> None:
    source = folder_source(fs, clock)
    fs.write("/in/a.xml", b"<v1/>")
    (candidate,) = settled(source, clock)
    fs.write("/in/a.xml", b"<v2 written before the tidying/>")
    # v2 is renamed aside, found not to be v1, and is about to get its name back: v3 arrives.
    fs.before("rename", lambda: fs.write("/in/a.xml", b"<v3/>"), path=aside("a.xml"))
    source.finish(candidate, accepted=True)
    assert fs.names("/in") == ["a.1.xml", "a.xml"]
    assert (fs.read("/in/a.xml"), fs.read("/in/a.1.xml")) == (b"<v3/>", b"<v2 written before the tidying/>")


def test_a_tidying_cut_short_after_the_rename_aside_is_finished_next_time(
    fs: MemoryFileSystem, clock: Clock
) -> None:
    source = folder_source(fs, clock)
    fs.write("/in/a.xml", b"<a/>")
    (candidate,) = settled(source, clock)
    fs.fail("remove", OSError(errno.EIO, "Input/output error"))
    with pytest.raises(
        SourceError, match=r"^memory:/in: cannot remove a.xml after its receipt: Input/output error$"
    ):
        source.finish(candidate, accepted=True)
    assert fs.names("/in") == [aside("a.xml").removeprefix("/in/")]  # hidden: never offered
    assert settled(source, clock) == []
    source.finish(candidate, accepted=True)  # the service tries publishing again
    assert fs.names("/in") == []


# -- an SFTP source, over memory -----------------------------------------------------------------


def test_after_move_a_file_goes_into_processed_or_rejected_never_over_an_earlier_one(
    server: MemoryFileSystem, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    source = sftp_source(server, clock)
    server.write("/in/good.xml", b"<good/>", mtime_ns=1)
    server.write("/in/bad.xml", b"<bad/>", mtime_ns=2)
    server.write("/in/processed/good.xml", b"<received last week/>")
    with caplog.at_level(logging.WARNING, logger=SFTP_LOG):
        good, bad = settled(source, clock)
        source.finish(good, accepted=True)
        source.finish(bad, accepted=False)
        assert settled(source, clock) == []
    assert caplog.messages == []  # its own processed/ and rejected/ are no news
    assert server.names("/in") == ["processed", "rejected"]
    assert server.names("/in/rejected") == ["bad.xml"]
    earlier, later = server.names("/in/processed")[::-1]
    assert server.read("/in/processed/good.xml") == b"<received last week/>"
    assert re.fullmatch(r"\d+-good\.xml", later) and server.read(f"/in/processed/{later}") == b"<good/>"
    assert earlier == "good.xml"


def test_after_delete_the_remote_file_is_removed(server: MemoryFileSystem, clock: Clock) -> None:
    source = sftp_source(server, clock, after="delete")
    server.write("/in/good.xml", b"<good/>")
    (candidate,) = settled(source, clock)
    source.finish(candidate, accepted=True)
    assert server.names("/in") == []


def test_a_file_uploaded_again_after_it_was_taken_is_left_for_its_own_turn(
    server: MemoryFileSystem, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    source = sftp_source(server, clock)
    server.write("/in/a.xml", b"<a/>", mtime_ns=1_000_000_000)
    (candidate,) = settled(source, clock)
    server.write("/in/a.xml", b"<a/>", mtime_ns=2_000_000_000)  # the same bytes, a new upload
    with caplog.at_level(logging.INFO, logger=SFTP_LOG):
        source.finish(candidate, accepted=True)
    assert caplog.messages == [
        "source erp-sftp: a.xml was uploaded again after it was taken: left for its own turn"
    ]
    assert server.names("/in") == ["a.xml", "processed"] and server.names("/in/processed") == []


def test_a_lost_connection_is_closed_and_the_folder_is_listed_again_after_a_growing_wait(
    server: MemoryFileSystem, clock: Clock
) -> None:
    source = sftp_source(server, clock)
    server.write("/in/a.xml", b"<a/>")
    server.fail("list", UnreachableError("Connection reset by peer"), times=2)
    with pytest.raises(SourceError, match=r"^memory:/in: Connection reset by peer \(next try in 2 s\)$"):
        source.scan()
    assert source.last_error is not None and source.last_error.endswith(" Connection reset by peer")
    assert source.scan() == []  # not listed before its time: the second fault is still armed
    clock.advance(2.5)  # 2 s, give or take its jitter
    with pytest.raises(SourceError, match=r"\(next try in [345] s\)$"):
        source.scan()
    clock.advance(5.0)
    assert names(settled(source, clock)) == ["a.xml"]
    assert server.sessions == 3  # each failure closed its connection: the next try was a new one


def test_one_connection_serves_a_batch_and_end_batch_closes_it(
    server: MemoryFileSystem, clock: Clock
) -> None:
    source = sftp_source(server, clock)
    server.write("/in/a.xml", b"<a/>")
    server.write("/in/b.xml", b"<b/>")
    source.scan()
    source.end_batch()
    clock.advance(STABLE)
    for candidate in source.scan():
        with source.open(candidate) as stream:
            stream.read()
        source.finish(candidate, accepted=True)
    assert server.sessions == 2
    source.end_batch()
    source.scan()
    assert server.sessions == 3


def test_an_sftp_source_lists_its_folder_at_most_every_poll_seconds(
    server: MemoryFileSystem, clock: Clock
) -> None:
    source = sftp_source(server, clock, poll_seconds=30.0)
    server.write("/in/a.xml", b"<a/>")
    assert source.scan() == []  # first sight
    clock.advance(STABLE)
    assert source.scan() == []  # not listed again yet
    assert source.next_stable_in() == pytest.approx(30.0 - STABLE)
    clock.advance(30.0 - STABLE)
    assert names(source.scan()) == ["a.xml"]


def test_on_sftp_a_failure_to_read_a_file_is_the_connections_and_a_vanished_file_the_files(
    server: MemoryFileSystem, clock: Clock
) -> None:
    source = sftp_source(server, clock)
    server.write("/in/a.xml", b"<a/>")
    (candidate,) = settled(source, clock)
    server.fail("read", UnreachableError("Server connection dropped"))
    with (
        pytest.raises(SourceError, match=r"Server connection dropped \(next try in"),
        source.open(candidate) as stream,
    ):
        stream.read()
    server.fail("open", FileNotFoundError(errno.ENOENT, "No such file"))
    with (
        pytest.raises(FileUnavailableError, match=r"^a\.xml vanished from the server$"),
        source.open(candidate),
    ):
        pass
    server.fail("rename", UnreachableError("Socket is closed"))
    with pytest.raises(SourceError, match="Socket is closed"):
        source.finish(candidate, accepted=True)
    assert server.names("/in") == ["a.xml", "processed"]  # stays, tidied when it is listed again


# -- the one transport ---------------------------------------------------------------------------


@pytest.fixture
def journal(tmp_path: Path) -> tuple[Path, str, int]:
    path = tmp_path / "lst-exempel-000001.xml"
    path.write_bytes(b"<Arendejournal>" + b"<Arende/>" * 100 + b"</Arendejournal>")
    return path, hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size


def test_a_journal_is_delivered_owner_only_into_a_folder_made_for_it_and_a_retry_finds_it_there(
    journal: tuple[Path, str, int],
) -> None:
    local, sha256, size = journal
    fs = MemoryFileSystem()
    transport = FolderTransport(Path("/out"), fs=fs)
    delivery = transport.deliver(local.name, local, sha256=sha256, size=size)
    assert delivery == Delivery(local.name, size, sha256, f"memory:/out/{local.name}")
    assert fs.read(f"/out/{local.name}") == local.read_bytes() and fs.mode(f"/out/{local.name}") == 0o600
    fs.fail("write", OSError(errno.EIO, "must not be written a second time"), times=None)
    assert transport.deliver(local.name, local, sha256=sha256, size=size) == delivery


@pytest.mark.parametrize("same_size", [False, True])
def test_another_file_under_the_journals_name_is_never_overwritten(
    journal: tuple[Path, str, int], same_size: bool
) -> None:
    local, sha256, size = journal
    other = bytes(byte ^ 1 for byte in local.read_bytes()) if same_size else b"someone else's file"
    fs = MemoryFileSystem()
    fs.write(f"/out/{local.name}", other)
    with pytest.raises(
        PermanentDeliveryError,
        match=f"^memory:/out/{local.name} already exists with other content: the journal is not overwritten$",
    ):
        FolderTransport(Path("/out"), fs=fs).deliver(local.name, local, sha256=sha256, size=size)
    assert fs.read(f"/out/{local.name}") == other


def test_on_sftp_another_file_under_the_journals_name_is_named_with_both_sizes(
    journal: tuple[Path, str, int],
) -> None:
    local, sha256, size = journal
    fs = MemoryFileSystem(wording=SFTP_WORDING)
    fs.write(f"/out/{local.name}", b"someone else's")
    transport = SftpTransport(OUTBOX, fs=fs)
    with pytest.raises(
        PermanentDeliveryError,
        match=rf"^memory:/out/{local.name} exists with other content \(14 bytes, ours {size}\): not overwritten$",
    ):
        transport.deliver(local.name, local, sha256=sha256, size=size)
    assert transport.last_error is not None and "not overwritten" in transport.last_error


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "memory:/out/{name}: No space left on device"),
        (UnreachableError("Connection timed out"), "memory:/out/{name}: Connection timed out"),
    ],
)
def test_a_failed_write_is_a_temporary_error_and_the_next_try_delivers(
    journal: tuple[Path, str, int], error: BaseException, message: str
) -> None:
    local, sha256, size = journal
    fs = MemoryFileSystem()
    transport = FolderTransport(Path("/out"), fs=fs)
    fs.fail("write", error)
    with pytest.raises(TemporaryDeliveryError) as raised:
        transport.deliver(local.name, local, sha256=sha256, size=size)
    assert str(raised.value) == message.format(name=local.name)
    assert fs.names("/out") == []
    transport.deliver(local.name, local, sha256=sha256, size=size)
    assert fs.names("/out") == [local.name]


def test_a_file_that_arrives_short_is_a_temporary_error(journal: tuple[Path, str, int]) -> None:
    local, sha256, size = journal
    with pytest.raises(
        TemporaryDeliveryError, match=rf"^/out/{local.name}: {size} bytes after upload, expected {size + 1}$"
    ):
        FolderTransport(Path("/out"), fs=MemoryFileSystem()).deliver(
            local.name, local, sha256=sha256, size=size + 1
        )


def test_a_refused_login_fails_a_delivery_for_good_and_the_sftp_endpoint_reports_its_health(
    journal: tuple[Path, str, int],
) -> None:
    local, sha256, size = journal
    fs = MemoryFileSystem(wording=SFTP_WORDING)
    fs.make("/out", Kind.FOLDER)
    transport = SftpTransport(OUTBOX, fs=fs)
    fs.fail(
        "stat",
        RefusedError(
            "Authentication failed.", summary="sftp://gateway@sftp.example:2222/out: authentication failed"
        ),
    )
    with pytest.raises(
        PermanentDeliveryError, match=r"^sftp://gateway@sftp\.example:2222/out: authentication failed$"
    ):
        transport.deliver(local.name, local, sha256=sha256, size=size)
    assert (transport.last_success, transport.last_error) == (None, "Authentication failed.")
    transport.deliver(local.name, local, sha256=sha256, size=size)
    assert transport.last_success is not None


def test_a_folder_transport_reports_no_endpoint_health() -> None:
    # `status` lists the delivery as an endpoint only when its transport reports one (SFTP).
    assert not hasattr(FolderTransport(Path("/out"), fs=MemoryFileSystem()), "last_success")


# -- the local file system -----------------------------------------------------------------------


def test_the_local_file_system_never_follows_a_link_and_tells_entries_apart(tmp_path: Path) -> None:
    local = LocalFileSystem()
    (tmp_path / "case.xml").write_bytes(b"<a/>")
    (tmp_path / "link.xml").symlink_to(tmp_path / "case.xml")
    os.mkfifo(tmp_path / "pipe.xml")
    (tmp_path / "folder.xml").mkdir()
    kinds = {entry.name: entry.kind for entry in local.list(str(tmp_path))}
    assert kinds == {
        "case.xml": Kind.FILE,
        "link.xml": Kind.LINK,
        "pipe.xml": Kind.PIPE,
        "folder.xml": Kind.FOLDER,
    }
    with pytest.raises(OSError) as raised, local.open(str(tmp_path / "link.xml")):
        pass
    assert raised.value.errno == errno.ELOOP
    with local.open(str(tmp_path / "case.xml")) as opened:
        assert opened.read() == b"<a/>"
        assert opened.entry == local.stat(str(tmp_path / "case.xml"))
    with os.scandir(tmp_path) as entries:  # what `status` says of them
        reasons = {entry.name: not_taken_reason(entry) for entry in entries}
    assert reasons["case.xml"] is None and reasons["pipe.xml"] == "a named pipe (FIFO)"


def test_a_journal_written_locally_is_owner_only_and_never_written_over(tmp_path: Path) -> None:
    local = LocalFileSystem()
    target = tmp_path / "out" / "j.xml"
    with (tmp_path / "j.xml").open("wb") as out:
        out.write(b"<j/>")
    FolderTransport(tmp_path / "out").deliver(
        "j.xml", tmp_path / "j.xml", sha256=hashlib.sha256(b"<j/>").hexdigest(), size=4
    )
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_bytes() == b"<j/>"
    with pytest.raises(FileExistsError), (tmp_path / "j.xml").open("rb") as again:
        local.write_new(str(target), again, mode=0o600)
    assert [p.name for p in target.parent.iterdir()] == ["j.xml"]  # no temporary left behind


# -- SftpFileSystem over a fake paramiko client --------------------------------------------------


def _attributes(mode: int, size: int = 0, mtime: int = 1_700_000_000) -> paramiko.SFTPAttributes:
    attributes = paramiko.SFTPAttributes()
    attributes.st_mode, attributes.st_size, attributes.st_mtime, attributes.st_atime = (
        mode,
        size,
        mtime,
        mtime,
    )
    attributes.st_uid = attributes.st_gid = 0
    return attributes


class FakeSftp:
    """The paramiko SFTPClient calls SftpFileSystem makes, over a dict of raw paths. ``raising``
    makes a call raise; ``listed_also`` is what a server lists besides the files (odd names)."""

    def __init__(self) -> None:
        self.files: dict[bytes, bytes] = {}
        self.folders: set[bytes] = {b"/in", b"/out"}
        self.listed_also: dict[bytes, paramiko.SFTPAttributes] = {}
        self.raising: dict[str, BaseException] = {}
        self.calls: list[tuple[Any, ...]] = []
        self._reading_folder: bytes | None = None

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name in self.raising:
            raise self.raising[name]

    def _request(self, kind: int, *args: Any) -> tuple[int, Message | None]:
        message = Message()
        if kind == sftp_module.CMD_OPENDIR:
            self._call("opendir", args[0])
            self._reading_folder = args[0]
            message.add_string(b"handle")
        elif kind == sftp_module.CMD_READDIR:
            if self._reading_folder is None:
                raise EOFError("end of the listing")
            folder, self._reading_folder = self._reading_folder, None
            listed = {
                p.rpartition(b"/")[2]: _attributes(stat.S_IFREG | 0o644, len(c))
                for p, c in self.files.items()
                if p.rpartition(b"/")[0] == folder
            }
            listed.update(self.listed_also)
            message.add_int(len(listed) + 2)
            for raw, attributes in [
                (b".", _attributes(stat.S_IFDIR)),
                (b"..", _attributes(stat.S_IFDIR)),
                *listed.items(),
            ]:
                message.add_string(raw)
                message.add_string(b"-rw-r--r-- 1 erp erp ...")
                attributes._pack(message)
        else:
            return sftp_module.CMD_STATUS, None
        message.rewind()
        return (sftp_module.CMD_HANDLE if kind == sftp_module.CMD_OPENDIR else sftp_module.CMD_NAME), message

    def stat(self, path: bytes) -> paramiko.SFTPAttributes:
        self._call("stat", path)
        if path in self.folders:
            return _attributes(stat.S_IFDIR | 0o700)
        if path not in self.files:
            raise OSError(errno.ENOENT, "No such file")  # as paramiko raises SFTP's "no such file"
        return _attributes(stat.S_IFREG | 0o644, len(self.files[path]))

    def open(self, path: bytes, mode: str) -> FakeRemoteFile:
        self._call("open", path, mode)
        return FakeRemoteFile(self, self.files[path])

    def posix_rename(self, source: bytes, target: bytes) -> None:
        self._call("posix_rename", source, target)
        self.files[target] = self.files.pop(source)

    def rename(self, source: bytes, target: bytes) -> None:
        self._call("rename", source, target)
        self.files[target] = self.files.pop(source)

    def remove(self, path: bytes) -> None:
        self._call("remove", path)
        del self.files[path]

    def mkdir(self, path: bytes, mode: int) -> None:
        self._call("mkdir", path)
        if path in self.folders:
            raise OSError("Failure")  # what OpenSSH says of a folder that is there
        self.folders.add(path)

    def putfo(self, content: Any, path: bytes, confirm: bool = True) -> None:
        self._call("putfo", path)
        self.files[path] = content.read()


class FakeRemoteFile:
    def __init__(self, fake: FakeSftp, content: bytes) -> None:
        self._fake = fake
        self._content = content

    def __enter__(self) -> FakeRemoteFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fake.calls.append(("close",))

    def prefetch(self, size: int) -> None:
        self._fake._call("prefetch", size)

    def read(self, size: int | None) -> bytes:
        self._fake._call("read", size)
        content, self._content = self._content, b""
        return content


def connecting_to(fake: FakeSftp) -> Callable[[Endpoint], contextlib.AbstractContextManager[Any]]:
    @contextlib.contextmanager
    def connect(endpoint: Endpoint) -> Iterator[FakeSftp]:
        fake.calls.append(("connect", endpoint.host))
        try:
            yield fake
        finally:
            fake.calls.append(("disconnect",))

    return connect


def refusing(error: BaseException) -> Callable[[Endpoint], contextlib.AbstractContextManager[Any]]:
    def connect(endpoint: Endpoint) -> contextlib.AbstractContextManager[Any]:
        raise error

    return connect


def test_the_sftp_listing_keeps_names_that_are_not_utf8_and_never_takes_a_name_holding_a_slash(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeSftp()
    fake.files[b"/in/export-\xe5\xe4\xf6.xml"] = b"<latin-1 name/>"
    fake.files[b"/in/good.xml"] = b"<good/>"
    fake.listed_also[b"incoming/evil.xml"] = _attributes(stat.S_IFREG | 0o644, 5)
    fake.listed_also[b"processed"] = _attributes(stat.S_IFDIR | 0o700)
    source = sftp_source(SftpFileSystem(ENDPOINT, connect=connecting_to(fake)), clock)
    with caplog.at_level(logging.WARNING, logger=SFTP_LOG):
        odd, good = sorted(settled(source, clock), key=lambda candidate: candidate.name)
        source.scan()
    assert caplog.messages == [
        "source erp-sftp: the server lists a name that is not a plain file name (incoming/evil.xml): not taken"
    ]
    assert (odd.name, odd.name_is_valid, good.name) == ("export-\\xe5\\xe4\\xf6.xml", False, "good.xml")
    with source.open(odd) as stream:
        assert stream.read() == b"<latin-1 name/>"
    source.finish(odd, accepted=False)
    assert b"/in/rejected/export-\xe5\xe4\xf6.xml" in fake.files  # moved under the server's own bytes
    assert ("prefetch", len(b"<latin-1 name/>")) in fake.calls


def test_on_sftp_only_no_such_file_is_about_the_entry_any_other_failure_is_the_sessions(clock: Clock) -> None:
    fake = FakeSftp()
    fake.files[b"/in/a.xml"] = b"<a/>"
    source = sftp_source(SftpFileSystem(ENDPOINT, connect=connecting_to(fake)), clock)
    (candidate,) = settled(source, clock)
    fake.raising["stat"] = OSError("Failure")
    with pytest.raises(
        SourceError, match=r"^sftp://gateway@sftp\.example:2222/in: Failure \(next try in 2 s\)$"
    ):
        source.unchanged(candidate)
    assert fake.calls[-1] == ("disconnect",)  # the connection is closed, the next call opens one
    fake.raising["stat"] = OSError(errno.ENOENT, "No such file")
    assert not source.unchanged(candidate)
    fake.raising["stat"] = PermissionError(errno.EACCES, "Permission denied")
    with (
        pytest.raises(FileUnavailableError, match=r"^a\.xml may not be read by the gateway's SFTP user$"),
        source.open(candidate),
    ):
        pass
    del fake.raising["stat"]
    fake.raising["read"] = paramiko.SSHException("Server connection dropped")
    with pytest.raises(SourceError, match="Server connection dropped"), source.open(candidate) as stream:
        stream.read()
    fake.raising["opendir"] = OSError(errno.ENOENT, "No such file")  # the remote folder is gone
    clock.advance(600.0)
    with pytest.raises(SourceError, match=r"No such file \(next try in"):
        source.scan()


@pytest.mark.parametrize(
    ("error", "delivery", "message", "last_error"),
    [
        (
            HostKeyError("sftp://gateway@sftp.example:2222/out: the server's host key has CHANGED: refused"),
            PermanentDeliveryError,
            "sftp://gateway@sftp.example:2222/out: the server's host key has CHANGED: refused",
            "sftp://gateway@sftp.example:2222/out: the server's host key has CHANGED: refused",
        ),
        (
            paramiko.AuthenticationException("Authentication failed."),
            PermanentDeliveryError,
            "sftp://gateway@sftp.example:2222/out: authentication failed",
            "Authentication failed.",
        ),
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
            TemporaryDeliveryError,
            "sftp://gateway@sftp.example:2222/out: [Errno 111] Connection refused",
            "[Errno 111] Connection refused",
        ),
        (
            TimeoutError("timed out"),
            TemporaryDeliveryError,
            "sftp://gateway@sftp.example:2222/out: timed out",
            "timed out",
        ),
    ],
)
def test_a_connection_that_fails_is_mapped_to_a_temporary_or_permanent_delivery_error(
    journal: tuple[Path, str, int],
    error: BaseException,
    delivery: type[Exception],
    message: str,
    last_error: str,
) -> None:
    local, sha256, size = journal
    transport = SftpTransport(OUTBOX, fs=SftpFileSystem(OUTBOX, connect=refusing(error)))
    with pytest.raises(delivery) as raised:
        transport.deliver(local.name, local, sha256=sha256, size=size)
    assert (str(raised.value), transport.last_error) == (message, last_error)


def test_a_connection_refused_for_good_is_refused_error_to_a_source_and_retried_with_backoff(
    clock: Clock,
) -> None:
    fs = SftpFileSystem(
        ENDPOINT, connect=refusing(HostKeyError("sftp://...: the server's host key is not in known_hosts"))
    )
    with pytest.raises(RefusedError):
        fs.list("/in")
    with pytest.raises(SourceError, match=r"not in known_hosts \(next try in 2 s\)$"):
        sftp_source(fs, clock).scan()


def test_an_sftp_delivery_is_uploaded_under_a_part_name_renamed_into_place_and_found_on_a_retry(
    journal: tuple[Path, str, int],
) -> None:
    local, sha256, size = journal
    fake = FakeSftp()
    fake.raising["posix_rename"] = OSError("Operation unsupported")  # a server without the extension
    transport = SftpTransport(OUTBOX, fs=SftpFileSystem(OUTBOX, connect=connecting_to(fake)))
    delivery = transport.deliver(local.name, local, sha256=sha256, size=size)
    assert delivery.destination == f"sftp://gateway@sftp.example:2222/out/{local.name}"
    target, part = f"/out/{local.name}".encode(), f"/out/.{local.name}.part".encode()
    assert ("putfo", part) in fake.calls and ("rename", part, target) in fake.calls
    assert fake.files == {target: local.read_bytes()} and fake.calls[-1] == ("disconnect",)
    fake.calls.clear()
    assert transport.deliver(local.name, local, sha256=sha256, size=size) == delivery
    assert not [call for call in fake.calls if call[0] in ("putfo", "rename", "posix_rename")]
    assert ("prefetch", size) in fake.calls  # its bytes compared, read ahead


def test_on_sftp_a_folder_that_is_there_already_is_no_failure_and_a_name_is_never_renamed_over(
    clock: Clock,
) -> None:
    fake = FakeSftp()
    fake.folders.add(b"/in/processed")
    fake.files[b"/in/a.xml"] = b"<a/>"
    fake.files[b"/in/b.xml"] = b"<b/>"
    fs = SftpFileSystem(ENDPOINT, connect=connecting_to(fake))
    fs.mkdir("/in/processed")
    with pytest.raises(FileExistsError):
        fs.rename_new("/in/a.xml", "/in/b.xml")
    assert fake.files[b"/in/b.xml"] == b"<b/>"
