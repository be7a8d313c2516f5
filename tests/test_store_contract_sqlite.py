"""The store contract (tests/store_contract.py) held against the SQLite store: fixtures only.

Every test runs twice: on a store this version creates, and on one the first release created
(schema 1) that this version migrated, so that a migration leaving the store short of anything
the contract asks shows here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.store.roles import LedgerReader, Store
from gateway.store.sqlite import MIGRATIONS, SqliteStore
from tests.store_contract import StoreContract


def _schema_1(path: Path) -> None:
    """An empty store as the first release left it."""
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0])
        db.execute("PRAGMA user_version = 1")
    db.close()


class TestSqliteStore(StoreContract):
    @pytest.fixture(params=["created", "migrated from schema 1"])
    def store_file(self, request: pytest.FixtureRequest, tmp_path: Path) -> Path:
        path = tmp_path / "var" / "gateway.db"
        if request.param != "created":
            _schema_1(path)
        return path

    @pytest.fixture
    def store(self, store_file: Path) -> Iterator[Store]:
        opened = SqliteStore(store_file)
        yield opened
        opened.close()

    @pytest.fixture
    def second_node(self, store: Store, store_file: Path) -> Iterator[Store]:
        # Named as a process on another machine: its lease counts as alive until it expires.
        opened = SqliteStore(store_file, lease_holder="another-node.example:4242")
        yield opened
        opened.close()

    @pytest.fixture
    def another_process(self, store: Store, store_file: Path) -> Iterator[Callable[[str], Store]]:
        opened: list[SqliteStore] = []

        def open_as(holder: str) -> Store:
            opened.append(SqliteStore(store_file, lease_holder=holder))
            return opened[-1]

        yield open_as
        for each in opened:
            each.close()

    @pytest.fixture
    def reader(self, store: Store, store_file: Path) -> Iterator[LedgerReader]:
        opened = SqliteStore(store_file, read_only=True)
        yield opened
        opened.close()
