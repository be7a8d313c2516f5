"""Writing files safely: atomic and exclusive, durable, bounded names, hashing. One of each act.

Every file the gateway writes for someone else to read (a receipt, an archived original, a sent
journal, a journal receipt, a report) is written under a temporary name in the same folder,
fsynced, and then *published* under its final name. Publishing is exclusive: it never replaces a
file that is already there (``os.link`` refuses an existing name). A clash raises
:class:`FileExistsError` for the caller to log; nothing is silently overwritten. After a crash the
final name is either absent or complete, never half written.

Names from outside (a producer's file name) are made safe before they become part of a path: only
letters, digits and ``._+-åäö`` are kept, and the name is cut to a number of UTF-8 *bytes* (a file
system counts bytes: 125 × "ö" is 250 of them).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

#: Bytes read or copied at a time.
CHUNK_BYTES = 1024 * 1024
#: The longest file name most file systems accept, in bytes.
NAME_MAX_BYTES = 255

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._+\-åäöÅÄÖ]")
#: errno values that mean "this file system cannot make hard links": publish falls back to a
#: checked rename there (the check and the rename are then two steps, not one).
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK, errno.EXDEV})


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    with path.open("rb") as handle:
        return sha256_stream(handle)[0]


def sha256_stream(handle: BinaryIO) -> tuple[str, int]:
    """The SHA-256 and size of what is left to read in ``handle``."""
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def fsync_folder(folder: Path) -> None:
    """Make a rename, link or unlink in ``folder`` durable."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# -- names -------------------------------------------------------------------------------------------


def display_name(name: str) -> str:
    """A file name as text that can be logged, stored and put in XML.

    Bytes that are not UTF-8 (Python keeps them as lone surrogates) become ``\\xff``, control
    characters (a newline would forge a log line) become ``\\n``, ``\\x1b`` and so on.

    >>> display_name("kund\\udcff.xml"), display_name("a\\nb.xml")
    ('kund\\\\xff.xml', 'a\\\\nb.xml')
    """
    if is_valid_text(name) and name.isprintable():
        return name
    out: list[str] = []
    for char in name:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's escape for a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif not char.isprintable() or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def is_valid_text(name: str) -> bool:
    """False for a name holding bytes that are not UTF-8 (or anything else UTF-8 cannot carry).

    >>> is_valid_text("kund-åäö.xml"), is_valid_text(os.fsdecode(b"kund\\xff.xml"))
    (True, False)
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` bytes of UTF-8, never inside a character.

    >>> truncate_utf8("åäö", 5), truncate_utf8("åäö", 6), truncate_utf8("abc", 0)
    ('åä', 'åäö', '')
    """
    encoded = text.encode("utf-8", "surrogateescape")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", "ignore")


def safe_file_name(name: str, *, max_bytes: int, fallback: str = "fil") -> str:
    """``name`` made safe to be part of a path: unsafe characters as ``_``, at most ``max_bytes``
    bytes of UTF-8, no leading dot (a hidden file is a temporary one to every tool here).

    >>> safe_file_name("../rapport 2026:1.xml", max_bytes=64)
    '_rapport_2026_1.xml'
    >>> len(safe_file_name("ö" * 125, max_bytes=180).encode())
    180
    """
    safe = _UNSAFE_NAME_CHARS.sub("_", name)
    return truncate_utf8(safe, max_bytes).lstrip(".") or fallback


# -- publishing without overwriting ------------------------------------------------------------------


#: Who writes a temporary file: this host and process, so that one left by a killed writer can be
#: told from one still being written (and removed at the next start).
_WRITER = f"{hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]}-{os.getpid()}"
_TEMPORARY = re.compile(r"^\.(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{16}\.tmp$")
#: A temporary file of another host's writer is left alone until it is this old.
STALE_ELSEWHERE_SECONDS = 24 * 3600.0


def temporary_name(target: Path) -> Path:
    """A fresh temporary name beside ``target``: hidden, ends in ``.tmp``, short enough for any
    name, and naming its writer (host and process) for :func:`remove_stale_temporaries`."""
    if not _WRITER.endswith(f"-{os.getpid()}"):  # forked since import
        return target.with_name(f".{_WRITER.split('-')[0]}-{os.getpid()}-{secrets.token_hex(8)}.tmp")
    return target.with_name(f".{_WRITER}-{secrets.token_hex(8)}.tmp")


def remove_stale_temporaries(folder: Path) -> int:
    """Remove the temporary files in ``folder`` whose writer is gone (a process of this host that
    no longer runs, or another host's older than a day). Returns how many went."""
    if not folder.is_dir():
        return 0
    host = _WRITER.split("-")[0]
    removed = 0
    for path in folder.iterdir():
        match = _TEMPORARY.match(path.name)
        if match is None:
            continue
        if match["host"] == host:
            stale = not _process_alive(int(match["pid"]))
        else:
            try:
                stale = time.time() - path.stat().st_mtime > STALE_ELSEWHERE_SECONDS
            except FileNotFoundError:
                continue
        if stale:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def publish(temporary: Path, target: Path) -> None:
    """Give the finished file ``temporary`` the name ``target``, never replacing an existing file.

    Raises FileExistsError when ``target`` exists (``temporary`` is left as it is, for the caller
    to keep or remove).
    """
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        # No hard links here (some network shares): a checked rename. Another writer could slip
        # in between the check and the rename; none does in the gateway's own folders.
        if target.exists():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
        temporary.rename(target)
    else:
        temporary.unlink()
    fsync_folder(target.parent)


def write_new(target: Path, content: bytes | Callable[[BinaryIO], object], *, mode: int = 0o600) -> str:
    """Write a new file ``target`` atomically and exclusively; return the SHA-256 of its bytes.

    ``content`` is the bytes, or a function that writes them to a binary stream (a receipt of
    100,000 cases is streamed, not built in memory). FileExistsError when ``target`` exists.
    """
    temporary = temporary_name(target)
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(descriptor, "wb") as out:
            hashing = _HashingWriter(out)
            if isinstance(content, bytes):
                hashing.write(content)
            else:
                content(hashing)  # type: ignore[arg-type]
            out.flush()
            os.fsync(out.fileno())
        publish(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return hashing.hexdigest()


def write_private(path: Path, content: bytes | Callable[[BinaryIO], object], *, mode: int = 0o600) -> str:
    """Write the gateway's own working file ``path`` (replacing an earlier one), fsynced; return
    its SHA-256. For temporaries that are published later (a receipt waits for its commit)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as out:
        hashing = _HashingWriter(out)
        if isinstance(content, bytes):
            hashing.write(content)
        else:
            content(hashing)  # type: ignore[arg-type]
        out.flush()
        os.fsync(out.fileno())
    fsync_folder(path.parent)
    return hashing.hexdigest()


def write_replacing(target: Path, content: bytes, *, mode: int = 0o600) -> None:
    """Write ``target`` atomically, replacing an earlier version: only for files that are meant to
    be rewritten (a report run again on demand), never for anything an auditor relies on.

    Each writer has a temporary name of its own, so two writers at once (a report on demand beside
    the nightly one) cannot mix their bytes: the last rename wins whole.
    """
    temporary = temporary_name(target)
    try:
        write_private(temporary, content, mode=mode)
        temporary.replace(target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(target.parent)


def copy_new(
    source: BinaryIO, target: Path, *, mode: int = 0o600, group: int | None = None
) -> tuple[str, int]:
    """Copy what is left in ``source`` to a new file ``target`` (atomic, exclusive, durable).

    Returns the SHA-256 and size of what was copied. OSErrors from *reading* ``source`` are raised
    as :class:`ReadError`, so that a caller can tell a file it may not read from a folder it cannot
    write. ``group``: a file another account reads through its group (a receipt for the ERP): it
    gets that group (-1: the one it was created with, a setgid folder's) and exactly ``mode``,
    whatever the umask, before it has its name, so it is never readable by the wrong ones.
    """
    temporary = temporary_name(target)
    try:
        size, digest = _copy_into(source, temporary, mode, group)
        publish(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return digest, size


def copy_replacing(source: BinaryIO, target: Path, *, mode: int = 0o600) -> tuple[str, int]:
    """Like :func:`copy_new`, but a file already at ``target`` is replaced: only for the gateway's
    private working copies (staging), never for anything someone else reads."""
    temporary = temporary_name(target)
    try:
        size, digest = _copy_into(source, temporary, mode)
        temporary.replace(target)
        fsync_folder(target.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return digest, size


class ReadError(OSError):
    """Reading the source of a copy failed (the file, not the folder written to)."""


def _copy_into(source: BinaryIO, temporary: Path, mode: int, group: int | None = None) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as out:
        if group is not None:
            os.fchown(descriptor, -1, group)
            os.fchmod(descriptor, mode)  # after the group: chown may clear a setgid bit
        while True:
            try:
                chunk = source.read(CHUNK_BYTES)
            except OSError as error:
                raise ReadError(error.errno, error.strerror, getattr(error, "filename", None)) from error
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest()


def move_new(source: Path, target: Path) -> None:
    """Move the gateway's own file ``source`` to the new name ``target`` (exclusive, durable).

    Same file system: a link and an unlink. Another one: a copy, then the unlink.
    """
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        with source.open("rb") as handle:
            copy_new(handle, target, mode=source.stat().st_mode & 0o777)
    else:
        fsync_folder(target.parent)
    source.unlink()
    fsync_folder(source.parent)


def remove_tree_contents(folder: Path) -> None:
    """Remove everything in ``folder`` (the gateway's own scratch folders only)."""
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


class HashingReader:
    """Hashes and counts the bytes as a consumer (a parser) reads them, so that a file is read
    only once."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Hash whatever the consumer did not read (a parser stops early on a fatal finding)."""
        while self.read(CHUNK_BYTES):
            pass


class _HashingWriter:
    """Hashes what passes through to ``out``."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return self._out.write(data)

    def flush(self) -> None:
        self._out.flush()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


# -- a producer's names ---------------------------------------------------------------------------

#: Suffixes producers write under and rename away from when a file is complete.
TEMPORARY_SUFFIXES = (".part", ".tmp")


def is_temporary_name(name: str) -> bool:
    """Never taken: a producer's temporary name, or any hidden file (.gitkeep, .DS_Store, ...)."""
    return name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES)


def is_being_written(name: str) -> bool:
    """A producer's temporary name: a rename into the final name is probably coming."""
    return name.endswith(TEMPORARY_SUFFIXES) or (name.startswith(".") and "." in name[1:])


#: File system types on which SQLite's locking cannot be trusted (the SQLite FAQ: network file
#: systems implement the locks badly or not at all), as /proc/self/mountinfo names them.
NETWORK_FILE_SYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "9p",
        "ceph",
        "glusterfs",
        "fuse.sshfs",
        "lustre",
    }
)


def file_system_type(path: Path, mountinfo: str | None = None) -> str | None:
    """The type of the file system ``path`` (or its nearest existing folder) lies on, from
    ``/proc/self/mountinfo`` (given as ``mountinfo`` in a test); None where that cannot be read.

    >>> info = "22 27 0:21 / / rw - ext4 /dev/sda1 rw\\n40 22 0:50 / /srv/data rw - nfs4 nas:/x rw\\n"
    >>> file_system_type(Path("/srv/data/var/gateway.db"), info), file_system_type(Path("/srv/d"), info)
    ('nfs4', 'ext4')
    """
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        path = path.resolve()
    best: tuple[int, str] | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        # Octal escapes (\040 for a space) are how mountinfo writes awkward mount points.
        mount_point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        fs_type = line.split(" - ", 1)[1].split()[0]
        inside = path == Path(mount_point) or path.is_relative_to(mount_point)
        if inside and (best is None or len(mount_point) >= best[0]):
            best = (len(mount_point), fs_type)
    return None if best is None else best[1]
