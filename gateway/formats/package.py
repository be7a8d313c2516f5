"""Case-file packages: a ``.zip`` holding one case file at its root and the attachments it names.

A package comes from outside and is treated as hostile: its central directory is checked before
anything is unpacked (member count, declared sizes, compression ratio, names, links, encryption),
and nothing from it is ever written to disk under a name it chose. Attachments are measured
(size, SHA-256, content type from their first bytes) by streaming, never held whole in memory.
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, BinaryIO

from gateway.domain.findings import Finding, Severity
from gateway.domain.rules import AttachmentFacts
from gateway.domain.rules.registry import DEFAULT_MAX_ATTACHMENT_BYTES

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"

#: Limits of a package (F02). Generous for real exports, far below what would hurt the machine.
MAX_MEMBERS = 1000
MAX_CASE_FILE_BYTES = 2 * 1024**3
MAX_ATTACHMENT_BYTES = DEFAULT_MAX_ATTACHMENT_BYTES
MAX_TOTAL_BYTES = 4 * 1024**3
#: A member that expands more than this many times (and past 1 MiB) is treated as a zip bomb.
MAX_COMPRESSION_RATIO = 200
RATIO_CHECK_FLOOR_BYTES = 1024**2

_READ_CHUNK = 1024 * 1024

_CONTENT_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


class PackageError(Exception):
    """The package is unsafe or unreadable; ``finding`` says why (F02)."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message_en)
        self.finding = finding


def _refuse(sv: str, en: str) -> PackageError:
    return PackageError(Finding("F02", Severity.ERROR, "/", None, sv, en))


def is_package(head: bytes) -> bool:
    return head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC))


def detect_content_type(head: bytes) -> str | None:
    for signature, content_type in _CONTENT_SIGNATURES:
        if head.startswith(signature):
            return content_type
    return None


@dataclass(slots=True)
class Package:
    archive: zipfile.ZipFile
    case_file: zipfile.ZipInfo
    attachments: dict[str, AttachmentFacts]

    def open_case_file(self) -> IO[bytes]:
        # ZipExtFile stops at the declared size and checks the CRC at the end: a member that lies
        # about its size cannot expand past what was checked here.
        return self.archive.open(self.case_file)


def _check_member(info: zipfile.ZipInfo) -> None:
    name = info.filename
    shown = name[:80]
    if info.flag_bits & 0x1:
        raise _refuse(
            f"Paketet har en krypterad fil ({shown}).", f"The package holds an encrypted file ({shown})."
        )
    if (
        name.startswith(("/", "\\"))
        or (len(name) > 1 and name[1] == ":")
        or ".." in name.replace("\\", "/").split("/")
    ):
        raise _refuse(
            f"Paketet har en fil med otillåten sökväg ({shown}): absoluta namn och '..' är förbjudna.",
            f"The package holds a file with a forbidden path ({shown}): absolute names and '..' are not allowed.",
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _refuse(
            f"Paketet innehåller en symbolisk länk ({shown}), vilket inte är tillåtet.",
            f"The package holds a symbolic link ({shown}), which is not allowed.",
        )
    if info.is_dir() or "/" in name or "\\" in name:
        raise _refuse(
            f"Paketet har en mapp ({shown}); alla filer ska ligga direkt i paketets rot.",
            f"The package holds a folder ({shown}); every file must be at the package's root.",
        )
    if info.file_size > RATIO_CHECK_FLOOR_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(
        info.compress_size, 1
    ):
        raise _refuse(
            f"Filen {shown} i paketet packas upp mer än {MAX_COMPRESSION_RATIO} gånger (zip-bomb?).",
            f"The file {shown} in the package expands more than {MAX_COMPRESSION_RATIO} times (a zip bomb?).",
        )


def open_package(stream: BinaryIO, *, max_attachment_bytes: int = MAX_ATTACHMENT_BYTES) -> Package:
    """Check a package's directory and measure its attachments; raise PackageError when unsafe."""
    try:
        archive = zipfile.ZipFile(stream)
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise _refuse(
            f"Paketet är ingen läsbar zip-fil: {error}", f"The package is not a readable zip file: {error}"
        ) from error
    if len(members) > MAX_MEMBERS:
        raise _refuse(
            f"Paketet har {len(members)} filer; högst {MAX_MEMBERS} är tillåtna.",
            f"The package holds {len(members)} files; at most {MAX_MEMBERS} are allowed.",
        )
    names: set[str] = set()
    total = 0
    for info in members:
        _check_member(info)
        if info.filename in names:
            raise _refuse(
                f"Paketet har två filer med namnet {info.filename[:80]}.",
                f"The package holds two files named {info.filename[:80]}.",
            )
        names.add(info.filename)
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise _refuse(
            f"Paketet packas upp till {total} byte; högst {MAX_TOTAL_BYTES} är tillåtet.",
            f"The package expands to {total} bytes; at most {MAX_TOTAL_BYTES} are allowed.",
        )
    case_files = [info for info in members if info.filename.lower().endswith(".xml")]
    if len(case_files) != 1:
        raise _refuse(
            f"Paketet ska innehålla exakt en ärendefil (.xml) men har {len(case_files)}.",
            f"The package must hold exactly one case file (.xml) but holds {len(case_files)}.",
        )
    case_file = case_files[0]
    if case_file.file_size > MAX_CASE_FILE_BYTES:
        raise _refuse(
            f"Ärendefilen i paketet är {case_file.file_size} byte; högst {MAX_CASE_FILE_BYTES} är tillåtet.",
            f"The case file in the package is {case_file.file_size} bytes; at most {MAX_CASE_FILE_BYTES} are allowed.",
        )
    attachments = {
        info.filename: _measure(archive, info, max_attachment_bytes)
        for info in members
        if info is not case_file
    }
    return Package(archive, case_file, attachments)


def _measure(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> AttachmentFacts:
    """Size, SHA-256 and content type of one attachment; oversized ones are not read to the end."""
    digest = hashlib.sha256()
    head = b""
    size = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(_READ_CHUNK):
                if not head:
                    head = chunk[:16]
                size += len(chunk)
                if size > limit:
                    # Too large anyway (A06): report the declared size without reading further.
                    return AttachmentFacts(max(size, info.file_size), "", detect_content_type(head))
                digest.update(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:
        raise _refuse(
            f"Bilagan {info.filename[:80]} i paketet är skadad: {error}",
            f"The attachment {info.filename[:80]} in the package is damaged: {error}",
        ) from error
    return AttachmentFacts(size, digest.hexdigest(), detect_content_type(head))
