"""tools/verify_receipts.py: the auditor's offline, standard-library-only check of the receipt chain.

The receipts here are synthetic but schema-shaped (one of each kind is validated against
kvittens-1.xsd), and the script runs as its own process, as an auditor would run it.

What a changed receipt is named by: a receipt whose bytes changed but which is still well-formed
XML still names its own predecessor correctly, so the walk from the genesis reaches it; what no
longer holds is the link *to* it. The break is therefore ``predecessor-missing``, named by the
path of the receipt after the changed one (the explanation says where the intact chain ends, which
is the changed receipt). A change that makes a receipt unreadable XML is ``malformed``, named by
the changed receipt itself.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tools" / "verify_receipts.py"
GENESIS = "0" * 64
NAMESPACE = "urn:inkasso-gateway:kvittens:1"


def kvittens(number: int, previous: str, position: int | None, cases: int = 0) -> bytes:
    """A minimal receipt as the gateway writes it: required elements only, plus ``cases`` Arende."""
    arenden = "".join(
        f"<Arende><ArendeReferens>REF-{number}-{case}</ArendeReferens><Status>Godkand</Status></Arende>\n"
        for case in range(cases)
    )
    kedjeposition = f"<Kedjeposition>{position}</Kedjeposition>" if position is not None else ""
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<Kvittens xmlns="{NAMESPACE}" version="1.0">'
        f"<KvittensId>k-{number}</KvittensId><Skapad>2026-11-25T15:38:31+01:00</Skapad>"
        f"<Fil><Namn>fil-{number}.xml</Namn><Kalla>erp</Kalla><Storlek>{100 + number}</Storlek>"
        f"<Sha256>{hashlib.sha256(str(number).encode()).hexdigest()}</Sha256>"
        "<Mottagen>2026-11-25T15:38:30+01:00</Mottagen></Fil>"
        f"<Status>Godkand</Status>{arenden}"
        f"<Summering><AntalArenden>{cases}</AntalArenden><AntalGodkanda>{cases}</AntalGodkanda>"
        "<AntalUnderkanda>0</AntalUnderkanda><AntalDubbletter>0</AntalDubbletter>"
        "<SummaGodkantKapitalbelopp>0.00</SummaGodkantKapitalbelopp></Summering>\n"
        f"<Gateway><Version>0.1.0</Version><Regelversion>1</Regelversion><KonfigSha256>{'a' * 64}</KonfigSha256></Gateway>\n"
        f"{kedjeposition}<ForegaendeKvittensSha256>{previous}</ForegaendeKvittensSha256>\n"
        "</Kvittens>\n"
    ).encode()


def write_chain(
    folder: Path, count: int, *, days: int = 3, positions: bool = True, first_numbered: int = 1
) -> list[Path]:
    """``count`` chained receipts spread over ``days`` day folders, as the gateway names them;
    their paths in chain order. ``first_numbered``: the first receipt that carries Kedjeposition."""
    paths = []
    previous = GENESIS
    for number in range(1, count + 1):
        position = number if positions and number >= first_numbered else None
        data = kvittens(number, previous, position)
        previous = hashlib.sha256(data).hexdigest()
        day = folder / f"2026-11-{1 + (number - 1) * days // count:02d}"
        day.mkdir(parents=True, exist_ok=True)
        path = day / f"fil-{number}.xml.{previous[:12]}.kvittens.xml"
        path.write_bytes(data)
        paths.append(path)
    return paths


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(folder), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def assert_broken(result: subprocess.CompletedProcess[str], kind: str, path: Path | str) -> list[str]:
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert lines[0] == f"BROKEN: {kind}: {path}", result.stdout
    assert len(lines) == 3 and lines[2].endswith("further break(s)"), result.stdout
    assert result.stderr == ""
    return lines


@pytest.fixture
def receipts(tmp_path: Path) -> Path:
    return tmp_path / "outbox" / "receipts"


def test_the_helper_writes_receipts_the_schema_accepts() -> None:
    schema = etree.XMLSchema(etree.parse(str(REPO / "xsd" / "kvittens-1.xsd")))
    for data in (kvittens(1, GENESIS, 1), kvittens(2, "f" * 64, None, cases=3)):
        document = etree.fromstring(data)
        assert schema.validate(document), schema.error_log


def test_an_intact_chain_is_ok(receipts: Path) -> None:
    paths = write_chain(receipts, 5)
    result = verify(receipts)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == (
        f"OK: 5 receipt(s) in an unbroken chain from {paths[0]} to {paths[-1]}; head {sha256(paths[-1])}\n"
    )


def test_a_copy_with_other_times_and_names_is_still_ok(receipts: Path, tmp_path: Path) -> None:
    paths = write_chain(receipts, 5)
    copy = tmp_path / "copy"
    shutil.copytree(receipts, copy)
    copied = sorted(copy.rglob("*.kvittens.xml"))
    # Newest first by mtime, and names that sort against the chain order: neither may matter.
    for age, path in enumerate(copied):
        os.utime(path, (1_000_000 + age * 3600, 2_000_000_000 - age * 3600))
        path.rename(path.with_name(f"{random.randrange(10**9):09d}-{age}.kvittens.xml"))
    result = verify(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: 5 receipt(s) in an unbroken chain from ")
    assert result.stdout.endswith(f"; head {sha256(paths[-1])}\n")


def test_a_changed_byte_breaks_the_link_from_the_next_receipt(receipts: Path) -> None:
    paths = write_chain(receipts, 5)
    data = paths[1].read_bytes()
    paths[1].write_bytes(data.replace(b"<KvittensId>k-2<", b"<KvittensId>k-7<"))
    lines = assert_broken(verify(receipts), "predecessor-missing", paths[2])
    assert f"the chain from the genesis ends at {paths[1]}" in lines[1]
    assert lines[2] == "2 further break(s)"  # receipts 4 and 5 are cut off from the genesis


def test_a_change_that_spoils_the_xml_is_named_by_the_changed_receipt(receipts: Path) -> None:
    paths = write_chain(receipts, 5)
    paths[1].write_bytes(paths[1].read_bytes().replace(b"</KvittensId>", b"</KvittensID>"))
    lines = assert_broken(verify(receipts), "malformed", paths[1])
    assert "not well-formed" in lines[1]


def test_a_removed_receipt_breaks_the_chain(receipts: Path) -> None:
    paths = write_chain(receipts, 5)
    removed = sha256(paths[2])
    paths[2].unlink()
    lines = assert_broken(verify(receipts), "predecessor-missing", paths[3])
    assert f"names predecessor {removed}" in lines[1]
    assert lines[2] == "1 further break(s)"  # receipt 5 follows receipt 4: cut off too


def test_a_receipt_cut_off_from_the_genesis_is_a_break(receipts: Path) -> None:
    write_chain(receipts, 3)
    # An island: two receipts chained to each other, the first naming a receipt that is not there.
    island = kvittens(90, "e" * 64, None)
    stray = receipts / "stray"
    stray.mkdir()
    (stray / "a.kvittens.xml").write_bytes(island)
    (stray / "b.kvittens.xml").write_bytes(kvittens(91, hashlib.sha256(island).hexdigest(), None))
    result = verify(receipts)
    assert_broken(result, "predecessor-missing", stray / "a.kvittens.xml")
    assert result.stdout.splitlines()[2] == "1 further break(s)"  # b: unreachable


def test_a_fork_is_a_break(receipts: Path) -> None:
    paths = write_chain(receipts, 5)
    forged = receipts / "2026-11-03" / "forged.kvittens.xml"
    forged.write_bytes(kvittens(99, sha256(paths[1]), 3))
    result = verify(receipts)
    lines = result.stdout.splitlines()
    assert result.returncode == 1
    # Both receipts that name receipt 2 are forks (in path order); the walk stops before them.
    assert lines[0] == f"BROKEN: fork: {paths[2]}"
    assert f"name {paths[1]} as their predecessor: {paths[2]}, {forged}" in lines[1]
    assert lines[2] == "3 further break(s)"  # the forged receipt, and receipts 4 and 5 cut off


def test_a_wrong_kedjeposition_is_a_break(receipts: Path) -> None:
    receipts.mkdir(parents=True)
    previous = GENESIS
    for number, position in enumerate([1, 2, 7, 4], start=1):
        data = kvittens(number, previous, position)
        (receipts / f"fil-{number}.kvittens.xml").write_bytes(data)
        previous = hashlib.sha256(data).hexdigest()
    lines = assert_broken(verify(receipts), "position-mismatch", receipts / "fil-3.kvittens.xml")
    assert "Kedjeposition is 7 but it is receipt 3" in lines[1]


@pytest.mark.parametrize("first_numbered", [99, 4], ids=["none-numbered", "numbered-after-upgrade"])
def test_receipts_without_kedjeposition_still_verify(receipts: Path, first_numbered: int) -> None:
    paths = write_chain(receipts, 6, first_numbered=first_numbered)
    assert (b"<Kedjeposition>" in paths[-1].read_bytes()) == (first_numbered == 4)
    result = verify(receipts)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: 6 receipt(s)")


def test_journal_receipts_hidden_files_and_other_xml_are_skipped(receipts: Path) -> None:
    write_chain(receipts, 3)
    journals = receipts / "journals"
    journals.mkdir()
    (journals / "lst-exempel-000001.xml.kvittens.xml").write_bytes(
        b'<?xml version="1.0"?><Journalkvittens xmlns="urn:inkasso-gateway:journalkvittens:1"/>'
    )
    # Even a Kvittens (one that would break the chain) is not read under journals/ ...
    (journals / "odd.kvittens.xml").write_bytes(kvittens(50, "d" * 64, None))
    # ... nor as a hidden or temporary file, and other roots are not receipts of the chain.
    (receipts / "2026-11-01" / ".fil-9.xml.aaaaaaaaaaaa.kvittens.xml").write_bytes(b"half a recei")
    (receipts / "2026-11-01" / ".fil-9.xml.aaaaaaaaaaaa.kvittens.xml.tmp").write_bytes(b"half")
    (receipts / "2026-11-02" / "other.kvittens.xml").write_bytes(b"<Other xmlns='urn:x'/>")
    (receipts / "notes.txt").write_text("not a receipt")
    result = verify(receipts)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: 3 receipt(s)")


DOCTYPE = b'<!DOCTYPE Kvittens [<!ENTITY x "k-1">]>\n'


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda data: data.replace(b"?>\n", b"?>\n" + DOCTYPE, 1), id="doctype"),
        pytest.param(
            lambda data: data.replace(b"?>\n", b"?>\n<!--" + b" " * 40_000 + b"-->" + DOCTYPE, 1),
            id="doctype-after-40kb-comment",
        ),
        pytest.param(
            lambda data: data.replace(b"?>\n", b'?>\n<!DOCTYPE Kvittens SYSTEM "file:///etc/passwd">', 1),
            id="external-dtd",
        ),
    ],
)
def test_a_doctype_is_a_break_not_a_traceback(receipts: Path, spoil: Callable[[bytes], bytes]) -> None:
    paths = write_chain(receipts, 3)
    paths[0].write_bytes(spoil(paths[0].read_bytes()))
    lines = assert_broken(verify(receipts), "doctype", paths[0])
    assert "DOCTYPE" in lines[1]
    # Its successor still names its original bytes, which are gone: cut off, counted, not a traceback.
    assert lines[2] == "2 further break(s)"


@pytest.mark.parametrize(
    ("content", "kind"),
    [(b"", "malformed"), (b"<Kvittens xmlns='urn:inkasso-gateway:kvittens:1'>", "malformed")],
    ids=["empty", "truncated"],
)
def test_a_receipt_that_is_not_xml_is_a_break(receipts: Path, content: bytes, kind: str) -> None:
    write_chain(receipts, 2)
    bad = receipts / "2026-11-02" / "bad.kvittens.xml"
    bad.write_bytes(content)
    assert_broken(verify(receipts), kind, bad)


def test_a_receipt_of_many_cases_is_read(receipts: Path) -> None:
    receipts.mkdir(parents=True)
    (receipts / "big.kvittens.xml").write_bytes(kvittens(1, GENESIS, 1, cases=20_000))
    result = verify(receipts)
    assert result.returncode == 0, result.stdout + result.stderr


def test_anchors(receipts: Path) -> None:
    paths = write_chain(receipts, 5)
    assert (
        verify(receipts, "--anchor", sha256(paths[2]), "--anchor", sha256(paths[4]).upper()).returncode == 0
    )
    result = verify(receipts, "--anchor", sha256(paths[2]), "--anchor", "b" * 64)
    lines = assert_broken(result, "anchor-missing", "b" * 64)
    assert lines[2] == "0 further break(s)"


@pytest.mark.parametrize(
    "args",
    [[], ["--anchor", "not-a-sha"], ["/nonexistent/receipts"], ["a", "b"]],
    ids=["no-folder", "bad-anchor", "no-such-folder", "two-folders"],
)
def test_usage_errors_exit_2(receipts: Path, args: list[str]) -> None:
    receipts.mkdir(parents=True)
    if args[:1] == ["--anchor"]:
        args = [str(receipts), *args]
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "usage:" in result.stderr and "Traceback" not in result.stderr


def test_a_folder_without_receipts_is_not_ok(receipts: Path) -> None:
    (receipts / "journals").mkdir(parents=True)
    assert_broken(verify(receipts), "no-receipts", receipts)


@pytest.mark.slow
def test_100000_receipts_over_30_days(receipts: Path) -> None:
    """The README's shell loop fails here ("argument list too long"); the script walks the folders."""
    count = 100_000
    started = time.perf_counter()
    paths = write_chain(receipts, count, days=30)
    written = time.perf_counter() - started
    assert len({path.parent for path in paths}) == 30
    # The README's `ls -tr outbox/receipts/20*/*.kvittens.xml`: more than one exec() may be handed.
    glob_bytes = sum(len(f"outbox/receipts/{path.parent.name}/{path.name}") + 1 for path in paths)
    assert glob_bytes > os.sysconf("SC_ARG_MAX")

    started = time.perf_counter()
    result = verify(receipts, "--anchor", sha256(paths[count // 2]))
    took = time.perf_counter() - started
    print(f"{count} receipts: written in {written:.1f} s, verified in {took:.1f} s")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(
        f"OK: {count} receipt(s) in an unbroken chain from {paths[0]} to {paths[-1]}"
    )
    assert took < 300
