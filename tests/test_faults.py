"""Faults around the files, with the real daemon: full and read-only disks, a store lock held by
another process, files the gateway may not read, foreign owners, odd names, a store behind the
data folder.

What is checked is what an operator and an auditor see: the daemon stays up, says once what it
waits for (the log, `status --format json`), takes every file once the fault is gone, and never
counts the environment's fault against a file (no F08 quarantine). The machine's own powers come
from tests/system.py: a small tmpfs filled to the last byte, a real second Unix user, a real
``sqlite3`` process holding the store's write lock, a daemon running without root's powers.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_harness import (
    Gateway,
    case_file,
    cases,
    drop,
    tail,
    wait_for,
)
from tests.system import (
    WITHOUT_ROOT_POWERS,
    StoreLock,
    as_producer,
    fill,
    make_group_inbox,
    needs_root,
    producer,
    remount,
    shared_folder,
    tmpfs,
)

pytestmark = [pytest.mark.integration, pytest.mark.root, pytest.mark.process, needs_root]

MakeGateway = Callable[..., Gateway]


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[MakeGateway]:
    made: list[Gateway] = []

    def make(root: Path | None = None, **settings: Any) -> Gateway:
        gateway = Gateway(root or tmp_path / f"gw{len(made)}", **settings)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.stop_all()


def status(gw: Gateway) -> dict[str, Any]:
    # A daemon launched a moment ago may not hold its lock nor have made its store yet: `status`
    # would rightly say "not running" (3) or "no store" (2). Ask once every daemon has started.
    wait_for(lambda: all(p.started() for p in gw.processes), timeout=30, what="the daemon started")
    result = gw.cli("status", "--format", "json", check=False)
    assert result.returncode in (0, 1, 3), result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def paused(gw: Gateway, scope: str) -> dict[str, Any] | None:
    return next((pause for pause in status(gw)["paused"] if pause["scope"] == scope), None)


def unique_file(n: int, prefix: str = "F") -> bytes:
    return case_file(f"{prefix}-{n}", cases(f"{prefix}{n:03d}", 2))


def assert_every_file_received_once(gw: Gateway, names: list[str]) -> None:
    # A receipt is out a moment before its file leaves the inbox.
    wait_for(lambda: not gw.inbox_names(), timeout=10, what="an empty inbox")
    receipts = gw.receipts_by_name()  # AssertionError when a file has two
    missing = sorted(set(names) - set(receipts))
    assert not missing, f"no receipt for {missing[:5]}"
    quarantined = [name for name, receipt in receipts.items() if "F08" in receipt.file_codes]
    assert not quarantined, f"the environment's fault was counted against {quarantined[:5]}"
    assert gw.inbox_names() == []
    audit = gw.cli("audit", "verify", check=False)
    assert audit.returncode == 0, audit.stdout + audit.stderr


# -- disks: full and read-only ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_full_outbox_pauses_intake_and_every_file_is_received_once_it_has_room(
    make_gateway: MakeGateway,
) -> None:
    gw = make_gateway()
    with tmpfs(gw.outbox, size_kb=2048):
        filler = fill(gw.outbox)
        daemon = gw.start()
        names = [f"full-{n:03d}.xml" for n in range(100)]
        for n, name in enumerate(names):
            drop(gw.inbox, name, unique_file(n))
        pause = wait_for(lambda: paused(gw, "intake"), timeout=20, what="intake paused", daemon=daemon)
        assert "No space left" in pause["cause"] and pause["waits_for"] == "free space"
        time.sleep(4)  # several backoff rounds while full
        assert daemon.alive()
        assert gw.receipt_paths() == []
        filler.unlink()
        wait_for(
            lambda: len(gw.receipt_paths()) == len(names) and not gw.inbox_names(),
            timeout=90,
            what="100 receipts once the outbox has room",
            daemon=daemon,
        )
        assert paused(gw, "intake") is None
        assert_every_file_received_once(gw, names)
        log = daemon.stderr()
        assert log.count("intake paused") == 1, tail(log)  # told once, not once per try
        assert log.count("intake resumed") == 1
        assert "Traceback" not in log
        assert daemon.terminate() == 0


@pytest.mark.slow
def test_a_read_only_outbox_for_a_few_seconds_quarantines_nothing(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    with tmpfs(gw.outbox, size_kb=4096):
        daemon = gw.start()
        drop(gw.inbox, "before.xml", unique_file(0, "RO"))
        wait_for(lambda: gw.receipt_for("before.xml"), timeout=20, what="the first receipt", daemon=daemon)
        remount(gw.outbox, read_only=True)
        names = [f"ro-{n:02d}.xml" for n in range(30)]
        for n, name in enumerate(names, start=1):
            drop(gw.inbox, name, unique_file(n, "RO"))
        pause = wait_for(lambda: paused(gw, "intake"), timeout=20, what="intake paused", daemon=daemon)
        assert pause["waits_for"] == "the file system to be writable again"
        time.sleep(3)
        remount(gw.outbox, read_only=False)
        wait_for(
            lambda: len(gw.receipt_paths()) == len(names) + 1,
            timeout=60,
            what="31 receipts once the outbox is writable",
            daemon=daemon,
        )
        assert_every_file_received_once(gw, ["before.xml", *names])
        assert daemon.terminate() == 0


@pytest.mark.slow
@pytest.mark.parametrize("full", ["var", "data folder"])
def test_a_full_var_or_data_folder_never_ends_the_daemon_even_at_start(
    make_gateway: MakeGateway, tmp_path: Path, full: str
) -> None:
    root = tmp_path / "data"
    with tmpfs(root if full == "data folder" else root / "var", size_kb=4096):
        gw = make_gateway(root, logs_dir=tmp_path / "logs")  # the logs stay readable on a full disk
        daemon = gw.start()
        drop(gw.inbox, "first.xml", unique_file(0, "V"))
        wait_for(lambda: gw.receipt_for("first.xml"), timeout=20, what="the first receipt", daemon=daemon)
        assert daemon.terminate() == 0
        names = [f"later-{n}.xml" for n in range(5)]
        for n, name in enumerate(names, start=1):
            drop(gw.inbox, name, unique_file(n, "V"))
        filler = fill(gw.var)
        again = gw.start()
        time.sleep(6)  # the old gateway ended after 0.8 s when started on a full disk
        assert again.alive(), tail(again.stderr())
        assert status(gw)["paused"], "status shows what is paused"
        filler.unlink()
        wait_for(
            lambda: len(gw.receipt_paths()) == len(names) + 1,
            timeout=60,
            what="every file once there is room",
            daemon=again,
        )
        assert_every_file_received_once(gw, ["first.xml", *names])
        assert "Traceback" not in again.stderr()
        assert again.terminate() == 0


# -- the store: its lock held elsewhere, damaged, behind the files ----------------------------------


@pytest.mark.slow
def test_a_store_lock_held_for_75_s_pauses_the_daemon_and_never_the_read_only_commands(
    make_gateway: MakeGateway,
) -> None:
    gw = make_gateway()
    daemon = gw.start()
    drop(gw.inbox, "before.xml", unique_file(0, "L"))
    wait_for(lambda: gw.receipt_for("before.xml"), timeout=20, what="the first receipt", daemon=daemon)
    lock = StoreLock(gw.db)
    try:
        locked_at = time.monotonic()
        names = [f"locked-{n}.xml" for n in range(3)]
        for n, name in enumerate(names, start=1):
            drop(gw.inbox, name, unique_file(n, "L"))
        for command in (
            ("status",),
            ("journal", "list"),
            ("journal", "show", "lst-exempel-j1"),
            ("trace", "before.xml"),
            ("audit", "verify"),
            ("report",),
        ):
            started = time.monotonic()
            result = gw.cli(*command, check=False)
            assert time.monotonic() - started < 10, f"{command} waited behind the lock"
            assert "locked" not in result.stderr and result.returncode in (0, 1), (command, result.stderr)
        # A command that writes waits for the lock for a while, then says so (exit 2), nothing done.
        sealed = gw.cli("journal", "seal", check=False, timeout=90)
        assert sealed.returncode == 2 and "write lock" in sealed.stderr, sealed.stderr
        assert "Traceback" not in sealed.stderr
        assert wait_for(lambda: paused(gw, "store"), timeout=30, what="the store paused", daemon=daemon)
        while time.monotonic() - locked_at < 75:
            assert daemon.alive(), tail(daemon.stderr())
            time.sleep(1)
    finally:
        lock.release()
    wait_for(
        lambda: len(gw.receipt_paths()) == 4, timeout=60, what="the files dropped meanwhile", daemon=daemon
    )
    assert_every_file_received_once(gw, ["before.xml", *names])
    log = daemon.stderr()
    assert log.count("store paused") == 1, tail(log)
    assert daemon.terminate() == 0


def _damage_an_index(database: Path) -> None:
    """Overwrite the root page of the index on files(sha256) with garbage."""
    import sqlite3

    db = sqlite3.connect(database)
    (page,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'files_sha256'").fetchone()
    (page_size,) = db.execute("PRAGMA page_size").fetchone()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    with database.open("r+b") as handle:
        handle.seek((page - 1) * page_size)
        handle.write(b"\xff" * page_size)


@pytest.mark.slow
def test_a_damaged_store_pauses_with_one_log_line_and_no_hot_loop(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    daemon = gw.start()
    drop(gw.inbox, "first.xml", unique_file(0, "D"))
    wait_for(lambda: gw.receipt_for("first.xml"), timeout=20, what="the first receipt", daemon=daemon)
    assert daemon.terminate() == 0
    _damage_an_index(gw.db)
    again = gw.start()
    drop(gw.inbox, "second.xml", unique_file(1, "D"))
    pause = wait_for(lambda: paused(gw, "store"), timeout=20, what="the store paused", daemon=again)
    assert "damaged" in pause["cause"]
    time.sleep(8)
    assert again.alive()
    log = again.stderr()
    assert log.count("store paused") == 1, tail(log)
    assert len(log.splitlines()) < 20, "a hot loop: " + tail(log)
    assert again.terminate() == 0


@pytest.mark.parametrize("loss", ["deleted", "restored from an older copy", "its WAL lost after kill -9"])
def test_a_store_behind_the_data_folder_refuses_to_start_and_says_what_is_ahead(
    make_gateway: MakeGateway, tmp_path: Path, loss: str
) -> None:
    gw = make_gateway()
    daemon = gw.start()
    drop(gw.inbox, "one.xml", unique_file(0, "B"))
    wait_for(lambda: gw.receipt_for("one.xml"), timeout=20, what="the first receipt", daemon=daemon)
    if loss == "restored from an older copy":
        backup = tmp_path / "backup.db"
        gw.cli("status")  # a consistent copy: SQLite's online backup
        import sqlite3

        with sqlite3.connect(gw.db) as source, sqlite3.connect(backup) as target:
            source.backup(target)
    drop(gw.inbox, "two.xml", unique_file(1, "B"))
    wait_for(lambda: gw.receipt_for("two.xml"), timeout=20, what="the second receipt", daemon=daemon)
    before = sorted(str(p) for p in gw.root.rglob("*") if p.is_file() and "logs" not in p.parts)
    if loss == "deleted":
        assert daemon.terminate() == 0
        for suffix in ("", "-wal", "-shm"):
            Path(f"{gw.db}{suffix}").unlink(missing_ok=True)
    elif loss == "restored from an older copy":
        assert daemon.terminate() == 0
        for suffix in ("-wal", "-shm"):
            Path(f"{gw.db}{suffix}").unlink(missing_ok=True)
        (tmp_path / "backup.db").replace(gw.db)
    else:
        daemon.kill()
        Path(f"{gw.db}-wal").unlink()
    refused = gw.start()
    code = refused.proc.wait(timeout=30)
    log = refused.stderr()
    assert code == 2, tail(log)
    assert "behind the data folder" in log and "two.xml" in log, tail(log)
    assert "Traceback" not in log
    check = gw.cli("config", "check", check=False)
    assert check.returncode == 2 and "behind the data folder" in check.stderr, check.stderr
    if loss == "deleted":
        assert not gw.db.exists(), "no empty store is left behind"
    after = sorted(str(p) for p in gw.root.rglob("*") if p.is_file() and "logs" not in p.parts)
    assert [
        p for p in after if "gateway.db" not in p and "daemon.state" not in p and "gateway.lock" not in p
    ] == [
        p for p in before if "gateway.db" not in p and "daemon.state" not in p and "gateway.lock" not in p
    ], "nothing in the data folder was touched"


# -- files the gateway may not read, and files of another owner -------------------------------------


@pytest.mark.slow
def test_foreign_files_are_copied_in_never_changed_and_an_unreadable_one_waits_quietly(
    make_gateway: MakeGateway,
) -> None:
    """The gateway runs without root's powers; a separate ERP account writes into a group inbox."""
    erp = producer()
    base = shared_folder()
    try:
        root = base / "gateway"
        root.mkdir()
        root.chmod(0o711)  # others may pass through to the inbox, not look around
        erp_home = base / "erp"
        erp_home.mkdir()
        os.chown(erp_home, erp.pw_uid, erp.pw_gid)
        gw = make_gateway(root, command_prefix=WITHOUT_ROOT_POWERS)
        make_group_inbox(gw.inbox)
        sources = base / "sources"
        sources.mkdir(mode=0o755)
        for n, name in enumerate(("open.xml", "closed.xml", "export.xml")):
            (sources / name).write_bytes(unique_file(n, "FO"))
            (sources / name).chmod(0o644)
        # The ERP's own copy of an export, hard-linked into the inbox: a file the gateway did
        # not create and must never change (not even its mode through the shared inode).
        as_producer(f"cp {sources / 'export.xml'} {erp_home / 'export.xml'}")
        as_producer(f"ln {erp_home / 'export.xml'} {gw.inbox / 'linked.xml'}")
        as_producer(
            f"cp {sources / 'open.xml'} {gw.inbox / 'open.xml.part'} && mv {gw.inbox / 'open.xml.part'} {gw.inbox / 'open.xml'}"
        )
        # One the gateway's user may not read (the producer's umask was wrong).
        as_producer(
            f"cp {sources / 'closed.xml'} {gw.inbox / 'closed.xml'} && chmod 600 {gw.inbox / 'closed.xml'}"
        )
        daemon = gw.start()
        wait_for(
            lambda: gw.receipt_for("open.xml") and gw.receipt_for("linked.xml"),
            timeout=30,
            what="the readable files' receipts",
            daemon=daemon,
        )
        mine = erp_home / "export.xml"
        assert mine.stat().st_mode & 0o777 == 0o644 and mine.stat().st_nlink == 1
        assert mine.read_bytes() == (sources / "export.xml").read_bytes()
        for archived in gw.placed(gw.archive):
            info = archived.stat()
            assert (info.st_uid, info.st_mode & 0o777, info.st_nlink) == (0, 0o600, 1), archived
        waiting = wait_for(
            lambda: [w for w in status(gw)["waiting_files"] if w["name"] == "closed.xml"],
            timeout=20,
            what="status showing the unreadable file",
            daemon=daemon,
        )
        assert waiting[0]["cause"] == "unreadable"
        time.sleep(8)
        log = daemon.stderr()
        assert log.count("closed.xml from erp cannot be taken now") == 1, tail(log)
        assert log.count("closed.xml from erp claimed") == 0
        as_producer(f"chmod 644 {gw.inbox / 'closed.xml'}")
        wait_for(
            lambda: gw.receipt_for("closed.xml"), timeout=60, what="the file once readable", daemon=daemon
        )
        assert_every_file_received_once(gw, ["open.xml", "linked.xml", "closed.xml"])
        assert daemon.terminate() == 0
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


# -- names ------------------------------------------------------------------------------------------


def test_odd_names_each_get_one_receipt_and_nothing_is_overwritten_or_forged(
    make_gateway: MakeGateway,
) -> None:
    gw = make_gateway()
    long_name = "x" * 196 + ".xml"  # 200 characters: cut in the receipt's name
    longest = "y" * 250 + ".xml"  # 254 bytes: the most a name can have
    swedish = "ö" * 125 + ".xml"  # 254 bytes of UTF-8 in 129 characters
    forged = "a\n2026-11-29 00:00:00,000 INFO    gateway.daemon: forged.xml"
    not_utf8 = os.fsdecode(b"bad\xffname.xml")
    daemon = gw.start()
    for n, name in enumerate((long_name, longest, swedish, forged, not_utf8)):
        # Written in place (a name of 254 bytes has no room for ".part"): taken once stable.
        (gw.inbox / name).write_bytes(unique_file(n, "N"))
    os.mkfifo(gw.inbox / "pipe.xml")
    (gw.inbox / "folder.xml").mkdir()
    wait_for(lambda: len(gw.receipt_paths()) == 5, timeout=30, what="five receipts", daemon=daemon)
    # The long name again, the same bytes on the same day: a Dubblett with a receipt of its own.
    (gw.inbox / long_name).write_bytes(unique_file(0, "N"))
    wait_for(lambda: len(gw.receipt_paths()) == 6, timeout=30, what="the duplicate's receipt", daemon=daemon)
    assert all(len(path.name.encode()) <= 255 for path in gw.receipt_paths())
    receipts = [
        (receipt.name, receipt.status, receipt.file_codes)
        for receipt in (_parse(path) for path in gw.receipt_paths())
    ]
    by_name: dict[str, list[tuple[str, list[str]]]] = {}
    for name, state, codes in receipts:
        by_name.setdefault(name, []).append((state, codes))
    assert sorted(state for state, _ in by_name[long_name]) == ["Dubblett", "Godkand"]
    assert by_name[longest] == [("Godkand", [])]
    assert by_name[swedish] == [("Godkand", [])]
    assert by_name["bad\\xffname.xml"] == [("Underkand", ["F01"])], by_name.keys()
    time.sleep(2)  # long enough for a hot loop to show
    log = daemon.stderr()
    assert not [line for line in log.splitlines() if line.startswith("2026-11-29 00:00:00,000")], (
        "a forged line"
    )
    assert "a\\n2026-11-29" in log
    assert log.count("claimed (attempt") == 6, "each file judged once: " + tail(log)
    assert log.count("pipe.xml is a named pipe") == 1 and log.count("folder.xml is a folder") == 1
    (source,) = status(gw)["sources"]
    assert sorted(item["name"] for item in source["not_taken"]) == ["folder.xml", "pipe.xml"]
    assert sorted(gw.inbox_names()) == ["folder.xml", "pipe.xml"]
    audit = gw.cli("audit", "verify", check=False)
    assert audit.returncode == 0, audit.stdout
    assert daemon.terminate() == 0


def _parse(path: Path) -> Any:
    from tests.daemon_harness import parse_receipt

    return parse_receipt(path)


# -- a person's `journal send` after an outage -------------------------------------------------------


@pytest.mark.slow
def test_journal_send_after_an_outage_delivers_now_instead_of_waiting_for_the_backoff(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    destination = tmp_path / "destination"
    gw = make_gateway(extra_config="")
    gw.config.write_text(
        gw.config.read_text(encoding="utf-8").replace('path = "outbox/journals"', f'path = "{destination}"'),
        encoding="utf-8",
    )
    with tmpfs(destination, size_kb=1024):
        daemon = gw.start()
        drop(gw.inbox, "out.xml", unique_file(0, "S"))
        wait_for(lambda: gw.receipt_for("out.xml"), timeout=20, what="the receipt", daemon=daemon)
        remount(destination, read_only=True)  # the share goes read-only before delivery time
        gw.cli("journal", "seal")
        wait_for(lambda: paused(gw, "delivery"), timeout=30, what="delivery paused", daemon=daemon)
        time.sleep(6)  # failing repeatedly: the next retry is now some seconds away
        assert daemon.terminate() == 0
        remount(destination, read_only=False)
        started = time.monotonic()
        sent = gw.cli("journal", "send", check=False)
        assert sent.returncode == 0 and "delivered" in sent.stdout, sent.stdout + sent.stderr
        assert time.monotonic() - started < 15
        assert [p.name for p in destination.iterdir()] == ["lst-exempel-000001.xml"]
        digest = hashlib.sha256((destination / "lst-exempel-000001.xml").read_bytes()).hexdigest()
        assert digest == hashlib.sha256((gw.sent / "lst-exempel-000001.xml").read_bytes()).hexdigest()
