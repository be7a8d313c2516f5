"""Hostile and broken input: every such file gets a clear finding with the right code, quickly, in
bounded memory, and never a traceback (reliability.md, "Hostile input"; rules.md, F01 and F02).

Small samples live in tests/data/hostile/ and differ from ``control-one-case.xml`` (a valid file
with the first case of examples/lst-exempel-2026-11-24.xml) only by their defect. Large inputs
(deep nesting, a 50 MB text node, zip bombs) are generated into tmp_path by the tests themselves.

The command-line tests run ``inkasso-gateway validate`` in a child process, each under its own small
wrapper process that reports the child's peak RSS, so every child is measured alone. The wrapper
also caps the child's address space as a safety net: a regression fails the test instead of
swapping a machine that others share.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import struct
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import IO, Any

import pytest

from gateway.domain.findings import Finding
from gateway.domain.judging import FileStatus
from gateway.service.validation import FileReport, ValidationSettings, validate_file

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = Path(__file__).resolve().parent / "data" / "hostile"
EXAMPLE = ROOT / "examples" / "lst-exempel-2026-11-24.xml"
CONTROL = HOSTILE / "control-one-case.xml"
CLI = ROOT / ".venv" / "bin" / "inkasso-gateway"
AS_OF = date(2026, 11, 25)

#: Peak resident memory a child ``validate`` may use on any hostile file.
MAX_CHILD_RSS_MB = 300
#: Address-space cap of the child: far above any healthy run, so it only stops a runaway.
CHILD_ADDRESS_SPACE_BYTES = 1536 * 1024**2
#: A hang is a failure too; no timing assertions beyond this.
CHILD_TIMEOUT_SECONDS = 120

#: The first line of /etc/passwd on any Linux: it must never travel into a receipt.
PASSWD_MARKER = "root:"


# -- helpers ---------------------------------------------------------------------------------


def validate(path: Path) -> FileReport:
    return validate_file(path, ValidationSettings(today=AS_OF))


def all_findings(report: FileReport) -> list[Finding]:
    findings = list(report.verdict.findings)
    for case in report.verdict.cases:
        findings.extend(case.findings)
    return findings


def describe(report: FileReport) -> str:
    return "; ".join(f"{f.code} line {f.line}: {f.message_en}" for f in all_findings(report)) or "none"


def assert_rejected_with(report: FileReport, code: str) -> list[Finding]:
    """The file is rejected with a file-level ``code`` whose messages say something in both languages."""
    verdict = report.verdict
    matching = [f for f in verdict.findings if f.code == code]
    assert matching, f"expected a file-level {code}, got: {describe(report)}"
    assert verdict.status is FileStatus.REJECTED, f"status {verdict.status}, findings: {describe(report)}"
    for finding in matching:
        assert finding.is_error
        assert finding.message_sv.strip(), finding
        assert finding.message_en.strip(), finding
    for finding in all_findings(report):
        assert finding.message_sv.strip() and finding.message_en.strip(), finding
    return matching


def assert_nothing_leaked(report: FileReport) -> None:
    for finding in all_findings(report):
        assert PASSWD_MARKER not in finding.message_sv, finding
        assert PASSWD_MARKER not in finding.message_en, finding
        assert PASSWD_MARKER not in finding.path, finding


def example_bytes() -> bytes:
    return EXAMPLE.read_bytes()


def with_free_content(xml: bytes, inner: bytes) -> bytes:
    """Put ``inner`` into the first case's Kostnadsuppgifter (schema: mixed, any element, skipped)."""
    anchor = b"    </Fordran>\n  </Arende>"
    assert anchor in xml
    return xml.replace(
        anchor, b"    </Fordran>\n    <Kostnadsuppgifter>" + inner + b"</Kostnadsuppgifter>\n  </Arende>", 1
    )


def write_zip(path: Path, members: Iterable[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            archive.writestr(info, data)
    return path


BOMB_BYTES = 300 * 1024**2


def write_zip_bomb(path: Path, bomb_name: str, *, with_case_file: bool) -> Path:
    """A package whose member ``bomb_name`` is 300 MB of zeros (about 300 KB compressed)."""
    zeros = bytes(1024**2)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        if with_case_file:
            archive.writestr("arenden.xml", example_bytes())
        with archive.open(bomb_name, "w", force_zip64=True) as member:
            for _ in range(BOMB_BYTES // len(zeros)):
                member.write(zeros)
    return path


def set_encrypted_flag(data: bytes) -> bytes:
    """Set bit 0 (encrypted) of every local header's and central directory entry's flags."""
    patched = bytearray(data)
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (found := patched.find(signature, start)) >= 0:
            patched[found + flag_offset] |= 0x01
            start = found + 4
    return bytes(patched)


@pytest.fixture(scope="module")
def big_text_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example with a 50 MB FordranAvser, written in chunks (never held whole in memory)."""
    path = tmp_path_factory.mktemp("big") / "text-node-50mb.xml"
    head, tail = example_bytes().split("Avgift för extra".encode(), 1)
    chunk = b"x" * 1024**2
    with path.open("wb") as out:
        out.write(head)
        for _ in range(50):
            out.write(chunk)
        out.write(tail)
    return path


@pytest.fixture(scope="module")
def deep_nesting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("deep") / "nesting-10000.xml"
    path.write_bytes(with_free_content(example_bytes(), b"<Rad>" * 10_000 + b"</Rad>" * 10_000))
    return path


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid case file plus a 300 MB 'attachment' of zeros."""
    return write_zip_bomb(tmp_path_factory.mktemp("bomb") / "bomb.zip", "bilaga.pdf", with_case_file=True)


@pytest.fixture
def opened_members(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of every zip member opened for reading (to prove a refusal came before unpacking)."""
    names: list[str] = []
    original = zipfile.ZipFile.open

    def recording_open(
        self: zipfile.ZipFile, name: str | zipfile.ZipInfo, mode: str = "r", *args: Any, **kwargs: Any
    ) -> IO[bytes]:
        if mode == "r":
            names.append(name.filename if isinstance(name, zipfile.ZipInfo) else name)
        return original(self, name, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    return names


# -- controls: the samples' template and a BOM are fine ---------------------------------------


def test_control_sample_is_valid() -> None:
    report = validate(CONTROL)
    assert report.verdict.status is FileStatus.ACCEPTED, describe(report)
    assert all_findings(report) == []


def test_utf8_bom_on_a_valid_file_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "bom.xml"
    path.write_bytes(b"\xef\xbb\xbf" + example_bytes())
    report = validate(path)
    assert report.verdict.status is FileStatus.ACCEPTED, describe(report)
    assert all_findings(report) == []
    assert len(report.verdict.cases) == 3


# -- F01: unreadable XML ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "sample",
    [
        "not-well-formed.xml",
        "empty.xml",
        "whitespace-only.xml",
        "wrong-root.xml",
        "no-namespace.xml",
        "wrong-namespace.xml",
        "declares-iso-8859-1.xml",
        "declares-utf-8-has-latin-1.xml",
        "utf-16-bom.xml",
    ],
)
def test_unreadable_xml_is_F01(sample: str) -> None:
    report = validate(HOSTILE / sample)
    assert_rejected_with(report, "F01")
    assert not report.verdict.cases, "no case may be read from an unreadable file"


def test_latin1_bytes_finding_names_the_line() -> None:
    (finding,) = assert_rejected_with(validate(HOSTILE / "declares-utf-8-has-latin-1.xml"), "F01")
    assert finding.line == 11  # Namn: "Länsstyrelsen i Exempellän"


def test_utf16_without_bom_is_F01() -> None:
    """UTF-16 is not UTF-8 whether or not a BOM announces it (lxml autodetects it from '<?')."""
    assert_rejected_with(validate(HOSTILE / "utf-16-no-bom.xml"), "F01")


def test_unescaped_ampersand_is_F01_not_a_safety_limit() -> None:
    """'Exempelsson & Son': a common export mistake; not well-formed, not an attack."""
    report = validate(HOSTILE / "unescaped-ampersand.xml")
    (finding,) = assert_rejected_with(report, "F01")
    assert not [f for f in report.verdict.findings if f.code == "F02"], describe(report)
    assert finding.line == 22


def test_undefined_entity_is_F01_with_its_line() -> None:
    """'&nbsp;' without a DTD: not well-formed; the operator needs the line to fix the export."""
    report = validate(HOSTILE / "undefined-entity.xml")
    (finding,) = assert_rejected_with(report, "F01")
    assert finding.line == 25, finding


def test_gzip_handed_over_as_xml_is_not_decompressed(tmp_path: Path) -> None:
    compressed = gzip.compress(example_bytes())
    path = tmp_path / "arenden.xml"
    path.write_bytes(compressed)
    report = validate(path)
    assert_rejected_with(report, "F01")
    assert not report.verdict.cases
    assert report.size == len(compressed)


# -- F02: DOCTYPE, entities, XInclude, limits --------------------------------------------------


@pytest.mark.parametrize("sample", ["billion-laughs.xml", "xxe-etc-passwd.xml", "external-dtd.xml"])
def test_doctype_is_F02(sample: str) -> None:
    report = validate(HOSTILE / sample)
    assert_rejected_with(report, "F02")
    assert not report.verdict.cases
    assert_nothing_leaked(report)


def test_quadratic_blowup_is_F02(tmp_path: Path) -> None:
    entity = b"A" * 100_000
    body = (
        example_bytes()
        .split(b"\n", 1)[1]
        .replace(b"<FilId>LST-EXEMPEL-20261124-01</FilId>", b"<FilId>" + b"&a;" * 5_000 + b"</FilId>")
    )
    path = tmp_path / "quadratic.xml"
    path.write_bytes(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE Arendefil [<!ENTITY a "'
        + entity
        + b'">]>\n'
        + body
    )
    report = validate(path)
    assert_rejected_with(report, "F02")
    assert not report.verdict.cases


@pytest.mark.parametrize("sample", ["xinclude-in-case.xml", "xinclude-top-level.xml"])
def test_xinclude_is_F02(sample: str) -> None:
    report = validate(HOSTILE / sample)
    assert_rejected_with(report, "F02")
    assert_nothing_leaked(report)


def test_xinclude_before_another_stray_element_is_F02() -> None:
    report = validate(HOSTILE / "xinclude-before-stray-element.xml")
    assert_rejected_with(report, "F02")
    assert_nothing_leaked(report)


def test_each_stray_element_is_reported_once(tmp_path: Path) -> None:
    path = tmp_path / "stray.xml"
    path.write_bytes(example_bytes().replace(b"  <Arende>", b"  <A/>\n  <B/>\n  <C/>\n  <Arende>", 1))
    report = validate(path)
    assert_rejected_with(report, "F03")
    stray = sorted((f.path, f.line) for f in report.verdict.findings if f.code == "F03")
    assert stray == [("/Arendefil/A", 14), ("/Arendefil/B", 15), ("/Arendefil/C", 16)], stray


def test_xinclude_inside_free_content_is_F02() -> None:
    """Kostnadsuppgifter skips schema checks of its content: XInclude must still be found there."""
    report = validate(HOSTILE / "xinclude-in-free-content.xml")
    assert_rejected_with(report, "F02")
    assert_nothing_leaked(report)


def test_deep_nesting_is_F02(deep_nesting: Path) -> None:
    report = validate(deep_nesting)
    assert_rejected_with(report, "F02")


def test_deep_nesting_in_a_simple_field_is_F02(tmp_path: Path) -> None:
    path = tmp_path / "deep-field.xml"
    path.write_bytes(
        example_bytes().replace(
            b"<Kundnummer>K-10442", b"<Kundnummer>" + b"<Rad>" * 10_000 + b"</Rad>" * 10_000 + b"K-10442", 1
        )
    )
    assert_rejected_with(validate(path), "F02")


def test_50_mb_text_node_is_F02(big_text_node: Path) -> None:
    report = validate(big_text_node)
    assert_rejected_with(report, "F02")
    assert report.size == big_text_node.stat().st_size


def test_unexpected_elements_do_not_flood_the_receipt(tmp_path: Path) -> None:
    """20,000 stray elements between the parts: rejected, but the receipt stays readable."""
    path = tmp_path / "stray.xml"
    path.write_bytes(
        example_bytes().replace(b"  <Filsummering>", b"<Rad/>" * 20_000 + b"  <Filsummering>", 1)
    )
    report = validate(path)
    assert_rejected_with(report, "F03")
    assert len(report.verdict.findings) <= 1000, f"{len(report.verdict.findings)} file findings"


# -- F02: packages -----------------------------------------------------------------------------


def test_valid_package_is_accepted(tmp_path: Path) -> None:
    report = validate(write_zip(tmp_path / "ok.zip", [("arenden.xml", example_bytes())]))
    assert report.verdict.status is FileStatus.ACCEPTED, describe(report)


def test_zip_bomb_attachment_is_refused_from_the_directory(zip_bomb: Path, opened_members: list[str]) -> None:
    assert zip_bomb.stat().st_size < 2 * 1024**2  # it really is a bomb: 300 MB in well under 2 MB
    report = validate(zip_bomb)
    (finding,) = assert_rejected_with(report, "F02")
    assert "bilaga.pdf" in finding.message_en
    assert "bilaga.pdf" not in opened_members, "the bomb was unpacked before being refused"


def test_zip_bomb_case_file_is_refused_from_the_directory(tmp_path: Path, opened_members: list[str]) -> None:
    path = write_zip_bomb(tmp_path / "bomb.zip", "arenden.xml", with_case_file=False)
    report = validate(path)
    assert_rejected_with(report, "F02")
    assert opened_members == []


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


PACKAGES: dict[str, Callable[[], list[tuple[str | zipfile.ZipInfo, bytes]]]] = {
    "dot-dot-name": lambda: [("../evil.xml", example_bytes())],
    "backslash-dot-dot-name": lambda: [("..\\evil.xml", example_bytes())],
    "absolute-name": lambda: [("/etc/x.xml", example_bytes())],
    "symlink-case-file": lambda: [(_symlink("arenden.xml"), b"/etc/passwd")],
    "symlink-attachment": lambda: [
        ("arenden.xml", example_bytes()),
        (_symlink("bilaga.pdf"), b"/etc/passwd"),
    ],
    "two-xml": lambda: [("a.xml", example_bytes()), ("b.xml", example_bytes())],
    "no-xml": lambda: [("bilaga.pdf", b"%PDF-1.4\n")],
    "empty-zip": lambda: [],
    "nested-path": lambda: [("export/arenden.xml", example_bytes())],
    "folder-entry": lambda: [("arenden.xml", example_bytes()), ("bilagor/", b"")],
    "too-many-members": lambda: (
        [("arenden.xml", example_bytes())] + [(f"b{i}.pdf", b"%PDF-") for i in range(1001)]
    ),
}


@pytest.mark.parametrize("kind", list(PACKAGES))
def test_unsafe_package_is_F02(tmp_path: Path, kind: str, opened_members: list[str]) -> None:
    path = write_zip(tmp_path / f"{kind}.zip", PACKAGES[kind]())
    report = validate(path)
    assert_rejected_with(report, "F02")
    assert not report.verdict.cases
    assert opened_members == [], "an unsafe package must be refused before anything is unpacked"
    assert_nothing_leaked(report)


def test_encrypted_member_is_F02(tmp_path: Path) -> None:
    plain = write_zip(tmp_path / "plain.zip", [("arenden.xml", example_bytes())])
    path = tmp_path / "encrypted.zip"
    path.write_bytes(set_encrypted_flag(plain.read_bytes()))
    assert zipfile.ZipFile(path).infolist()[0].flag_bits & 0x1
    assert_rejected_with(validate(path), "F02")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_zip_is_F02(tmp_path: Path, keep: float) -> None:
    data = write_zip(tmp_path / "whole.zip", [("arenden.xml", example_bytes())]).read_bytes()
    path = tmp_path / "truncated.zip"
    path.write_bytes(data[: int(len(data) * keep)])
    assert_rejected_with(validate(path), "F02")


def _corrupt_deflate_stream(data: bytes, name: str) -> bytes:
    """Make ``name``'s deflate stream start with a reserved block type; every header stays intact."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    assert info.compress_type == zipfile.ZIP_DEFLATED
    local_name_length, local_extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    data_start = info.header_offset + 30 + local_name_length + local_extra_length
    # Bit 0 BFINAL, bits 1-2 BTYPE = 3: "invalid block type" from the first byte zlib reads.
    return data[:data_start] + b"\x07" + data[data_start + 1 :]


def test_corrupt_stored_case_file_is_F02(tmp_path: Path) -> None:
    """Damage that keeps the XML well-formed is caught by the CRC at the end of the member."""
    path = tmp_path / "crc.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("arenden.xml", example_bytes())
    data = path.read_bytes()
    text_at = data.index(b"Storgatan 1")
    path.write_bytes(data[:text_at] + b"Xtorgatan 1" + data[text_at + len(b"Storgatan 1") :])
    assert_rejected_with(validate(path), "F02")


@pytest.mark.parametrize("damaged", ["arenden.xml", "bilaga.pdf"])
def test_corrupt_deflate_data_is_F02(tmp_path: Path, damaged: str) -> None:
    """Damaged compressed data (zlib.error from the decompressor) is a damaged package, not a crash."""
    attachment = b"%PDF-1.4\n" + bytes(range(256)) * 40
    plain = write_zip(tmp_path / "plain.zip", [("arenden.xml", example_bytes()), ("bilaga.pdf", attachment)])
    path = tmp_path / "damaged.zip"
    path.write_bytes(_corrupt_deflate_stream(plain.read_bytes(), damaged))
    assert_rejected_with(validate(path), "F02")


# -- the real command line, in bounded memory ------------------------------------------------

_WRAPPER = textwrap.dedent(
    """
    import json, resource, subprocess, sys

    limit, stdout_path, stderr_path, timeout, *command = sys.argv[1:]

    def cap_address_space():
        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))

    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        result = subprocess.run(
            command, stdout=out, stderr=err, preexec_fn=cap_address_space, timeout=float(timeout)
        )
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"returncode": result.returncode, "maxrss_kb": usage.ru_maxrss}))
    """
)


def run_cli(path: Path, tmp_path: Path) -> tuple[int, str, str, int]:
    """Run ``validate --format json`` on ``path``: exit code, stdout, stderr, peak RSS in MB."""
    out, err = tmp_path / "stdout.json", tmp_path / "stderr.txt"
    command = [str(CLI), "validate", str(path), "--as-of", AS_OF.isoformat(), "--format", "json"]
    wrapper = subprocess.run(
        [
            sys.executable,
            "-c",
            _WRAPPER,
            str(CHILD_ADDRESS_SPACE_BYTES),
            str(out),
            str(err),
            str(CHILD_TIMEOUT_SECONDS),
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_SECONDS + 30,
        cwd=tmp_path,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=True,
    )
    measured = json.loads(wrapper.stdout)
    stdout = out.read_text("utf-8", errors="replace")
    stderr = err.read_text("utf-8", errors="replace")
    return measured["returncode"], stdout, stderr, measured["maxrss_kb"] // 1024


def assert_cli_rejects(path: Path, tmp_path: Path, code: str) -> None:
    returncode, stdout, stderr, rss_mb = run_cli(path, tmp_path)
    where = f"(peak RSS {rss_mb} MB, exit code {returncode})"
    assert "Traceback" not in stderr, f"{where}\n{stderr[-3000:]}"
    assert returncode == 1, f"{where} stderr: {stderr[-2000:]}"
    lines = stdout.splitlines()
    assert len(lines) == 1, f"{where} expected one JSON line, got {len(lines)}"
    report = json.loads(lines[0])
    codes = [violation["code"] for violation in report["violations"]]
    assert report["status"] == "rejected", f"{where} status {report['status']}, file codes {codes}"
    assert code in codes, f"{where} file codes {codes}"
    for violation in report["violations"]:
        assert violation["message_sv"].strip() and violation["message_en"].strip(), violation
    assert rss_mb < MAX_CHILD_RSS_MB, f"peak RSS {rss_mb} MB"


@pytest.mark.integration
def test_cli_billion_laughs(tmp_path: Path) -> None:
    assert_cli_rejects(HOSTILE / "billion-laughs.xml", tmp_path, "F02")


@pytest.mark.integration
def test_cli_deep_nesting(deep_nesting: Path, tmp_path: Path) -> None:
    assert_cli_rejects(deep_nesting, tmp_path, "F02")


@pytest.mark.integration
def test_cli_50_mb_text_node(big_text_node: Path, tmp_path: Path) -> None:
    assert_cli_rejects(big_text_node, tmp_path, "F02")


@pytest.mark.integration
def test_cli_zip_bomb(zip_bomb: Path, tmp_path: Path) -> None:
    assert_cli_rejects(zip_bomb, tmp_path, "F02")


@pytest.mark.integration
def test_cli_case_with_millions_of_elements(tmp_path: Path) -> None:
    """3,000,000 empty elements in one case's free content (a 12 MB file): refused within limits."""
    path = tmp_path / "wide-case.xml"
    path.write_bytes(with_free_content(example_bytes(), b"<Rad/>" * 3_000_000))
    assert_cli_rejects(path, tmp_path, "F02")


@pytest.mark.integration
def test_cli_corrupt_package(tmp_path: Path) -> None:
    plain = write_zip(tmp_path / "plain.zip", [("arenden.xml", example_bytes())])
    path = tmp_path / "damaged.zip"
    path.write_bytes(_corrupt_deflate_stream(plain.read_bytes(), "arenden.xml"))
    assert_cli_rejects(path, tmp_path, "F02")
