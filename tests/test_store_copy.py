"""`store copy --to postgresql://…`: a data folder with a day's traffic on SQLite moves to
PostgreSQL, and everything an operator and an auditor see stays the same; the daemon then goes on
on PostgreSQL, and the receipt chain with it. Observed through the command line and the files the
gateway writes only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE, REPO
from tests.daemon_harness import Gateway, check_receipt_chain, drop
from tests.postgres_server import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.process, pytest.mark.postgres]

MIXED = REPO / "examples" / "with-errors" / "lst-exempel-2026-11-25-blandad.xml"
SECOND_DAY = REPO / "examples" / "lst-exempel-agresso-2026-11-25.xml"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    made = Gateway(tmp_path / "gw")
    yield made
    made.stop_all()


def _run_once(gateway: Gateway) -> None:
    daemon = gateway.start(once=True)
    assert daemon.wait(timeout=60) == 0, daemon.stderr()


def _views(gateway: Gateway) -> dict[str, Any]:
    """What an operator and an auditor read, less where the store is."""
    status = gateway.status()
    report = json.loads(gateway.cli("report", "--no-write", "--format", "json").stdout)
    del report["config_sha256"]  # the configuration does change: it names the new store
    return {
        "journals": gateway.journals_listed(),
        "report": report,
        "attention": status["attention"],
        "audit": gateway.audit().stdout,
        "trace": gateway.trace("LST-2026-0412"),
    }


def test_a_store_copied_into_postgresql_is_the_same_store_and_the_daemon_goes_on_there(
    gateway: Gateway, postgres: PostgresServer
) -> None:
    drop(gateway.inbox, "first.xml", EXAMPLE.read_bytes())
    drop(gateway.inbox, "mixed.xml", MIXED.read_bytes())
    _run_once(gateway)
    gateway.cli("journal", "seal")
    gateway.cli("journal", "send")
    drop(gateway.inbox, "again.xml", EXAMPLE.read_bytes())  # a duplicate, and an open journal left
    drop(gateway.inbox, "second.xml", SECOND_DAY.read_bytes())
    _run_once(gateway)
    on_sqlite = _views(gateway)
    assert gateway.audit().returncode == 0

    url = postgres.new_database()
    copied = json.loads(gateway.cli("store", "copy", "--to", url, "--format", "json").stdout)
    assert copied["to"] == url and copied["rows"]["files"] == 4 and copied["rows"]["journals"] == 2
    again = gateway.cli("store", "copy", "--to", url, check=False)
    assert again.returncode == 1 and "is not empty" in again.stderr

    text = gateway.config.read_text(encoding="utf-8")
    gateway.config.write_text(
        text.replace('url = "sqlite:///var/gateway.db"', f'url = "{url}"'), encoding="utf-8"
    )
    gateway.db.rename(gateway.db.with_name("sqlite-before-the-move.db"))  # nothing reads it any more
    status = gateway.status()
    assert status["store"] == url and status["store_error"] is None
    assert _views(gateway) == on_sqlite
    head = gateway.receipt_chain_head()

    drop(
        gateway.inbox,
        "third.xml",
        MIXED.read_bytes().replace(b"LST-EXEMPEL-20261125", b"LST-EXEMPEL-20261126"),
    )
    _run_once(gateway)
    receipts = gateway.receipts_by_name()
    assert receipts["third.xml"].previous == head  # the chain goes on from where SQLite left it
    check_receipt_chain(list(receipts.values()), head=gateway.receipt_chain_head())
    verified = gateway.audit()
    assert verified.returncode == 0 and "5 receipt(s) in an unbroken chain" in verified.stdout, (
        verified.stdout
    )
    gateway.cli("journal", "seal")
    gateway.cli("journal", "send")
    assert [journal["sequence"] for journal in gateway.journals_listed()] == [1, 2]
