"""The SQLite store: each step atomic, journals numbered without gaps, history for the rules."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.domain.chain import GENESIS_SHA256
from gateway.domain.journal import JournalCase, JournalClaim, JournalDebtor
from gateway.errors import StoreError
from gateway.store import AcceptedCase, FileState, JournalState, Judgement
from gateway.store.sqlite import MIGRATIONS, SqliteStore

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
ORGNR = "2021000001"


def journal_case(reference: str, capital: str = "100.00", *, protected: bool = False) -> JournalCase:
    return JournalCase(
        reference=reference,
        customer_number=None,
        debtors=(
            JournalDebtor(
                kind="Privat",
                identity="850315-9819",
                name="Maria Exempelsson",
                street_lines=("Storgatan 1",),
                care_of=None,
                postal_code="11122",
                town="Stockholm",
                country="SE",
                phone=None,
                email=None,
                protected=protected,
            ),
        ),
        claims=(
            JournalClaim(
                invoice_number=f"F-{reference}",
                registry_number=None,
                basis="Avgift för extra offentlig kontroll enligt beslut",
                invoice_date="2026-08-12",
                due_date="2026-09-11",
                capital=capital,
                remaining=None,
                interest_kind=None,
                interest_percent=None,
                interest_from=None,
                decision_date=None,
                final_date=None,
            ),
        ),
        attachments=(),
        source_sha256="ab" * 32,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "var" / "gateway.db")
    yield opened
    opened.close()


def judge(
    store: SqliteStore, name: str, references: list[str], *, sha: str | None = None, protected: bool = False
) -> None:
    record = store.claim_file(
        source="erp", name=name, path=f"/in/{name}", sha256=sha or name.ljust(64, "0"), size=10, now=NOW
    )
    journal_id = store.open_journal_id("lst", now=NOW) if references else None
    head, length = store.receipt_chain_tip()
    store.record_judgement(
        Judgement(
            file_id=record.id,
            status="accepted" if references else "rejected",
            client_orgnr=ORGNR,
            file_id_in_file=name,
            sequence=None,
            case_count=len(references),
            accepted=[
                AcceptedCase.of(
                    journal_case(reference, protected=protected),
                    position=index,
                    client_id="lst",
                    client_orgnr=ORGNR,
                    fingerprint=f"fp-{reference}",
                    claim_references=(f"F-{reference}",),
                )
                for index, reference in enumerate(references, start=1)
            ],
            accepted_capital_ore=100_00 * len(references),
            receipt_id=name,
            receipt_path=f"/out/{name}.kvittens.xml",
            receipt_sha256=name[:1] * 64,
            previous_receipt_sha256=head,
            chain_position=length + 1,
            final_path=f"/var/archive/{name}",
            judged_at=NOW,
            expected_journal=journal_id,
        )
    )


def test_store_file_is_owner_only_and_schema_is_migrated(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gateway.db")
    assert (tmp_path / "gateway.db").stat().st_mode & 0o777 == 0o600
    assert store.schema_version() == len(MIGRATIONS)
    store.close()
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this gateway knows"):
        SqliteStore(tmp_path / "gateway.db")


def test_claiming_the_same_file_again_counts_attempts(store: SqliteStore) -> None:
    first = store.claim_file(source="erp", name="a.xml", path="/in/a.xml", sha256="1" * 64, size=3, now=NOW)
    again = store.claim_file(source="erp", name="a.xml", path="/in/a.xml", sha256="1" * 64, size=3, now=NOW)
    assert first.attempts == 1
    assert again.id == first.id and again.attempts == 2
    other_bytes = store.claim_file(
        source="erp", name="a.xml", path="/in/a.xml", sha256="2" * 64, size=3, now=NOW
    )
    assert other_bytes.id != first.id and other_bytes.attempts == 1
    # The producer rewrote the file before its verdict: only the new bytes arrived.
    assert store.file(first.id).state is FileState.ABANDONED
    assert store.files_in_state(FileState.CLAIMED) == [store.file(other_bytes.id)]


def test_judgement_feeds_the_history_and_the_receipt_chain(store: SqliteStore) -> None:
    assert store.receipt_chain_head() == GENESIS_SHA256
    judge(store, "a.xml", ["C-1", "C-2"], sha="a" * 64)
    assert store.receipt_chain_head() == "a" * 64
    assert store.receipt_for_bytes("a" * 64) == "a.xml.kvittens.xml"
    assert store.receipt_for_file_id(ORGNR, "a.xml") == "a.xml.kvittens.xml"
    assert store.accepted_case_fingerprint(ORGNR, "C-1") == "fp-C-1"
    assert store.case_for_claim_reference(ORGNR, "F-C-2") == "C-2"
    assert store.files_in_state(FileState.JUDGED)[0].status == "accepted"


def test_a_stale_chain_head_is_refused(store: SqliteStore) -> None:
    judge(store, "a.xml", [], sha="a" * 64)
    record = store.claim_file(source="erp", name="b.xml", path="/in/b.xml", sha256="b" * 64, size=1, now=NOW)
    with pytest.raises(StoreError, match="receipt chain moved"):
        store.record_judgement(
            Judgement(
                record.id,
                "rejected",
                None,
                None,
                None,
                0,
                [],
                0,
                "b",
                "/b",
                "c" * 64,
                GENESIS_SHA256,
                "/f",
                NOW,
                None,
            )
        )
    assert store.files_in_state(FileState.CLAIMED)[0].name == "b.xml"  # rolled back whole


def test_sealing_numbers_journals_per_client_without_gaps_and_opens_a_new_one(store: SqliteStore) -> None:
    judge(store, "a.xml", ["C-1"])
    (first,) = store.seal_journals(now=NOW, client_ids=None, manual_review=False)
    assert (first.sequence, first.state, first.approved_by) == (1, JournalState.APPROVED, "auto")
    assert store.seal_journals(now=NOW, client_ids=None, manual_review=False) == []  # nothing open with cases
    judge(store, "b.xml", ["C-2", "C-3"])
    (second,) = store.seal_journals(now=NOW, client_ids=None, manual_review=False)
    assert second.sequence == 2 and second.case_count == 2 and second.journal_id != first.journal_id
    assert list(store.journal_references(second.journal_id)) == ["C-2", "C-3"]


def test_protected_identity_and_manual_review_wait_for_approval(store: SqliteStore) -> None:
    judge(store, "a.xml", ["C-1"], protected=True)
    (sealed,) = store.seal_journals(now=NOW, client_ids=None, manual_review=False)
    assert sealed.state is JournalState.SEALED and sealed.needs_review
    assert not store.begin_delivery(sealed.journal_id, now=NOW, lease_seconds=60)
    approved = store.approve_journal(sealed.journal_id, by="Karin Granskare", now=NOW)
    assert approved.state is JournalState.APPROVED and approved.approved_by == "Karin Granskare"
    with pytest.raises(StoreError, match="not sealed"):
        store.approve_journal(sealed.journal_id, by="again", now=NOW)


def test_a_journal_sealed_while_a_file_was_judged_is_not_joined(store: SqliteStore) -> None:
    record = store.claim_file(source="erp", name="a.xml", path="/in/a.xml", sha256="a" * 64, size=1, now=NOW)
    journal_id = store.open_journal_id("lst", now=NOW)
    judge(store, "other.xml", ["C-0"])  # puts a case in the same open journal
    store.seal_journals(now=NOW, client_ids=None, manual_review=False)
    with pytest.raises(StoreError, match="was sealed while the file was judged"):
        store.record_judgement(
            Judgement(
                record.id, "accepted", ORGNR, None, None, 1,
                [AcceptedCase.of(journal_case("C-9"), position=1, client_id="lst", client_orgnr=ORGNR, fingerprint="fp", claim_references=())],
                100, "a", "/a", "d" * 64, store.receipt_chain_head(), "/f", NOW, journal_id,
            )
        )  # fmt: skip


def test_delivery_lease_lets_one_process_deliver_and_backs_off_after_a_failure(store: SqliteStore) -> None:
    judge(store, "a.xml", ["C-1"])
    (journal,) = store.seal_journals(now=NOW, client_ids=None, manual_review=False)
    assert store.begin_delivery(journal.journal_id, now=NOW, lease_seconds=60)
    store.record_delivery_failure(journal.journal_id, "unreachable", retry_at=NOW + timedelta(seconds=30))
    assert not store.begin_delivery(journal.journal_id, now=NOW + timedelta(seconds=10), lease_seconds=60)
    assert store.begin_delivery(journal.journal_id, now=NOW + timedelta(seconds=31), lease_seconds=60)
    store.record_delivered(journal.journal_id, now=NOW)
    delivered = store.journal(journal.journal_id)
    assert delivered is not None and delivered.state is JournalState.DELIVERED and delivered.attempts == 2
    assert not store.begin_delivery(journal.journal_id, now=NOW + timedelta(days=1), lease_seconds=60)


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


def test_withdrawing_a_case_keeps_it_recorded_and_frees_its_reference(store: SqliteStore) -> None:
    judge(store, "a.xml", ["C-1", "C-2"])
    withdrawn = store.withdraw_case("C-1", client_id=None, by="Karin", reason="paid meanwhile", now=NOW)
    assert withdrawn.withdrawn_reason == "paid meanwhile"
    assert store.accepted_case_fingerprint(ORGNR, "C-1") is None
    (journal,) = store.seal_journals(now=NOW, client_ids=None, manual_review=False)
    assert journal.case_count == 1 and store.journal_references(journal.journal_id) == ["C-2"]
    store.record_journal_built(
        journal.journal_id, file_name="lst-000001.xml", sha256="e" * 64, size=1, built_at=NOW
    )
    with pytest.raises(StoreError, match="can no longer be withdrawn"):
        store.withdraw_case("C-2", client_id=None, by="Karin", reason="too late", now=NOW)
    with pytest.raises(StoreError, match="no case"):
        store.withdraw_case("C-404", client_id=None, by="Karin", reason="?", now=NOW)


def test_two_connections_cannot_seal_the_same_journal_twice(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    daemon, operator = SqliteStore(path), SqliteStore(path)
    judge(daemon, "a.xml", ["C-1"])
    sealed = daemon.seal_journals(now=NOW, client_ids=None, manual_review=False)
    again = operator.seal_journals(now=NOW, client_ids=None, manual_review=False)
    assert len(sealed) == 1 and again == []
    assert [j.sequence for j in operator.journals()] == [1]
    daemon.close()
    operator.close()


def test_cases_are_withdrawn_only_from_journals_nobody_is_delivering(store: SqliteStore) -> None:
    judge(store, "a.xml", ["C-1", "C-2"])
    (sealed,) = store.seal_journals(now=NOW, client_ids=None, manual_review=True)
    store.withdraw_case("C-1", client_id=None, by="Karin", reason="paid", now=NOW)  # sealed, under review
    with pytest.raises(StoreError, match="last case of sealed journal"):
        store.withdraw_case("C-2", client_id=None, by="Karin", reason="paid too", now=NOW)
    store.approve_journal(sealed.journal_id, by="Karin", now=NOW)
    with pytest.raises(StoreError, match="which is approved"):
        store.withdraw_case("C-2", client_id=None, by="Karin", reason="too late", now=NOW)


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
