"""Receipts back to their senders, in milliseconds: the one transport putting a copy of a receipt
into a receipt folder over the shipped MemoryFileSystem (an SFTP server or a local folder), faults
injected; the queue of copies in the store surviving a restart, tried again with its backoff, sent
by one node; and the intake and journal service queuing them, over a real local receipt folder.
tests/test_sftp.py runs the same against a real sshd, and a daemon killed with -9 in between."""

from __future__ import annotations

import errno
import grp
import hashlib
import json
import os
import stat
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway import cli
from gateway import config as config_module
from gateway.adapters.folder import LocalFileSystem
from gateway.adapters.memory import MemoryFileSystem
from gateway.adapters.ports import Kind, Transport, UnreachableError
from gateway.adapters.sftp import SFTP_WORDING, SftpTransport
from gateway.adapters.transport import FileSystemTransport
from gateway.backoff import Backoff
from gateway.bootstrap import wire
from gateway.config import GatewayConfig
from gateway.errors import ConfigError, PermanentDeliveryError, TemporaryDeliveryError
from gateway.folders import Folders
from gateway.monitoring.facts import status_facts
from gateway.monitoring.health import readiness
from gateway.monitoring.metrics import LedgerCollector
from gateway.service.receipts import ReceiptReturns, copies_of
from gateway.store.sqlite import SqliteStore
from tests.conftest import EXAMPLE, SAMPLE_CONFIG
from tests.test_adapters import ENDPOINT
from tests.test_intake import NOW, Gateway

DAY = "2026-11-25"
NAME = f"{DAY}/lst-exempel-2026-11-24.xml.3033a297494b.kvittens.xml"
KVITTENSER = "/export/inkasso/kvittenser"
NO_JITTER = Backoff(base_seconds=5.0, max_seconds=900.0, jitter=0.0)


def receipt_file(tmp_path: Path, content: bytes = b"<Kvittens>" + b"<Arende/>" * 50 + b"</Kvittens>") -> Path:
    path = tmp_path / "outbox" / "receipts" / NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def put(transport: Transport, local: Path, name: str = NAME) -> None:
    data = local.read_bytes()
    transport.deliver(name, local, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def server_with_receipt_folder() -> MemoryFileSystem:
    server = MemoryFileSystem(wording=SFTP_WORDING)
    server.make(KVITTENSER, Kind.FOLDER)
    return server


def sftp_receipts(server: MemoryFileSystem) -> SftpTransport:
    """An SFTP source's receipt folder on its server (here in memory)."""
    return SftpTransport(replace(ENDPOINT, remote_dir=KVITTENSER), fs=server, what="receipt")


# -- the one transport, a receipt at a time ------------------------------------------------------


def test_a_receipt_goes_whole_into_its_days_folder_in_the_receipt_folder_under_its_local_name(
    tmp_path: Path,
) -> None:
    local = receipt_file(tmp_path)
    server = server_with_receipt_folder()
    put(sftp_receipts(server), local)
    assert server.names(KVITTENSER) == [DAY]
    assert server.names(f"{KVITTENSER}/{DAY}") == [NAME.split("/")[1]]
    assert server.read(f"{KVITTENSER}/{NAME}") == local.read_bytes()


def test_a_copy_already_there_is_sent_and_another_file_under_its_name_is_never_overwritten(
    tmp_path: Path,
) -> None:
    local = receipt_file(tmp_path)
    server = server_with_receipt_folder()
    transport = sftp_receipts(server)
    put(transport, local)
    server.fail("write", OSError(errno.EIO, "must not be written a second time"), times=None)
    put(transport, local)  # sent before a crash cut the bookkeeping short: it is there
    theirs = bytes(byte ^ 1 for byte in local.read_bytes())  # same size, other bytes
    server.write(f"{KVITTENSER}/{NAME}", theirs)
    with pytest.raises(PermanentDeliveryError, match="not overwritten"):
        put(transport, local)
    assert server.read(f"{KVITTENSER}/{NAME}") == theirs
    # A local receipt folder says what it keeps from being overwritten.
    folder = MemoryFileSystem()
    folder.write(f"/srv/erp/kvittenser/{NAME}", b"someone else's")
    with pytest.raises(PermanentDeliveryError, match=r"the receipt is not overwritten$"):
        put(FileSystemTransport(folder, "/srv/erp/kvittenser", kind="folder", what="receipt"), local)


def test_a_receipt_folder_that_is_not_there_is_never_made_and_the_copy_waits(tmp_path: Path) -> None:
    local = receipt_file(tmp_path)
    server = MemoryFileSystem(wording=SFTP_WORDING)
    with pytest.raises(TemporaryDeliveryError):
        put(sftp_receipts(server), local)
    assert not server.exists(KVITTENSER)


@pytest.mark.parametrize(
    "error", [UnreachableError("Connection reset by peer"), OSError(errno.ENOSPC, "No space left on device")]
)
def test_a_copy_cut_short_leaves_no_half_file_and_the_next_try_sends_it(
    tmp_path: Path, error: BaseException
) -> None:
    local = receipt_file(tmp_path)
    server = server_with_receipt_folder()
    server.fail("write", error)
    with pytest.raises(TemporaryDeliveryError):
        put(sftp_receipts(server), local)
    assert server.names(f"{KVITTENSER}/{DAY}") == []
    put(sftp_receipts(server), local)
    assert server.read(f"{KVITTENSER}/{NAME}") == local.read_bytes()


def test_a_local_copy_is_readable_by_the_sources_group_and_nobody_else_whatever_the_umask(
    tmp_path: Path,
) -> None:
    local = receipt_file(tmp_path)
    group = os.getgroups()[-1] if os.geteuid() != 0 else grp.getgrnam("nogroup").gr_gid
    folder = tmp_path / "erp-kvittenser"
    folder.mkdir()
    previous = os.umask(0o077)  # the daemon's
    try:
        put(
            FileSystemTransport(
                LocalFileSystem(group=group), str(folder), kind="folder", mode=0o640, what="receipt"
            ),
            local,
        )
    finally:
        os.umask(previous)
    copy = folder / NAME
    assert copy.read_bytes() == local.read_bytes()
    assert (stat.S_IMODE(copy.stat().st_mode), copy.stat().st_gid) == (0o640, group)
    day = copy.parent  # made by the gateway: the group passes through it to the receipts
    assert (stat.S_IMODE(day.stat().st_mode), day.stat().st_gid) == (0o750, group)
    assert [p.name for p in (folder / DAY).iterdir()] == [copy.name]  # no temporary left


# -- the queue: survives a restart, backs off, one node sends ------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def queue_setup(tmp_path: Path) -> tuple[Folders, SqliteStore, Path]:
    """A published receipt of source erp and its copy queued, as the intake leaves them."""
    (tmp_path / "gateway.toml").write_text(SAMPLE_CONFIG, encoding="utf-8")
    folders = Folders.from_config(config_module.load(tmp_path / "gateway.toml"))
    (tmp_path / "var").mkdir()
    store = SqliteStore(tmp_path / "var" / "gateway.db")
    local = receipt_file(tmp_path)
    store.queue_receipt_uploads(copies_of(folders, local, sources=["erp"], subject="file:1"), now=NOW)
    return folders, store, local


def returns(store: SqliteStore, folders: Folders, server: MemoryFileSystem, clock: Clock) -> ReceiptReturns:
    return ReceiptReturns(
        store, folders, {"erp": sftp_receipts(server)}, clock=clock, lease_seconds=30.0, backoff=NO_JITTER
    )


def test_a_copy_that_failed_is_tried_again_after_its_backoff_also_after_a_restart(tmp_path: Path) -> None:
    folders, store, local = queue_setup(tmp_path)
    server, clock = server_with_receipt_folder(), Clock()
    server.fail("write", UnreachableError("Connection refused"))
    result = returns(store, folders, server, clock).send_due()
    assert (result.sent, result.failed, list(result.unreachable)) == (0, 1, ["erp"])
    backlog = store.receipt_upload_backlog(limit=10)
    assert (backlog.pending, backlog.failing, backlog.oldest_queued_at) == (1, 1, NOW)
    facts = status_facts(config_module.load(tmp_path / "gateway.toml"), now=NOW)
    (check,) = readiness(facts, now=NOW)[1]["checks"]["receipts:backlog"]
    assert (check["status"], check["observedValue"]) == ("warn", 1)
    config = config_module.load(tmp_path / "gateway.toml")
    scraped = {
        sample.labels["state"]: sample.value
        for metric in LedgerCollector(config, wire(config).open_reader).collect()
        if metric.name == "inkasso_gateway_receipt_uploads"
        for sample in metric.samples
    }
    assert scraped == {"pending": 1, "failing": 1, "refused": 0}
    clock.now = NOW + timedelta(seconds=4)
    assert returns(store, folders, server, clock).send_due().sent == 0  # not yet: 5 s
    store.close()
    store = SqliteStore(tmp_path / "var" / "gateway.db")  # a restart: the queue is in the store
    clock.now = NOW + timedelta(seconds=5)
    assert returns(store, folders, server, clock).send_due().sent == 1
    assert server.read(f"{KVITTENSER}/{NAME}") == local.read_bytes()
    assert store.receipt_upload_backlog(limit=10).pending == 0
    assert returns(store, folders, server, clock).send_due().sent == 0  # sent once


def test_a_refused_copy_waits_for_a_person_and_is_tried_again_at_the_next_start(tmp_path: Path) -> None:
    folders, store, local = queue_setup(tmp_path)
    server, clock = server_with_receipt_folder(), Clock()
    server.write(f"{KVITTENSER}/{NAME}", b"the ERP's own file")
    assert returns(store, folders, server, clock).send_due().refused == 1
    clock.now = NOW + timedelta(days=1)
    assert returns(store, folders, server, clock).send_due().refused == 0  # never tried on its own
    (refused,) = store.receipt_upload_backlog(limit=10).refused
    assert refused.name == NAME and "not overwritten" in (refused.last_error or "")
    server.remove(f"{KVITTENSER}/{NAME}")  # a person clears the name, then restarts
    restarted = returns(store, folders, server, clock)
    assert restarted.retry_refused() == 1
    assert restarted.send_due().sent == 1
    assert server.read(f"{KVITTENSER}/{NAME}") == local.read_bytes()


def test_a_copy_another_node_is_sending_is_left_to_it(tmp_path: Path) -> None:
    folders, store, _ = queue_setup(tmp_path)
    other = SqliteStore(tmp_path / "var" / "gateway.db", lease_holder="another-node.example:4242")
    (upload,) = other.due_receipt_uploads(now=NOW, limit=10)
    assert other.take_lease(f"receipt-upload:{upload.id}", now=NOW, lease_seconds=30.0)
    server = server_with_receipt_folder()
    assert returns(store, folders, server, Clock()).send_due().sent == 0
    assert not server.exists(f"{KVITTENSER}/{NAME}")
    other.release_lease(f"receipt-upload:{upload.id}")
    assert returns(store, folders, server, Clock()).send_due().sent == 1
    other.close()


# -- the intake and the journals queue copies ----------------------------------------------------


def wired_returns(
    store: SqliteStore, folders: Folders, config: GatewayConfig, *, backoff: Backoff = NO_JITTER
) -> ReceiptReturns:
    """What the daemon sends copies of receipts with, as the composition root wires it."""
    return ReceiptReturns(
        store, folders, wire(config).receipt_folders(), clock=lambda: NOW, lease_seconds=30.0, backoff=backoff
    )


RECEIPTS_BACK = SAMPLE_CONFIG + 'stable_seconds = 0.001\nreceipt_dir = "erp-kvittenser"\n'


def test_the_sender_gets_each_receipt_and_the_journal_receipt_of_its_cases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gateway.toml").write_text(RECEIPTS_BACK, encoding="utf-8")
    gateway = Gateway(tmp_path, config=RECEIPTS_BACK)
    back = tmp_path / "erp-kvittenser"
    gateway.drop_and_process(EXAMPLE)
    sender = wired_returns(gateway.store, gateway.folders, gateway.config)
    assert cli.main(["status", "--format", "json", "--config", str(tmp_path / "gateway.toml")]) == 3
    assert json.loads(capsys.readouterr().out)["receipt_uploads"]["pending"] == 1
    assert sender.send_due().sent == 1
    (local,) = gateway.folders.receipts.glob("*/*.kvittens.xml")
    copy = back / local.relative_to(gateway.folders.receipts)
    assert copy.read_bytes() == local.read_bytes() and stat.S_IMODE(copy.stat().st_mode) == 0o640
    gateway.journals.seal()
    (delivered,) = gateway.journals.deliver_approved()
    assert sender.send_due().sent == 1
    journal_receipt = gateway.folders.journal_receipts / f"{delivered.file_name}.kvittens.xml"
    assert (back / "journals" / journal_receipt.name).read_bytes() == journal_receipt.read_bytes()
    assert cli.main(["status", "--format", "json", "--config", str(tmp_path / "gateway.toml")]) == 3
    assert json.loads(capsys.readouterr().out)["receipt_uploads"] == {
        "pending": 0,
        "failing": 0,
        "oldest_queued_at": None,
        "refused": [],
    }


def test_a_refused_copy_is_listed_by_status_as_waiting_for_a_person(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gateway.toml").write_text(RECEIPTS_BACK, encoding="utf-8")
    gateway = Gateway(tmp_path, config=RECEIPTS_BACK)
    gateway.drop_and_process(EXAMPLE)
    (local,) = gateway.folders.receipts.glob("*/*.kvittens.xml")
    taken = tmp_path / "erp-kvittenser" / local.relative_to(gateway.folders.receipts)
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"the ERP's own file")
    sender = wired_returns(gateway.store, gateway.folders, gateway.config)
    assert sender.send_due().refused == 1
    cli.main(["status", "--format", "json", "--config", str(tmp_path / "gateway.toml")])
    status = json.loads(capsys.readouterr().out)
    (refused,) = status["receipt_uploads"]["refused"]
    assert refused["source"] == "erp" and refused["name"] == str(local.relative_to(gateway.folders.receipts))
    assert [item["kind"] for item in status["attention"]] == ["receipt-refused"]
    assert taken.read_bytes() == b"the ERP's own file"


# -- configuration -------------------------------------------------------------------------------


def sftp_source(receipt_dir: str) -> str:
    return (
        SAMPLE_CONFIG.replace(
            'name = "erp"\ntype = "folder"\npath = "inbox"', 'name = "erp-sftp"\ntype = "sftp"'
        )
        + 'host = "sftp.example"\nusername = "u"\nkey_file = "k"\nknown_hosts = "kh"\nremote_dir = "/export/inkasso"\n'
        + f'receipt_dir = "{receipt_dir}"\n'
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            sftp_source("kvittenser"),
            "sources[0].receipt_dir: 'kvittenser' must be an absolute path on the source's server",
        ),
        (
            sftp_source("/export/inkasso/"),
            "sources[0].receipt_dir: /export/inkasso/ is the source's remote_dir",
        ),
        (
            SAMPLE_CONFIG + 'receipt_dir = "inbox/kvittenser"\n',
            "sources[0].receipt_dir lies inside sources[0].path",
        ),
        (
            SAMPLE_CONFIG + 'receipt_dir = "outbox/receipts/erp"\n',
            "lies inside gateway.data_dir (its outbox/receipts/)",
        ),
    ],
)
def test_a_receipt_folder_that_cannot_work_is_refused_naming_its_key(
    tmp_path: Path, text: str, problem: str
) -> None:
    (tmp_path / "gateway.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        config_module.load(tmp_path / "gateway.toml")
    assert any(problem in found for found in raised.value.problems), raised.value.problems


def test_a_receipt_folder_outside_the_data_folder_must_exist_and_one_inside_is_made(tmp_path: Path) -> None:
    elsewhere = tmp_path / "erp" / "kvittenser"
    (tmp_path / "data").mkdir()
    text = f'[gateway]\ndata_dir = "data"\n{SAMPLE_CONFIG}receipt_dir = "{elsewhere}"\n'
    (tmp_path / "gateway.toml").write_text(text, encoding="utf-8")
    config = config_module.load(tmp_path / "gateway.toml")
    assert config.sources[0].receipt_dir == str(elsewhere)
    (problem,) = Folders.from_config(config).problems(sources=config.sources)
    assert problem.startswith(f"sources[0].receipt_dir: {elsewhere} does not exist")
    assert not elsewhere.exists()
    inside = f'[gateway]\ndata_dir = "data"\n{SAMPLE_CONFIG}receipt_dir = "kvittenser"\n'
    (tmp_path / "gateway.toml").write_text(inside, encoding="utf-8")
    config = config_module.load(tmp_path / "gateway.toml")
    assert config.sources[0].receipt_dir == str(tmp_path / "data" / "kvittenser")
    assert Folders.from_config(config).problems(sources=config.sources) == []
