"""The SQLite store's own: its file, migrations, WAL and read-only opening, locks, leases on this
machine, and sqlite3's errors as the gateway's. What every store does is in the contract
(tests/store_contract.py, run against this store by tests/test_store_contract_sqlite.py)."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.errors import StoreError, StoreMissingError, StoreOutdatedError, StoreUnavailableError
from gateway.store.sqlite import MIGRATIONS, SqliteStore
from tests.store_contract import HOUR, NOW, judge, seal


def test_store_file_is_owner_only_and_schema_is_migrated(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gateway.db")
    assert (tmp_path / "gateway.db").stat().st_mode & 0o777 == 0o600
    assert store.schema_version() == len(MIGRATIONS)
    store.close()
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this gateway knows"):
        SqliteStore(tmp_path / "gateway.db")


def test_a_live_holders_lease_is_respected_and_a_dead_holders_is_taken_over(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gateway.db")
    judge(store, "a.xml", ["C-1"])
    (journal,) = store.seal_journals(now=NOW, client_ids=None, manual_review=False)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    holder = f"{socket.gethostname()}:{sleeper.pid}"
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        db.execute(
            "UPDATE journals SET lease_until = ?, lease_holder = ? WHERE sequence = 1",
            ((NOW + timedelta(minutes=5)).isoformat(), holder),
        )
    try:
        assert not store.begin_delivery(journal.journal_id, now=NOW, lease_seconds=60)  # alive: wait
    finally:
        sleeper.kill()
        sleeper.wait()
    assert store.begin_delivery(journal.journal_id, now=NOW, lease_seconds=60)  # died: take over now
    store.close()


def test_a_store_of_schema_2_is_migrated_and_its_files_still_add_up(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    with sqlite3.connect(path) as db:  # a store as the previous release left it
        for script in MIGRATIONS[:2]:
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute("PRAGMA user_version = 2")
        db.execute(
            "INSERT INTO files (source, name, path, sha256, size, state, attempts, received_at, status, "
            "case_count, accepted_count, accepted_capital_ore) VALUES ('erp', 'old.xml', '/in/old.xml', ?, 10, "
            "'done', 1, ?, 'partially-accepted', 3, 2, 15000)",
            ("a" * 64, NOW.isoformat()),
        )
    store = SqliteStore(path)
    assert store.schema_version() == len(MIGRATIONS) >= 3
    (old,) = store.received_files(NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    assert (old.case_count, old.accepted_count, old.rejected_count, old.duplicate_count) == (3, 2, 1, 0)
    assert (old.capital_in_ore, old.accepted_capital_ore) == (15000, 15000)
    assert store.file_findings(old.id) == []


def test_config_check_on_a_store_of_an_older_schema_leaves_the_migration_to_the_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An upgrade: `config check` runs before the new daemon starts (the unit's ExecStartPre)."""
    from gateway import cli
    from tests.conftest import SAMPLE_CONFIG

    (tmp_path / "gateway.toml").write_text(SAMPLE_CONFIG, encoding="utf-8")
    (tmp_path / "var").mkdir()
    with sqlite3.connect(tmp_path / "var" / "gateway.db") as db:  # as the previous release left it
        for script in MIGRATIONS[:4]:
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute("PRAGMA user_version = 4")
    code = cli.main(["config", "check", "--config", str(tmp_path / "gateway.toml")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "schema version 4, older than this gateway" in out and "the daemon does so when it starts" in out
    code = cli.main(["status", "--config", str(tmp_path / "gateway.toml")])  # read-only: never migrates
    assert code == 2 and "start the daemon once to migrate it" in capsys.readouterr().err
    assert SqliteStore(tmp_path / "var" / "gateway.db").schema_version() == len(MIGRATIONS)


# -- sqlite3's errors as the gateway's -------------------------------------------------------------


def test_a_file_that_is_not_a_database_is_reported_as_damaged(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    path.write_bytes(b"these are not the pages of a database " * 200)
    with pytest.raises(StoreUnavailableError, match="damaged"):
        SqliteStore(path)
    with pytest.raises(StoreUnavailableError, match="damaged"):
        SqliteStore(path, read_only=True)


def test_a_write_lock_held_too_long_makes_a_step_unavailable_while_reads_go_on(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    store = SqliteStore(path, busy_seconds=0.1)
    judge(store, "a.xml", ["C-1"])
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process in the middle of a step
    try:
        with pytest.raises(StoreUnavailableError, match="another process holds its write lock"):
            seal(store)
        assert store.receipt_count() == 1  # WAL: readers never wait for the writer
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert len(seal(store)) == 1  # the refused step changed nothing and can be done now
    store.close()


def test_a_snapshot_that_cannot_end_raises_a_store_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gateway.db")
    with pytest.raises(StoreError), store.snapshot():
        store.close()  # the read transaction's end is mapped like its start


def test_a_reader_never_creates_migrates_or_writes(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    with pytest.raises(StoreMissingError, match="no store at"):
        SqliteStore(path, read_only=True)
    assert not path.exists()
    with sqlite3.connect(path) as db:  # as the previous release left it
        db.executescript(MIGRATIONS[0])
        db.execute("PRAGMA user_version = 1")
    db.close()
    with pytest.raises(StoreOutdatedError, match="start the daemon once to migrate it"):
        SqliteStore(path, read_only=True)
    SqliteStore(path).close()  # the daemon migrates it
    reader = SqliteStore(path, read_only=True)
    with pytest.raises(StoreUnavailableError, match="cannot be written"):
        reader.set_meta("key", "value")
    assert reader.get_meta("key") is None
    reader.close()


def test_a_backup_is_one_owner_only_file_out_of_wal_that_anybody_who_may_read_it_opens(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "var" / "gateway.db")
    judge(store, "a.xml", ["C-1"])
    target = tmp_path / "backup" / "gateway.db"
    target.parent.mkdir()
    store.backup_to(target).close()
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["gateway.db"]  # no -wal, no temporary
    with sqlite3.connect(f"file:{target}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    db.close()
    store.close()
    copy = SqliteStore(target, read_only=True, at_rest=True)
    assert copy.receipt_count() == 1 and copy.newest_judgement() == NOW
    assert [f.name for f in copy.received_files(NOW - HOUR, NOW + HOUR)] == ["a.xml"]
    copy.close()
