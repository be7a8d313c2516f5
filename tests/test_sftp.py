"""SFTP source and transport against a real OpenSSH sshd on 127.0.0.1 (tests/sshd_server.py)."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from gateway import cli
from gateway import config as config_module
from gateway.adapters.sftp import SftpSource, SftpTransport, connect
from gateway.backoff import Backoff
from gateway.bootstrap import wire
from gateway.errors import PermanentDeliveryError, SourceError
from gateway.folders import Folders
from gateway.service.intake import Intake
from gateway.service.journals import JournalService
from gateway.store import JournalState
from gateway.store.sqlite import SqliteStore
from tests.conftest import EXAMPLE, REPO
from tests.daemon_harness import Gateway as Installation
from tests.daemon_harness import tail
from tests.faults import FAULT_ENV
from tests.sshd_server import SshServer
from tests.test_receipt_returns import wired_returns

pytestmark = [pytest.mark.integration, pytest.mark.sshd]
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
KV = {"k": "urn:inkasso-gateway:kvittens:1"}


def gateway_toml(
    server: SshServer,
    *,
    after: str = "move",
    delivery: bool = True,
    known_hosts: Path | None = None,
    receipt_dir: bool = False,
) -> str:
    connection = f"""
host = "127.0.0.1"
port = {server.port}
username = "{server.username}"
key_file = "{server.key_file}"
known_hosts = "{known_hosts or server.known_hosts}"
"""
    text = f"""
[[clients]]
id = "lst-exempel"
orgnr = "202100-0001"
name = "Länsstyrelsen i Exempellän"

[[sources]]
name = "erp-sftp"
type = "sftp"
remote_dir = "{server.root}/in"
stable_seconds = 0.2
poll_seconds = 0.1
after = "{after}"
{connection}
"""
    if receipt_dir:
        text += f'receipt_dir = "{server.root}/kvittenser"\n'
    if delivery:
        text += f'\n[delivery]\ntype = "sftp"\nremote_dir = "{server.root}/out"\n{connection}'
    return text


class Wired:
    def __init__(self, folder: Path, server: SshServer, **options: object) -> None:
        server.mkdir("in")
        server.mkdir("out")
        server.mkdir("kvittenser")
        (folder / "gateway.toml").write_text(gateway_toml(server, **options), encoding="utf-8")  # type: ignore[arg-type]
        self.config = config_module.load(folder / "gateway.toml")
        self.folders = Folders.from_config(self.config)
        self.folders.ensure(sources=self.config.sources)
        self.store = SqliteStore(folder / "var" / "gateway.db")
        (source,) = wire(self.config).sources()
        assert isinstance(source, SftpSource)
        self.source = source
        self.intake = Intake(self.config, self.store, self.folders, clock=lambda: NOW)
        self.server = server

    def put(self, name: str, data: bytes) -> Path:
        target = self.server.root / "in" / name
        target.write_bytes(data)
        self.server.chown(target)
        return target

    def poll_until_received(self, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.receipts()) < count:
            assert time.monotonic() < deadline, f"{len(self.receipts())} of {count} receipts"
            for candidate in self.source.scan():
                self.intake.process(candidate, self.source)
            self.source.end_batch()
            time.sleep(0.05)

    def receipts(self) -> list[etree._Element]:
        return [
            etree.parse(p.open("rb")).getroot()
            for p in sorted(self.folders.receipts.glob("*/*.kvittens.xml"))
        ]


def test_files_in_receipts_out_and_the_remote_folder_tidied(tmp_path: Path, sshd: SshServer) -> None:
    wired = Wired(tmp_path, sshd)
    wired.put("good.xml", EXAMPLE.read_bytes())
    wired.put("bad.xml", b"<not-a-case-file/>")
    wired.put("still-writing.xml.part", b"<Arende")
    wired.poll_until_received(2)
    statuses = sorted(r.findtext("k:Status", namespaces=KV) or "" for r in wired.receipts())
    assert statuses == ["Godkand", "Underkand"]
    remote = sshd.root / "in"
    assert sorted(p.name for p in remote.iterdir() if p.is_file()) == ["still-writing.xml.part"]
    assert [p.name for p in (remote / "processed").iterdir()] == ["good.xml"]
    assert [p.name for p in (remote / "rejected").iterdir()] == ["bad.xml"]
    assert len(list(wired.folders.archive.glob("*/*"))) == 1 and not list(
        wired.folders.staging.glob("*/*.xml")
    )


def test_after_delete_removes_the_remote_file(tmp_path: Path, sshd: SshServer) -> None:
    wired = Wired(tmp_path, sshd, after="delete")
    wired.put("good.xml", EXAMPLE.read_bytes())
    wired.poll_until_received(1)
    assert not [p for p in (sshd.root / "in").rglob("*") if p.is_file()]


def test_a_file_received_before_a_crash_is_tidied_not_received_twice(tmp_path: Path, sshd: SshServer) -> None:
    wired = Wired(tmp_path, sshd)
    wired.put("good.xml", EXAMPLE.read_bytes())
    original_finish = SftpSource.finish
    SftpSource.finish = lambda self, candidate, *, accepted: None  # type: ignore[method-assign]
    try:
        wired.poll_until_received(1)  # receipted, but the remote file was "not moved" (a crash)
    finally:
        SftpSource.finish = original_finish  # type: ignore[method-assign]
    assert (sshd.root / "in" / "good.xml").exists()
    deadline = time.monotonic() + 10
    while (sshd.root / "in" / "good.xml").exists():
        assert time.monotonic() < deadline
        for candidate in wired.source.scan():
            wired.intake.process(candidate, wired.source)
        wired.source.end_batch()
        time.sleep(0.05)
    assert len(wired.receipts()) == 1  # one receipt, the file now in processed/
    assert (sshd.root / "in" / "processed" / "good.xml").exists()


def test_a_slow_writer_is_not_taken_early(tmp_path: Path, sshd: SshServer) -> None:
    wired = Wired(tmp_path, sshd)
    data = EXAMPLE.read_bytes()
    target = sshd.root / "in" / "slow.xml"

    def write_slowly() -> None:
        with target.open("wb") as out:
            for start in range(0, len(data), 200):
                out.write(data[start : start + 200])
                out.flush()
                time.sleep(0.05)  # less than stable_seconds between chunks, 1 s in all

    writer = threading.Thread(target=write_slowly)
    target.touch()
    sshd.chown(target)
    writer.start()
    wired.poll_until_received(1)
    writer.join()
    (receipt,) = wired.receipts()
    assert receipt.findtext("k:Status", namespaces=KV) == "Godkand"
    assert receipt.findtext("k:Fil/k:Storlek", namespaces=KV) == str(len(data))


def test_a_wrong_host_key_is_refused_and_nothing_taken(tmp_path: Path, sshd: SshServer) -> None:
    wired = Wired(tmp_path, sshd, known_hosts=sshd.wrong_known_hosts(tmp_path / "wrong_known_hosts"))
    wired.put("good.xml", EXAMPLE.read_bytes())
    with pytest.raises(SourceError, match="host key"):
        wired.source.scan()
    assert (sshd.root / "in" / "good.xml").exists() and not list(wired.folders.staging.rglob("*.xml"))
    transport = SftpTransport(wired.source.endpoint)
    journal = tmp_path / "j.xml"
    journal.write_bytes(b"<x/>")
    with pytest.raises(PermanentDeliveryError, match="host key"):
        transport.deliver("j.xml", journal, sha256=hashlib.sha256(b"<x/>").hexdigest(), size=4)


def test_the_gateway_refuses_to_start_without_known_hosts(tmp_path: Path, sshd: SshServer) -> None:
    sshd.mkdir("in")
    (tmp_path / "gateway.toml").write_text(
        gateway_toml(sshd, delivery=False, known_hosts=tmp_path / "missing"), encoding="utf-8"
    )
    result = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "inkasso-gateway"),
            "config",
            "check",
            "--config",
            str(tmp_path / "gateway.toml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "known_hosts: no such file" in result.stderr


def test_journals_are_delivered_to_a_remote_folder_once_with_no_temporary_file(
    tmp_path: Path, sshd: SshServer
) -> None:
    wired = Wired(tmp_path, sshd)
    wired.put("good.xml", EXAMPLE.read_bytes())
    wired.poll_until_received(1)
    transport = wire(wired.config).transport()
    journals = JournalService(wired.config, wired.store, wired.folders, transport, clock=lambda: NOW)
    journals.seal()
    (result,) = journals.deliver_approved()
    assert result.delivered
    remote = sshd.root / "out"
    assert [p.name for p in remote.iterdir()] == ["lst-exempel-000001.xml"]
    assert (remote / "lst-exempel-000001.xml").read_bytes() == (
        wired.folders.sent / "lst-exempel-000001.xml"
    ).read_bytes()
    # A retry finds the finished remote file with the journal's bytes and does not upload again.
    sent = wired.folders.sent / "lst-exempel-000001.xml"
    sha256 = hashlib.sha256(sent.read_bytes()).hexdigest()
    again = transport.deliver("lst-exempel-000001.xml", sent, sha256=sha256, size=sent.stat().st_size)
    assert again.remote_name == "lst-exempel-000001.xml"
    # A different file under the journal's name is never overwritten, nor taken for it: not when
    # its size differs, and not when only its content does.
    other = tmp_path / "other.xml"
    other.write_bytes(b"something else entirely")
    with pytest.raises(PermanentDeliveryError, match="not overwritten"):
        transport.deliver("lst-exempel-000001.xml", other, sha256="1" * 64, size=other.stat().st_size)
    same_size = tmp_path / "same-size.xml"
    same_size.write_bytes(bytes(byte ^ 1 for byte in sent.read_bytes()))
    same_size_sha256 = hashlib.sha256(same_size.read_bytes()).hexdigest()
    with pytest.raises(PermanentDeliveryError, match="not overwritten"):
        transport.deliver(
            "lst-exempel-000001.xml", same_size, sha256=same_size_sha256, size=sent.stat().st_size
        )
    assert (remote / "lst-exempel-000001.xml").read_bytes() == sent.read_bytes()
    assert wired.store.journals(states=[JournalState.DELIVERED])


def test_sshd_down_for_a_while_mid_batch_loses_nothing(tmp_path: Path, sshd: SshServer) -> None:
    wired = Wired(tmp_path, sshd)
    for number in range(3):
        text = EXAMPLE.read_text(encoding="utf-8").replace("LST-EXEMPEL-20261124-01", f"BATCH-{number}")
        for reference in ("LST-2026-0412", "LST-2026-0419", "LST-2026-0425"):
            text = text.replace(reference, f"{reference}-{number}")
        for invoice in ("2026-10877", "2026-10912", "2026-10913", "501-4711-2026"):
            text = text.replace(f">{invoice}<", f">{invoice}-{number}<")
        wired.put(f"f{number}.xml", text.encode())
    sshd.stop()
    with pytest.raises(SourceError):
        wired.source.scan()
    sshd.start()
    wired.source._next_poll = 0.0
    wired.poll_until_received(3, timeout=30)
    assert sorted(r.findtext("k:Status", namespaces=KV) or "" for r in wired.receipts()) == ["Godkand"] * 3
    assert sorted(p.name for p in (sshd.root / "in" / "processed").iterdir()) == [
        "f0.xml",
        "f1.xml",
        "f2.xml",
    ]


def test_the_connection_checks_the_host_key_with_reject_policy(sshd: SshServer, tmp_path: Path) -> None:
    from gateway.adapters.sftp import Endpoint

    endpoint = Endpoint(
        "127.0.0.1", sshd.port, sshd.username, sshd.key_file, sshd.known_hosts, str(sshd.root)
    )
    with connect(endpoint) as sftp:
        assert sftp.normalize(".") == pwd.getpwnam(sshd.username).pw_dir  # logged in as the user
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with (
        pytest.raises(Exception, match="not in known_hosts"),
        connect(Endpoint("127.0.0.1", sshd.port, sshd.username, sshd.key_file, empty, str(sshd.root))),
    ):
        pass


def _case_file(number: int, cases: int) -> bytes:
    """A valid file of ``cases`` cases with references unique to ``number`` (bench/validate.py's generator)."""
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    from validate import case_file_chunks  # type: ignore[import-not-found]

    text = "".join(case_file_chunks(cases, seed=1000 + number))
    # The generator's references repeat across seeds: make them this file's own.
    for element in ("ArendeReferens", "Fakturanummer", "Diarienummer"):
        text = text.replace(f"<{element}>", f"<{element}>F{number}-")
    return text.replace("<Lopnummer>1</Lopnummer>", "").encode()


@pytest.mark.slow
def test_kill_9_mid_download_and_mid_upload_loses_and_doubles_nothing(
    tmp_path: Path, sshd: SshServer
) -> None:
    import random
    import signal

    seed = random.randrange(1_000_000)
    print(f"seed {seed}")
    rng = random.Random(seed)
    sshd.mkdir("in")
    sshd.mkdir("out")
    toml = "[gateway]\nscan_seconds = 0.2\n" + gateway_toml(sshd).replace(
        "[delivery]", '[delivery]\nschedule = "0 3 1 1 *"'
    )
    (tmp_path / "gateway.toml").write_text(toml, encoding="utf-8")
    files = 6
    for number in range(files):
        target = sshd.root / "in" / f"export-{number}.xml"
        target.write_bytes(_case_file(number, 3000))
        sshd.chown(target)
    command = [
        str(REPO / ".venv" / "bin" / "inkasso-gateway"),
        "run",
        "--config",
        str(tmp_path / "gateway.toml"),
    ]
    log = (tmp_path / "daemon.log").open("ab")

    def receipts() -> list[Path]:
        return sorted((tmp_path / "outbox" / "receipts").glob("2*/*.kvittens.xml"))

    for _ in range(6):  # kill -9 during intake, wherever it is
        daemon = subprocess.Popen(command, stdout=log, stderr=log)
        time.sleep(rng.uniform(0.3, 1.5))
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
    daemon = subprocess.Popen(command, stdout=log, stderr=log)
    deadline = time.monotonic() + 90
    while len(receipts()) < files and time.monotonic() < deadline:
        time.sleep(0.2)
    sealed = subprocess.run(
        [command[0], "journal", "seal", "--config", command[-1]], capture_output=True, text=True, check=True
    )
    assert "sealed" in sealed.stdout
    time.sleep(rng.uniform(0.1, 2.0))
    daemon.send_signal(signal.SIGKILL)  # somewhere in building or uploading the journal
    daemon.wait()
    log_file = tmp_path / "daemon.log"
    starts_before = log_file.read_text(errors="replace").count(" started: ")
    daemon = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not (sshd.root / "out" / "lst-exempel-000001.xml").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        while time.monotonic() < deadline and not list(
            (tmp_path / "outbox" / "receipts" / "journals").glob("*.xml")
        ):
            time.sleep(0.2)
    finally:
        # SIGTERM only once it has started: before its handlers are installed, SIGTERM is
        # Python's default, death by the signal, which says nothing about the gateway.
        deadline = time.monotonic() + 30
        while (
            log_file.read_text(errors="replace").count(" started: ") <= starts_before
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    assert len(receipts()) == files, (seed, [p.name for p in receipts()])
    names = [p.name.split(".xml.")[0] for p in receipts()]
    assert sorted(names) == sorted(f"export-{n}" for n in range(files)), seed  # one receipt per file
    roots = [etree.parse(p.open("rb")).getroot() for p in receipts()]
    accepted = [r for r in roots if r.findtext("k:Status", namespaces=KV) == "Godkand"]
    # A file that was in hand at three of the kills is quarantined (F08), by design; nothing else.
    for receipt in roots:
        if receipt not in accepted:
            assert receipt.findtext("k:Anmarkning/k:Regel", namespaces=KV) == "F08", seed
    assert accepted, seed
    assert sorted(p.name for p in (sshd.root / "in").iterdir() if p.is_file()) == []
    tidied = list((sshd.root / "in" / "processed").iterdir())
    if (sshd.root / "in" / "rejected").exists():
        tidied += list((sshd.root / "in" / "rejected").iterdir())
    assert len(tidied) == files, seed
    assert [p.name for p in (sshd.root / "out").iterdir()] == ["lst-exempel-000001.xml"], (
        seed
    )  # no temporary left
    delivered = (sshd.root / "out" / "lst-exempel-000001.xml").read_bytes()
    assert delivered == (tmp_path / "var" / "sent" / "lst-exempel-000001.xml").read_bytes()
    assert delivered.count(b"<Arende>") == 3000 * len(accepted), seed
    assert (tmp_path / "outbox" / "receipts" / "journals" / "lst-exempel-000001.xml.kvittens.xml").exists()


def test_the_same_file_uploaded_again_after_it_was_received_gets_its_own_receipt(
    tmp_path: Path, sshd: SshServer
) -> None:
    wired = Wired(tmp_path, sshd)
    wired.put("again.xml", EXAMPLE.read_bytes())
    wired.poll_until_received(1)
    assert (sshd.root / "in" / "processed" / "again.xml").exists()
    time.sleep(1.1)  # a new upload: the server shows a new modification time
    wired.put("again.xml", EXAMPLE.read_bytes())
    wired.poll_until_received(2)  # not tidied away as a crash leftover: a receipt of its own
    statuses = sorted(r.findtext("k:Status", namespaces=KV) or "" for r in wired.receipts())
    assert statuses == ["Dubblett", "Godkand"]
    assert not (sshd.root / "in" / "again.xml").exists()


def test_a_remote_name_that_is_not_utf8_is_answered_f01_and_never_hides_the_others(
    tmp_path: Path, sshd: SshServer
) -> None:
    wired = Wired(tmp_path, sshd)
    bad = Path(os.fsdecode(sshd.root / "in" / os.fsdecode(b"export-\xe5\xe4\xf6.xml")))  # Latin-1 åäö
    bad.write_bytes(EXAMPLE.read_bytes())
    sshd.chown(bad)
    wired.put(
        "good.xml", EXAMPLE.read_bytes().replace(b"LST-EXEMPEL-20261124-01", b"LST-EXEMPEL-20261124-09")
    )
    wired.poll_until_received(2)
    receipts = {r.findtext("k:Fil/k:Namn", namespaces=KV): r for r in wired.receipts()}
    assert receipts["export-\\xe5\\xe4\\xf6.xml"].findtext("k:Anmarkning/k:Regel", namespaces=KV) == "F01"
    assert receipts["good.xml"].findtext("k:Status", namespaces=KV) in ("Godkand", "Dubblett")
    # Moved away on the server under its own bytes; locally it lives under a safe name only.
    rejected = [os.fsencode(path.name) for path in (sshd.root / "in" / "rejected").iterdir()]
    assert rejected == [b"export-\xe5\xe4\xf6.xml"]
    assert [p for p in wired.folders.staging.iterdir() if p.is_file()] == []
    local_names = [p.name for p in wired.folders.var.rglob("*")]
    assert all(name.encode("utf-8", "surrogatepass").isascii() or name.isprintable() for name in local_names)
    assert not any("\udce5" in name for name in local_names)


# -- receipts back to the sender's server --------------------------------------------------------


def test_receipts_go_back_to_the_senders_server_also_after_it_was_down_while_they_were_due(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    wired = Wired(tmp_path, sshd, receipt_dir=True)
    kvittenser = sshd.root / "kvittenser"
    due_at_once = Backoff(base_seconds=0.0, max_seconds=0.0, jitter=0.0)
    returns = wired_returns(wired.store, wired.folders, wired.config, backoff=due_at_once)
    wired.put("good.xml", EXAMPLE.read_bytes())
    wired.poll_until_received(1)
    sshd.stop()
    assert list(returns.send_due().unreachable) == ["erp-sftp"]
    cli.main(["status", "--format", "json", "--config", str(tmp_path / "gateway.toml")])
    backlog = json.loads(capsys.readouterr().out)["receipt_uploads"]
    assert (backlog["pending"], backlog["failing"]) == (1, 1)
    sshd.start()
    assert returns.send_due().sent == 1
    (local,) = wired.folders.receipts.glob("*/*.kvittens.xml")
    remote = kvittenser / local.relative_to(wired.folders.receipts)
    assert remote.read_bytes() == local.read_bytes()
    # The journal receipt follows, so that the ERP learns which journal its cases went in.
    journals = JournalService(
        wired.config, wired.store, wired.folders, wire(wired.config).transport(), clock=lambda: NOW
    )
    journals.seal()
    (delivered,) = journals.deliver_approved()
    assert delivered.delivered and returns.send_due().sent == 1
    journal_receipt = wired.folders.journal_receipts / f"{delivered.file_name}.kvittens.xml"
    assert (kvittenser / "journals" / journal_receipt.name).read_bytes() == journal_receipt.read_bytes()
    assert sorted(
        p.relative_to(kvittenser).as_posix() for p in kvittenser.rglob("*") if p.is_file()
    ) == sorted(
        [remote.relative_to(kvittenser).as_posix(), f"journals/{journal_receipt.name}"]
    )  # nothing half-written left beside them


@pytest.mark.process
def test_a_daemon_killed_between_the_local_and_the_remote_receipt_sends_it_after_its_restart(
    tmp_path: Path, sshd: SshServer
) -> None:
    sshd.mkdir("in")
    sshd.mkdir("kvittenser")
    sftp_source = gateway_toml(sshd, delivery=False, receipt_dir=True).split("[[sources]]", 1)[1]
    installation = Installation(
        tmp_path / "gateway", scan_seconds=0.2, extra_config=f"\n[[sources]]{sftp_source}"
    )
    trigger = tmp_path / "die-before-the-upload"
    trigger.touch()
    target = sshd.root / "in" / "good.xml"
    target.write_bytes(EXAMPLE.read_bytes())
    sshd.chown(target)
    dying = installation.start(env={FAULT_ENV: f"exit-before-receipt-upload:{trigger}"})
    assert dying.wait(timeout=60) == 70, tail(dying.stderr())
    (local,) = installation.receipt_paths()  # published here, and not yet there
    remote = sshd.root / "kvittenser" / local.relative_to(installation.receipts)
    assert not remote.exists()
    daemon = installation.start()
    try:
        deadline = time.monotonic() + 60
        while not remote.exists():
            assert time.monotonic() < deadline, tail(daemon.stderr())
            time.sleep(0.1)
        status = json.loads(installation.cli("status", "--format", "json").stdout)
    finally:
        assert daemon.terminate(timeout=30) == 0
    assert remote.read_bytes() == local.read_bytes()
    assert status["receipt_uploads"]["pending"] == 0 and status["attention"] == []
    assert [p.name for p in remote.parent.iterdir()] == [remote.name]


@pytest.mark.process
def test_an_erp_that_only_drops_csv_files_on_an_sftp_server_gets_its_receipts_back_there(
    tmp_path: Path, sshd: SshServer
) -> None:
    """The issue's "done when": an Agresso open-items export (CSV, Windows-1252, with its mapping)
    dropped on the ERP's SFTP server is judged, and its receipt, then the receipt of the journal
    its cases went in, appear beside it on that server, whole and equal to the gateway's own."""
    sshd.mkdir("in")
    sshd.mkdir("kvittenser")
    mapping = REPO / "examples" / "agresso-kundreskontra.toml"
    sftp_source = gateway_toml(sshd, delivery=False, receipt_dir=True).split("[[sources]]", 1)[1]
    sftp_source += f'format = "csv"\nmapping = "{mapping}"\n'
    installation = Installation(
        tmp_path / "gateway", scan_seconds=0.2, extra_config=f"\n[[sources]]{sftp_source}"
    )
    export = REPO / "examples" / "lst-exempel-kundreskontra-2026-11-24.csv"
    target = sshd.root / "in" / export.name
    target.write_bytes(export.read_bytes())
    sshd.chown(target)
    kvittenser = sshd.root / "kvittenser"
    daemon = installation.start()
    try:
        deadline = time.monotonic() + 60
        while not list(kvittenser.glob("2*/*.kvittens.xml")):
            assert time.monotonic() < deadline, tail(daemon.stderr())
            time.sleep(0.1)
        installation.cli("journal", "seal")
        while not list(kvittenser.glob("journals/*.kvittens.xml")):
            assert time.monotonic() < deadline, tail(daemon.stderr())
            time.sleep(0.1)
    finally:
        assert daemon.terminate(timeout=30) == 0
    (local,) = installation.receipt_paths()
    remote = kvittenser / local.relative_to(installation.receipts)
    assert remote.read_bytes() == local.read_bytes()
    receipt = etree.parse(remote.open("rb")).getroot()
    assert receipt.findtext("k:Fil/k:Namn", namespaces=KV) == export.name
    assert receipt.findtext("k:Status", namespaces=KV) == "Godkand", etree.tostring(receipt)
    (journal_receipt,) = installation.journal_receipts.glob("*.kvittens.xml")
    assert (kvittenser / "journals" / journal_receipt.name).read_bytes() == journal_receipt.read_bytes()
    assert not [p for p in (sshd.root / "in").iterdir() if p.is_file()]  # taken, and tidied
