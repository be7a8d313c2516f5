"""The store contract (tests/store_contract.py) held against the PostgreSQL store: fixtures only.

One throwaway cluster for the session (tests/postgres_server.py), a new database for each test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from gateway.store.postgres import PostgresStore
from gateway.store.roles import LedgerReader, Store
from tests.postgres_server import PostgresServer
from tests.store_contract import StoreContract

pytestmark = pytest.mark.postgres


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def database(self, postgres: PostgresServer) -> str:
        return postgres.new_database()

    @pytest.fixture
    def store(self, database: str) -> Iterator[Store]:
        opened = PostgresStore(database)
        yield opened
        opened.close()

    @pytest.fixture
    def second_node(self, store: Store, database: str) -> Iterator[Store]:
        # A process on another machine: its lease counts as alive until it expires.
        opened = PostgresStore(database, lease_holder="another-node.example:4242")
        yield opened
        opened.close()

    @pytest.fixture
    def another_process(self, store: Store, database: str) -> Iterator[Callable[[str], Store]]:
        opened: list[PostgresStore] = []

        def open_as(holder: str) -> Store:
            opened.append(PostgresStore(database, lease_holder=holder))
            return opened[-1]

        yield open_as
        for each in opened:
            each.close()

    @pytest.fixture
    def reader(self, store: Store, database: str) -> Iterator[LedgerReader]:
        opened = PostgresStore(database, read_only=True)
        yield opened
        opened.close()
