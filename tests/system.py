"""What fault tests need from the machine itself: a small file system to fill or make read-only, a
second Unix user, a real ``sqlite3`` process holding the store's write lock, and a daemon that
runs without root's powers.

These need root (mount, useradd), as CI has. Outside CI, a test that needs them is skipped with
the reason; in CI (``$CI`` set) it never is: a missing power is then a failure.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

IS_ROOT = os.geteuid() == 0
IN_CI = bool(os.environ.get("CI"))

needs_root = pytest.mark.skipif(
    not IS_ROOT and not IN_CI,
    reason="mounts a small tmpfs and creates Unix users: needs root (CI runs as root)",
)

#: A producer's account: an ERP's transfer user that writes into the gateway's inbox.
PRODUCER = "inkassotest-erp"
#: The inbox's group: the producer writes into a folder of this group, the gateway reads it.
INBOX_GROUP = "inkassotest-in"

#: Runs a command as root without any capability: uid 0 owns the gateway's own files, but a file
#: of another user is as closed to it as to any service user (no DAC override, no chmod of
#: someone else's file). So the daemon meets foreign files as it does on a real server, wherever
#: the repository (and its .venv) happens to live.
WITHOUT_ROOT_POWERS = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")


@contextlib.contextmanager
def tmpfs(path: Path, *, size_kb: int) -> Iterator[Path]:
    """A small file system mounted at ``path`` for the test (unmounted after it)."""
    path.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def remount(path: Path, *, read_only: bool) -> None:
    _run("mount", "-o", f"remount,{'ro' if read_only else 'rw'}", str(path))


def fill(folder: Path) -> Path:
    """Fill the file system under ``folder`` to the last byte; the filler is returned, to delete."""
    filler = folder / "filler.bin"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096, 512, 1):  # smaller writes take what the big ones left
            block = b"\0" * size
            while True:
                try:
                    os.write(descriptor, block)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(descriptor)
    return filler


def producer() -> pwd.struct_passwd:
    """The producer's Unix user, a member of the inbox group (created once)."""
    try:
        grp.getgrnam(INBOX_GROUP)
    except KeyError:
        _run("groupadd", "--system", INBOX_GROUP)
    try:
        entry = pwd.getpwnam(PRODUCER)
    except KeyError:
        _run(
            "useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
            "--shell", "/usr/sbin/nologin", "--groups", INBOX_GROUP, PRODUCER,
        )  # fmt: skip
        entry = pwd.getpwnam(PRODUCER)
    return entry


def as_producer(*command: str, cwd: Path | None = None) -> None:
    """Run a shell command as the producer (umask 022, as most transfer agents write)."""
    producer()
    _run("runuser", "-u", PRODUCER, "--", "sh", "-c", f"umask 022; {' '.join(command)}")


def shared_folder() -> Path:
    """A folder under /tmp that other users can pass through (pytest's tmp_path is root's own)."""
    folder = Path(tempfile.mkdtemp(prefix="gw-faults-", dir="/tmp"))
    folder.chmod(0o755)
    return folder


def make_group_inbox(inbox: Path) -> None:
    """The inbox as a shared drop folder: the producer's group may write, setgid, nobody else."""
    inbox.mkdir(parents=True, exist_ok=True)
    os.chown(inbox, 0, grp.getgrnam(INBOX_GROUP).gr_gid)
    inbox.chmod(0o2770)


class StoreLock:
    """A real ``sqlite3`` process holding ``BEGIN EXCLUSIVE`` on a store until released."""

    def __init__(self, database: Path) -> None:
        sqlite3 = shutil.which("sqlite3")
        if sqlite3 is None:
            raise RuntimeError("the sqlite3 command is missing (make test installs Debian's sqlite3)")
        self._process = subprocess.Popen(
            [sqlite3, str(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self._process.stdin is not None
        self._process.stdin.write("PRAGMA busy_timeout = 30000;\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n")
        self._process.stdin.flush()
        assert self._process.stdout is not None
        deadline = time.monotonic() + 35
        while self._process.stdout.readline().strip() != "locked":
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("sqlite3 did not take the store's lock")

    def release(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.write("COMMIT;\n.quit\n")
            self._process.stdin.flush()
            self._process.wait(timeout=10)
