"""The store contract: what every store backend does, observed through the store's roles only.

A backend is held to it by a test module that subclasses :class:`StoreContract` and supplies
nothing but fixtures (``tests/test_store_contract_sqlite.py`` is the SQLite store's). A second
backend adds one such module and nothing else:

- ``store``: a new, empty store opened to write (a :class:`~gateway.store.roles.Store`), closed
  afterwards;
- ``second_node``: the same store as another process on another machine opens it to write: its
  delivery leases are another holder's, who counts as alive until the lease expires;
- ``another_process``: a function of a holder ("<node>:<pid>:<token>" for a daemon node) that
  opens the same store to write as that process would (closed afterwards by the fixture);
- ``reader``: the same store opened only to look (a :class:`~gateway.store.roles.LedgerReader`),
  as `status` and `report` open it beside the running daemon.

Nothing here reads SQL or names a backend. What only one backend has (SQLite's migrations, WAL,
read-only and at-rest opening, locking, damaged files) is tested in that backend's own module;
the SQLite fixture also runs this whole contract on a store migrated from its first schema.

Error messages are asserted only where a person reads them (`journal approve`, `journal
withdraw`, `quarantine resolve` print them as they are).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.alarms import Condition
from gateway.domain.chain import GENESIS_SHA256
from gateway.domain.journal import JournalCase, JournalClaim, JournalDebtor
from gateway.errors import StoreConflictError, StoreError
from gateway.store import (
    AcceptedCase,
    CaseMismatch,
    FileRecord,
    FileState,
    JournalRecord,
    JournalState,
    Judgement,
    ReceiptUpload,
    file_lease_name,
)
from gateway.store.roles import IntakeStore, JournalStore, LedgerReader, Store

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CLIENT, ORGNR = "lst", "2021000001"
OTHER_CLIENT, OTHER_ORGNR = "skv", "2021000002"
#: Öre per case: every case made here has one claim of 100.00 kronor.
CASE_ORE = 100_00


# -- making files, cases and journals through the interface ----------------------------------------


def journal_case(reference: str, capital: str = "100.00", *, protected: bool = False) -> JournalCase:
    """A case as the pipeline accepts it. The identity number is in Skatteverket's test series."""
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


def sha_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def receipt_path(name: str) -> str:
    return f"outbox/receipts/{name}.kvittens.xml"


def claim(
    store: IntakeStore,
    name: str,
    *,
    source: str = "erp",
    sha256: str | None = None,
    now: datetime = NOW,
    identity: str | None = None,
) -> FileRecord:
    return store.claim_file(
        source=source,
        name=name,
        path=f"/in/{name}",
        sha256=sha256 or sha_of(f"{source}/{name}"),
        size=10,
        now=now,
        written_at=now - timedelta(minutes=1),
        identity=identity,
    )


def judgement(
    store: IntakeStore,
    record: FileRecord,
    references: Sequence[str] = (),
    *,
    status: str | None = None,
    client: str = CLIENT,
    orgnr: str = ORGNR,
    now: datetime = NOW,
    protected: bool = False,
    rejected: int = 0,
    sequence: int | None = None,
    finding_counts: tuple[tuple[str, str, int], ...] = (),
    unjournaled: tuple[tuple[int, str, str], ...] = (),
    accepted_capital_ore: int | None = None,
) -> Judgement:
    """The verdict on a claimed file that continues the receipt chain from where it stands, its
    accepted cases (one claim of 100.00 each) in the client's open journal."""
    head, length = store.receipt_chain_tip()
    status = status or ("accepted" if references else "rejected")
    folder = {"quarantined": "var/quarantine", "rejected": "var/rejected"}.get(status, "var/archive")
    return Judgement(
        file_id=record.id,
        status=status,
        client_orgnr=orgnr,
        file_id_in_file=record.name,
        sequence=sequence,
        case_count=len(references) + rejected,
        accepted=[
            AcceptedCase.of(
                journal_case(reference, protected=protected),
                position=position,
                client_id=client,
                client_orgnr=orgnr,
                fingerprint=f"fp-{reference}",
                claim_references=(f"F-{reference}",),
            )
            for position, reference in enumerate(references, start=1)
        ],
        accepted_capital_ore=CASE_ORE * len(references)
        if accepted_capital_ore is None
        else accepted_capital_ore,
        receipt_id=record.name,
        receipt_path=receipt_path(record.name),
        receipt_sha256=sha_of(f"receipt of {record.name}"),
        previous_receipt_sha256=head,
        final_path=f"{folder}/{record.id}-{record.name}",
        judged_at=now,
        expected_journal=store.open_journal_id(client, now=now) if references else None,
        client_id=client,
        rejected_count=rejected,
        capital_in_ore=CASE_ORE * (len(references) + rejected),
        rejected_capital_ore=CASE_ORE * rejected,
        finding_counts=finding_counts,
        chain_position=length + 1,
        unjournaled=unjournaled,
    )


def judge(
    store: IntakeStore,
    name: str,
    references: Sequence[str] = (),
    *,
    source: str = "erp",
    now: datetime = NOW,
    done: bool = True,
    **verdict: Any,
) -> FileRecord:
    """Claim, judge and (unless ``done`` is False) finish a file, as the intake does; ``verdict``:
    the keywords of :func:`judgement`."""
    record = claim(store, name, source=source, now=now)
    store.record_judgement(judgement(store, record, references, now=now, **verdict))
    if done:
        judged = store.file(record.id)
        assert judged.final_path is not None
        store.mark_done(record.id, final_path=judged.final_path, now=now)
    return store.file(record.id)


def seal(store: JournalStore, *, manual_review: bool = False, now: datetime = NOW) -> list[JournalRecord]:
    return store.seal_journals(now=now, client_ids=None, manual_review=manual_review)


def present(store: JournalStore, journal_id: str) -> JournalRecord:
    record = store.journal(journal_id)
    assert record is not None, f"no journal {journal_id}"
    return record


# -- the intake's steps ----------------------------------------------------------------------------


class IntakeContract:
    def test_claiming_the_same_file_again_counts_one_more_attempt(self, store: Store) -> None:
        first = claim(store, "a.xml", sha256="1" * 64)
        again = claim(store, "a.xml", sha256="1" * 64)
        assert first.attempts == 1 and first.state is FileState.CLAIMED
        assert again.id == first.id and again.attempts == 2
        other_bytes = claim(store, "a.xml", sha256="2" * 64)
        assert other_bytes.id != first.id and other_bytes.attempts == 1
        # The producer rewrote the file before its verdict: only the new bytes arrived.
        assert store.file(first.id).state is FileState.ABANDONED
        assert store.files_in_state(FileState.CLAIMED) == [store.file(other_bytes.id)]

    def test_an_attempt_that_was_no_failure_is_given_back_and_a_failure_is_noted(self, store: Store) -> None:
        claim(store, "a.xml")
        record = claim(store, "a.xml")
        store.release_attempt(record.id, "incomplete: still being written")
        released = store.file(record.id)
        assert released.attempts == 1 and released.last_error == "incomplete: still being written"
        store.record_failure(record.id, "the judge crashed")
        assert store.file(record.id).last_error == "the judge crashed"

    def test_a_claim_abandoned_before_its_verdict_was_never_received(self, store: Store) -> None:
        record = claim(store, "a.xml")
        store.abandon_claim(record.id, "deleted in its source before its verdict", now=NOW)
        assert store.file(record.id).state is FileState.ABANDONED
        assert store.files_in_state(FileState.CLAIMED) == []
        assert store.counts() == {} and store.last_received() == {}
        assert list(store.received_files(NOW - HOUR, NOW + HOUR)) == []
        assert [(kind, subject) for _, kind, subject, _ in store.events_about(["a.xml"])] == [
            ("file-abandoned", "a.xml")
        ]
        again = claim(store, "a.xml")
        assert again.id != record.id and again.attempts == 1  # its id is never used again

    def test_a_file_goes_from_claimed_to_judged_to_done(self, store: Store) -> None:
        record = claim(store, "a.xml")
        store.record_judgement(judgement(store, record, ["C-1"]))
        judged = store.file(record.id)
        assert judged.state is FileState.JUDGED and judged.status == "accepted"
        assert judged.receipt_path == receipt_path("a.xml") and judged.judged_at == NOW
        assert store.files_in_state(FileState.JUDGED) == [judged]
        store.mark_done(record.id, final_path="var/archive/1-a.xml", now=NOW + HOUR)
        done = store.file(record.id)
        assert (done.state, done.final_path, done.finished_at) == (
            FileState.DONE,
            "var/archive/1-a.xml",
            NOW + HOUR,
        )
        assert store.files_in_state(FileState.JUDGED) == []

    def test_only_a_claimed_file_gets_a_verdict(self, store: Store) -> None:
        record = judge(store, "a.xml", done=False)
        with pytest.raises(StoreError):
            store.record_judgement(judgement(store, record))
        assert store.receipt_count() == 1

    def test_a_verdict_feeds_the_history_the_rules_ask(self, store: Store) -> None:
        accepted = judge(store, "a.xml", ["C-1", "C-2"], sequence=7)
        assert store.receipt_for_bytes(accepted.sha256) == "a.xml.kvittens.xml"
        assert store.receipt_for_file_id(ORGNR, "a.xml") == "a.xml.kvittens.xml"
        assert store.receipt_for_file_id(OTHER_ORGNR, "a.xml") is None
        assert store.last_sequence(ORGNR) == 7
        assert store.accepted_case_fingerprint(ORGNR, "C-1") == "fp-C-1"
        assert store.case_for_claim_reference(ORGNR, "F-C-2") == "C-2"
        assert store.case_for_claim_reference(OTHER_ORGNR, "F-C-2") is None
        # A rejected file sent again (fixed, or now due) is judged again, not called a duplicate.
        rejected = judge(store, "b.xml", rejected=1, sequence=8)
        assert store.receipt_for_bytes(rejected.sha256) is None
        assert store.receipt_for_file_id(ORGNR, "b.xml") is None
        assert store.last_sequence(ORGNR) == 7

    def test_the_historys_lookups_answer_many_at_once_as_one_at_a_time(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1", "C-2", "C-3"])
        store.withdraw_case("C-2", client_id=None, by="Karin", reason="sent by mistake", now=NOW)
        references = ["C-1", "C-2", "C-3", "C-9", "C-1"]
        one_by_one = {r: store.accepted_case_fingerprint(ORGNR, r) for r in references}
        assert store.accepted_case_fingerprints(ORGNR, references) == {
            r: found for r, found in one_by_one.items() if found is not None
        }
        assert set(store.accepted_case_fingerprints(ORGNR, references)) == {"C-1", "C-3"}
        claims = ["F-C-1", "F-C-2", "F-C-9"]
        assert store.cases_for_claim_references(ORGNR, claims) == {"F-C-1": "C-1"}
        assert store.case_for_claim_reference(ORGNR, "F-C-1") == "C-1"
        assert store.accepted_case_fingerprints(OTHER_ORGNR, references) == {}
        assert (
            store.accepted_case_fingerprints(ORGNR, []) == {} == store.cases_for_claim_references(ORGNR, [])
        )

    def test_the_receipt_chain_grows_by_one_receipt_per_verdict(self, store: Store) -> None:
        assert store.receipt_chain_tip() == (GENESIS_SHA256, 0)
        assert store.receipt_chain_head() == GENESIS_SHA256
        first = judge(store, "a.xml", ["C-1"])
        second = judge(store, "b.xml", rejected=1)
        assert store.receipt_chain_tip() == (second.receipt_sha256, 2)
        assert store.receipt_chain_head() == second.receipt_sha256
        assert [r.id for r in store.receipt_chain()] == [first.id, second.id]
        assert second.previous_receipt_sha256 == first.receipt_sha256
        assert store.receipt_count() == 2

    def test_a_stale_chain_tip_is_refused_and_nothing_of_the_verdict_is_kept(self, store: Store) -> None:
        judge(store, "a.xml")
        record = claim(store, "b.xml")
        fresh = judgement(store, record, ["C-1"])
        for stale in (
            replace(fresh, previous_receipt_sha256=GENESIS_SHA256, chain_position=1),
            replace(fresh, chain_position=3),
        ):
            with pytest.raises(StoreConflictError):
                store.record_judgement(stale)
        assert store.file(record.id).state is FileState.CLAIMED
        assert store.accepted_case_fingerprint(ORGNR, "C-1") is None
        assert store.receipt_chain_tip()[1] == 1

    def test_a_receipt_name_belongs_to_one_file(self, store: Store) -> None:
        taken = judge(store, "a.xml")
        assert taken.receipt_path is not None
        assert store.receipt_path_taken(receipt_path("a.xml"))
        assert not store.receipt_path_taken(receipt_path("b.xml"))
        record = claim(store, "b.xml")
        clash = replace(judgement(store, record), receipt_path=taken.receipt_path)
        with pytest.raises(StoreConflictError):
            store.record_judgement(clash)
        assert store.file(record.id).state is FileState.CLAIMED

    def test_a_leftover_in_the_source_is_told_from_a_new_upload(self, store: Store) -> None:
        record = claim(store, "a.xml", identity="dev:ino:10:mtime-1")
        store.record_judgement(judgement(store, record))
        where = {"source": "erp", "path": "/in/a.xml", "sha256": record.sha256}
        leftover = store.received_file(**where, identity="dev:ino:10:mtime-1")
        assert leftover is not None and leftover.id == record.id
        assert store.received_file(**where, identity="dev:ino:10:mtime-2") is None  # uploaded again
        assert (
            store.received_file(source="sftp", path="/in/a.xml", sha256=record.sha256, identity=None) is None
        )

    def test_a_journal_sealed_while_a_file_was_judged_is_not_joined(self, store: Store) -> None:
        record = claim(store, "a.xml")
        late = judgement(store, record, ["C-9"])  # names the open journal
        judge(store, "other.xml", ["C-0"])
        seal(store)
        head, length = store.receipt_chain_tip()
        with pytest.raises(StoreConflictError):
            store.record_judgement(replace(late, previous_receipt_sha256=head, chain_position=length + 1))
        assert store.file(record.id).state is FileState.CLAIMED
        assert store.accepted_case_fingerprint(ORGNR, "C-9") is None

    def test_a_live_case_reference_is_accepted_once_per_client(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1"])
        record = claim(store, "b.xml")
        with pytest.raises(StoreConflictError):
            store.record_judgement(judgement(store, record, ["C-1"]))
        assert store.file(record.id).state is FileState.CLAIMED
        judge(store, "c.xml", ["C-1"], client=OTHER_CLIENT, orgnr=OTHER_ORGNR)  # another client's own

    def test_a_quarantined_file_is_dealt_with_once_and_stays(self, store: Store) -> None:
        record = judge(store, "stuck.xml", status="quarantined", rejected=1)
        accepted = judge(store, "fine.xml", ["C-1"])
        assert store.quarantined_files() == [record]
        dealt = store.resolve_quarantined(record.id, by="Karin", resolution="asked for a new file", now=NOW)
        assert dealt.id == record.id and dealt.state is FileState.DONE
        assert store.quarantined_files() == []
        assert [r.id for r in store.quarantined_files(unresolved_only=False)] == [record.id]
        assert [(kind, detail) for _, kind, _, detail in store.events_about(["stuck.xml"])] == [
            ("quarantine-resolved", "by Karin: asked for a new file")
        ]
        with pytest.raises(StoreError, match="dealt with already"):
            store.resolve_quarantined(record.id, by="Karin", resolution="again", now=NOW)
        with pytest.raises(StoreError, match="not in quarantine"):
            store.resolve_quarantined(accepted.id, by="Karin", resolution="?", now=NOW)


# -- the journals' steps ---------------------------------------------------------------------------


class JournalContract:
    def test_sealing_numbers_each_clients_journals_without_gaps_and_opens_a_new_one(
        self, store: Store
    ) -> None:
        judge(store, "a.xml", ["C-1"])
        judge(store, "x.xml", ["X-1"], client=OTHER_CLIENT, orgnr=OTHER_ORGNR)
        first = {record.client_id: record for record in seal(store)}
        assert {client: r.sequence for client, r in first.items()} == {CLIENT: 1, OTHER_CLIENT: 1}
        assert (first[CLIENT].state, first[CLIENT].approved_by) == (JournalState.APPROVED, "auto")
        assert seal(store) == []  # nothing open has cases
        judge(store, "b.xml", ["C-2", "C-3"])
        (second,) = seal(store)
        assert (second.sequence, second.case_count, second.capital_ore) == (2, 2, 2 * CASE_ORE)
        assert second.journal_id != first[CLIENT].journal_id
        assert store.journal_references(second.journal_id) == ["C-2", "C-3"]
        assert [case.reference for case in store.journal_cases(second.journal_id)] == ["C-2", "C-3"]
        assert store.open_journal_id(CLIENT, now=NOW) not in {first[CLIENT].journal_id, second.journal_id}

    def test_sealing_only_some_clients_and_above_numbers_used_elsewhere(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1"])
        judge(store, "x.xml", ["X-1"], client=OTHER_CLIENT, orgnr=OTHER_ORGNR)
        (other,) = store.seal_journals(now=NOW, client_ids=[OTHER_CLIENT], manual_review=False)
        assert other.client_id == OTHER_CLIENT
        assert [j.client_id for j in store.journals(states=[JournalState.OPEN])] == [CLIENT]
        # A number once delivered (found in var/sent) is never used again, even by an older store.
        (mine,) = store.seal_journals(now=NOW, client_ids=None, manual_review=False, numbers_used={CLIENT: 7})
        assert mine.sequence == 8
        judge(store, "b.xml", ["C-2"])
        assert [j.sequence for j in seal(store)] == [9]

    def test_an_emptied_open_journal_is_not_numbered(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1"])
        store.withdraw_case("C-1", client_id=None, by="Karin", reason="paid meanwhile", now=NOW)
        assert seal(store) == []

    def test_a_protected_identity_and_manual_review_wait_for_a_persons_approval(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1"], protected=True)
        (sealed,) = seal(store)
        assert sealed.state is JournalState.SEALED and sealed.needs_review and sealed.approved_by is None
        assert not store.begin_delivery(sealed.journal_id, now=NOW, lease_seconds=60)
        approved = store.approve_journal(sealed.journal_id, by="Karin Granskare", now=NOW)
        assert approved.state is JournalState.APPROVED and approved.approved_by == "Karin Granskare"
        with pytest.raises(StoreError, match="not sealed"):
            store.approve_journal(sealed.journal_id, by="again", now=NOW)
        with pytest.raises(StoreError, match="no such journal"):
            store.approve_journal(f"{CLIENT}-j404", by="Karin", now=NOW)
        judge(store, "b.xml", ["C-2"])
        (reviewed,) = seal(store, manual_review=True)
        assert reviewed.state is JournalState.SEALED and reviewed.needs_review

    def test_two_processes_cannot_seal_the_same_journal_twice(self, store: Store, second_node: Store) -> None:
        judge(store, "a.xml", ["C-1"])
        sealed = seal(store)
        assert len(sealed) == 1 and seal(second_node) == []
        assert [j.sequence for j in second_node.journals()] == [1]

    def test_a_delivery_lease_lets_one_taker_deliver_until_it_expires(
        self, store: Store, second_node: Store
    ) -> None:
        judge(store, "a.xml", ["C-1"])
        (journal,) = seal(store)
        assert store.begin_delivery(journal.journal_id, now=NOW, lease_seconds=60)
        assert not second_node.begin_delivery(
            journal.journal_id, now=NOW + timedelta(seconds=10), lease_seconds=60
        )
        # The holder went quiet: once its lease has run out another takes over.
        later = NOW + timedelta(seconds=61)
        assert second_node.begin_delivery(journal.journal_id, now=later, lease_seconds=60)
        assert not store.begin_delivery(journal.journal_id, now=later, lease_seconds=60)
        assert present(store, journal.journal_id).attempts == 2

    def test_a_failed_delivery_backs_off_until_its_retry_time_or_a_person_says_now(
        self, store: Store
    ) -> None:
        judge(store, "a.xml", ["C-1"])
        (journal,) = seal(store)
        assert store.begin_delivery(journal.journal_id, now=NOW, lease_seconds=60)
        store.record_delivery_failure(journal.journal_id, "unreachable", retry_at=NOW + timedelta(seconds=30))
        assert present(store, journal.journal_id).last_error == "unreachable"
        assert not store.begin_delivery(journal.journal_id, now=NOW + timedelta(seconds=10), lease_seconds=60)
        assert store.begin_delivery(journal.journal_id, now=NOW + timedelta(seconds=31), lease_seconds=60)
        store.record_delivery_failure(journal.journal_id, "unreachable", retry_at=NOW + HOUR)
        store.release_delivery_lease(journal.journal_id)
        assert store.begin_delivery(journal.journal_id, now=NOW + timedelta(seconds=40), lease_seconds=60)
        assert present(store, journal.journal_id).attempts == 3

    def test_a_journal_is_built_and_delivered_once(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1"])
        (journal,) = seal(store)
        store.record_journal_building(journal.journal_id, file_name="lst-000001.xml")
        assert store.journal_file_known("lst-000001.xml") and not store.journal_file_known("lst-000002.xml")
        store.record_journal_built(
            journal.journal_id, file_name="lst-000001.xml", sha256="e" * 64, size=123, built_at=NOW
        )
        store.record_journal_built(  # a second build changes nothing: the first file is the journal's
            journal.journal_id, file_name="lst-000001.xml", sha256="f" * 64, size=456, built_at=NOW + HOUR
        )
        built = present(store, journal.journal_id)
        assert (built.file_name, built.sha256, built.size, built.built_at) == (
            "lst-000001.xml",
            "e" * 64,
            123,
            NOW,
        )
        assert store.begin_delivery(journal.journal_id, now=NOW, lease_seconds=60)
        store.record_delivered(journal.journal_id, now=NOW, receipt_sha256="d" * 64)
        store.record_delivered(journal.journal_id, now=NOW + HOUR, receipt_sha256="c" * 64)
        delivered = present(store, journal.journal_id)
        assert delivered.state is JournalState.DELIVERED
        assert (delivered.delivered_at, delivered.receipt_sha256) == (NOW, "d" * 64)
        assert delivered.delivered_by  # who delivered it, for `journal send`
        assert not store.begin_delivery(journal.journal_id, now=NOW + timedelta(days=1), lease_seconds=60)

    def test_withdrawing_a_case_keeps_it_recorded_and_frees_its_reference(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1", "C-2"])
        withdrawn = store.withdraw_case("C-1", client_id=None, by="Karin", reason="paid meanwhile", now=NOW)
        assert (withdrawn.reference, withdrawn.withdrawn_reason) == ("C-1", "paid meanwhile")
        assert store.accepted_case_fingerprint(ORGNR, "C-1") is None
        assert store.case_for_claim_reference(ORGNR, "F-C-1") is None
        assert [c.withdrawn_reason for c in store.cases_by_reference("C-1")] == ["paid meanwhile"]
        (journal,) = seal(store)
        assert journal.case_count == 1 and store.journal_references(journal.journal_id) == ["C-2"]
        judge(store, "b.xml", ["C-1"])  # the reference is free again
        store.record_journal_built(
            journal.journal_id, file_name="lst-000001.xml", sha256="e" * 64, size=1, built_at=NOW
        )
        with pytest.raises(StoreError, match="can no longer be withdrawn"):
            store.withdraw_case("C-2", client_id=None, by="Karin", reason="too late", now=NOW)
        with pytest.raises(StoreError, match="no case"):
            store.withdraw_case("C-404", client_id=None, by="Karin", reason="?", now=NOW)

    def test_cases_are_withdrawn_only_from_journals_nobody_is_delivering(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1", "C-2"])
        (sealed,) = seal(store, manual_review=True)
        store.withdraw_case("C-1", client_id=None, by="Karin", reason="paid", now=NOW)  # sealed, under review
        with pytest.raises(StoreError, match="last case of sealed journal"):
            store.withdraw_case("C-2", client_id=None, by="Karin", reason="paid too", now=NOW)
        store.approve_journal(sealed.journal_id, by="Karin", now=NOW)
        with pytest.raises(StoreError, match="which is approved"):
            store.withdraw_case("C-2", client_id=None, by="Karin", reason="too late", now=NOW)

    def test_a_reference_two_clients_have_is_withdrawn_for_the_client_named(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1"])
        judge(store, "x.xml", ["C-1"], client=OTHER_CLIENT, orgnr=OTHER_ORGNR)
        with pytest.raises(StoreError, match="several clients"):
            store.withdraw_case("C-1", client_id=None, by="Karin", reason="paid", now=NOW)
        withdrawn = store.withdraw_case("C-1", client_id=OTHER_CLIENT, by="Karin", reason="paid", now=NOW)
        assert withdrawn.client_id == OTHER_CLIENT
        assert store.accepted_case_fingerprint(ORGNR, "C-1") == "fp-C-1"


# -- the read model: reports, audit, trace, status -------------------------------------------------


class ReadModelContract:
    def test_received_files_count_every_case_and_krona_by_outcome(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1", "C-2"], rejected=1, status="partially-accepted")
        claim(store, "b.xml", now=NOW + timedelta(minutes=5))  # still in hand
        abandoned = claim(store, "c.xml")
        store.abandon_claim(abandoned.id, "gone", now=NOW)
        a, b = store.received_files(NOW - HOUR, NOW + HOUR)
        assert (a.name, a.client_id, a.state, a.status) == (
            "a.xml",
            CLIENT,
            FileState.DONE,
            "partially-accepted",
        )
        assert (a.case_count, a.accepted_count, a.rejected_count, a.duplicate_count) == (3, 2, 1, 0)
        assert (a.capital_in_ore, a.accepted_capital_ore, a.rejected_capital_ore) == (
            3 * CASE_ORE,
            2 * CASE_ORE,
            CASE_ORE,
        )
        assert (a.received_at, a.written_at, a.client_orgnr) == (NOW, NOW - timedelta(minutes=1), ORGNR)
        assert (b.name, b.state, b.status, b.case_count) == ("b.xml", FileState.CLAIMED, None, 0)
        assert list(store.received_files(NOW + timedelta(minutes=1), NOW + HOUR)) == [b]  # [start, end)
        assert [f.name for f in store.received_files(NOW - HOUR, NOW + timedelta(minutes=5))] == ["a.xml"]

    def test_a_verdict_whose_stored_cases_disagree_with_it_is_a_mismatch(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1", "C-2"])
        assert store.case_mismatches(NOW - HOUR, NOW + HOUR) == []
        judge(store, "b.xml", ["C-3"], accepted_capital_ore=CASE_ORE - 1)
        expected = CaseMismatch("b.xml", 1, 1, CASE_ORE - 1, CASE_ORE)
        assert store.case_mismatches(NOW - HOUR, NOW + HOUR) == [expected]
        assert store.case_mismatches(NOW - HOUR, NOW + HOUR, ORGNR) == [expected]
        assert store.case_mismatches(NOW - HOUR, NOW + HOUR, OTHER_ORGNR) == []
        assert store.case_mismatches(NOW + HOUR, NOW + 2 * HOUR) == []

    def test_where_the_periods_capital_is_now(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1", "C-2", "C-3"])
        store.withdraw_case("C-1", client_id=None, by="Karin", reason="paid", now=NOW)
        seal(store)
        judge(store, "b.xml", ["C-4"])
        judge(store, "x.xml", ["X-1"], client=OTHER_CLIENT, orgnr=OTHER_ORGNR)
        assert sorted(store.capital_by_state(NOW - HOUR, NOW + HOUR, CLIENT)) == [
            ("approved", 2, 2 * CASE_ORE),
            ("open", 1, CASE_ORE),
            ("withdrawn", 1, CASE_ORE),
        ]
        assert sorted(store.capital_by_state(NOW - HOUR, NOW + HOUR, None))[1] == ("open", 2, 2 * CASE_ORE)
        assert store.capital_by_state(NOW + HOUR, NOW + 2 * HOUR, None) == []

    def test_journal_numbers_in_use_and_the_journals_a_period_touched(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1"])
        judge(store, "x.xml", ["X-1"], client=OTHER_CLIENT, orgnr=OTHER_ORGNR)
        delivered, other = seal(store)
        assert store.begin_delivery(delivered.journal_id, now=NOW, lease_seconds=60)
        store.record_delivered(delivered.journal_id, now=NOW)
        judge(store, "b.xml", ["C-2"])
        (waiting,) = seal(store, manual_review=True)
        still_open = store.open_journal_id(CLIENT, now=NOW)
        assert store.journal_sequences() == {CLIENT: [1, 2], OTHER_CLIENT: [1]}
        touched = {j.journal_id for j in store.journals_touched(NOW - HOUR, NOW + HOUR)}
        assert touched == {delivered.journal_id, other.journal_id, waiting.journal_id, still_open}
        # Another day: only what is not delivered yet.
        later = {j.journal_id for j in store.journals_touched(NOW + HOUR, NOW + 2 * HOUR)}
        assert later == {other.journal_id, waiting.journal_id, still_open}
        assert [j.journal_id for j in store.journals(states=[JournalState.DELIVERED])] == [
            delivered.journal_id
        ]

    def test_findings_are_counted_per_file_and_rule(self, store: Store) -> None:
        findings = (("R01", "error", 2), ("W03", "warning", 1))
        record = judge(store, "a.xml", ["C-1"], rejected=2, finding_counts=findings)
        assert store.file_findings(record.id) == list(findings)
        assert sorted(store.finding_counts(NOW - HOUR, NOW + HOUR)) == [
            (NOW, CLIENT, ORGNR, "R01", "error", 2),
            (NOW, CLIENT, ORGNR, "W03", "warning", 1),
        ]
        assert list(store.finding_counts(NOW + HOUR, NOW + 2 * HOUR)) == []

    def test_cases_awaiting_a_persons_review_are_counted_and_the_first_listed(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1", "C-2", "C-3"])
        judge(store, "x.xml", ["X-1"], client=OTHER_CLIENT, orgnr=OTHER_ORGNR)
        seal(store, manual_review=True)
        count, listed = store.cases_awaiting_review(client_id=CLIENT, limit=2)
        assert count == 3 and [c.reference for c in listed] == ["C-1", "C-2"]
        assert store.cases_awaiting_review(client_id=None, limit=0)[0] == 4

    def test_a_file_its_cases_and_their_journal_are_found_from_each_other(self, store: Store) -> None:
        record = judge(store, "a.xml", ["C-1", "C-2"], rejected=1, unjournaled=((3, "C-9", "rejected"),))
        count, (first,) = store.cases_of_file(record.id, limit=1)
        assert count == 2 and first.reference == "C-1" and first.file_name == "a.xml"
        assert first.journal_case == journal_case("C-1")
        assert store.file_of_case(first.id) == record
        assert first.journal_id is not None
        assert store.files_of_journal(first.journal_id) == [record]
        assert [(f.id, status) for f, status in store.unjournaled_cases("C-9")] == [(record.id, "rejected")]
        assert store.unjournaled_cases("C-1") == []
        _, (_, second) = store.cases_of_file(record.id, limit=2)
        assert [c.id for c in store.cases_by_reference("C-2")] == [second.id]

    def test_a_file_is_found_by_name_or_by_twelve_or_more_hex_digits_of_its_sha256(
        self, store: Store
    ) -> None:
        record = judge(store, "a.xml")
        assert store.file_by_name_or_sha("a.xml") == [record]
        assert store.file_by_name_or_sha(record.sha256[:12].upper()) == [record]
        assert store.file_by_name_or_sha(record.sha256) == [record]
        assert store.file_by_name_or_sha(record.sha256[:11]) == []
        assert store.file_by_name_or_sha("b.xml") == []

    def test_the_store_knows_the_files_the_gateway_wrote(self, store: Store) -> None:
        assert store.newest_judgement() is None
        record = judge(store, "a.xml", now=NOW - HOUR)
        judge(store, "b.xml")
        assert store.newest_judgement() == NOW
        assert record.receipt_path is not None and record.final_path is not None
        assert store.knows_path(record.receipt_path) and store.knows_path(record.final_path)
        assert not store.knows_path("outbox/receipts/forged.kvittens.xml")

    def test_status_counts_files_by_state_and_each_sources_last_arrival(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1"])
        judge(store, "b.xml", status="rejected", rejected=1, done=False)
        claim(store, "c.xml", source="sftp-in", now=NOW + HOUR)
        gone = claim(store, "d.xml", source="sftp-in", now=NOW + 2 * HOUR)
        store.abandon_claim(gone.id, "gone", now=NOW)
        assert store.counts() == {"done:accepted": 1, "judged:rejected": 1, "claimed": 1}
        assert store.last_received() == {"erp": NOW, "sftp-in": NOW + HOUR}

    def test_running_totals_count_everything_since_the_store_began(
        self, store: Store, reader: LedgerReader
    ) -> None:
        empty = reader.running_totals()
        assert (empty.files, empty.cases, empty.journals, empty.in_progress) == ({}, {}, {}, 0)
        judge(store, "a.xml", ["C-1", "C-2"], rejected=1, status="partially-accepted")
        judge(store, "b.xml", status="rejected", rejected=2, done=False)
        judge(store, "c.xml", ["C-3"], source="sftp-in", client=OTHER_CLIENT, orgnr=OTHER_ORGNR)
        claim(store, "d.xml", now=NOW + HOUR)  # in hand
        gone = claim(store, "e.xml")
        store.abandon_claim(gone.id, "gone", now=NOW)
        first, other = seal(store)
        assert store.begin_delivery(first.journal_id, now=NOW, lease_seconds=60)
        store.record_delivery_failure(first.journal_id, "unreachable", retry_at=NOW)
        store.log_event("delivery-retry", first.journal_id, "unreachable", now=NOW)
        store.log_event("delivery-failed", other.journal_id, "refused", now=NOW)
        store.log_event("delivery-retry", "a.xml", "not a journal", now=NOW)
        store.record_journal_built(
            other.journal_id, file_name="skv-000001.xml", sha256="e" * 64, size=1, built_at=NOW
        )
        assert store.begin_delivery(other.journal_id, now=NOW, lease_seconds=60)
        store.record_delivered(other.journal_id, now=NOW + HOUR)
        totals = reader.running_totals()
        assert totals.files == {
            ("erp", "partially-accepted"): 1,
            ("erp", "rejected"): 1,
            ("sftp-in", "accepted"): 1,
        }
        assert totals.cases == {
            (CLIENT, "accepted"): 2,
            (CLIENT, "rejected"): 3,
            (CLIENT, "duplicate"): 0,
            (OTHER_CLIENT, "accepted"): 1,
            (OTHER_CLIENT, "rejected"): 0,
            (OTHER_CLIENT, "duplicate"): 0,
        }
        assert totals.accepted_capital_ore == {CLIENT: 2 * CASE_ORE, OTHER_CLIENT: CASE_ORE}
        assert totals.journals == {(CLIENT, "failed"): 1, (OTHER_CLIENT, "delivered"): 1}
        assert totals.last_delivered == {OTHER_CLIENT: NOW + HOUR}
        assert totals.delivery_failures == {(CLIENT, "temporary"): 1, (OTHER_CLIENT, "permanent"): 1}
        assert totals.in_progress == 1

    def test_asking_for_what_is_not_there(self, store: Store) -> None:
        assert store.journal(f"{CLIENT}-j404") is None
        assert store.journal("not a journal id") is None
        with pytest.raises(StoreError):
            store.file(404)
        with pytest.raises(StoreError):
            store.file_of_case(404)
        assert store.journals() == [] and store.quarantined_files() == []
        assert list(store.receipt_chain()) == [] and store.receipt_count() == 0

    def test_a_snapshot_reads_one_moment_while_a_writer_goes_on(
        self, store: Store, reader: LedgerReader
    ) -> None:
        judge(store, "a.xml")
        with reader.snapshot():
            assert reader.receipt_count() == 1
            judge(store, "b.xml")
            assert reader.receipt_count() == 1
            assert [r.name for r in reader.receipt_chain()] == ["a.xml"]
        assert reader.receipt_count() == 2

    def test_a_reader_sees_what_was_committed_after_it_was_opened(
        self, store: Store, reader: LedgerReader
    ) -> None:
        assert reader.counts() == {}
        judge(store, "a.xml", ["C-1"])
        assert reader.counts() == {"done:accepted": 1}
        assert [j.case_count for j in reader.journals()] == [1]

    def test_a_backup_is_a_copy_of_one_moment(self, store: Store, tmp_path: Path) -> None:
        first = judge(store, "a.xml", ["C-1"])
        seal(store)
        target = tmp_path / "backup" / "gateway.db"
        target.parent.mkdir()
        copy = store.backup_to(target)
        try:
            judge(store, "b.xml")
            assert [r.name for r in copy.receipt_chain()] == ["a.xml"]
            assert copy.receipt_chain_head() == first.receipt_sha256
            assert [(j.journal_id, j.sequence) for j in copy.journals()] == [
                (j.journal_id, j.sequence) for j in store.journals()
            ]
        finally:
            copy.close()
        again = store.backup_to(target)  # over the earlier copy
        try:
            assert again.receipt_count() == 2
        finally:
            again.close()


# -- the event log and the daemon's notes ----------------------------------------------------------


class BookkeepingContract:
    def test_events_are_read_back_by_subject_oldest_first_and_newest_first_overall(
        self, store: Store
    ) -> None:
        store.log_event("file-failed", "a.xml", "the judge crashed", now=NOW)
        store.log_event("delivery-retry", "lst-j1", "unreachable", now=NOW + HOUR)
        store.log_event("file-quarantined", "a.xml", "three attempts", now=NOW + 2 * HOUR)
        about = store.events_about(["a.xml"])
        assert [(kind, subject, detail) for _, kind, subject, detail in about] == [
            ("file-failed", "a.xml", "the judge crashed"),
            ("file-quarantined", "a.xml", "three attempts"),
        ]
        assert datetime.fromisoformat(about[0][0]) == NOW
        assert len(store.events_about(["a.xml", "lst-j1"])) == 3
        assert store.events_about([]) == []
        assert [kind for _, kind, _, _ in store.recent_events(2)] == ["file-quarantined", "delivery-retry"]

    def test_the_daemons_notes_are_kept_and_replaced(self, store: Store) -> None:
        assert store.get_meta("last_scheduled_seal") is None
        store.set_meta("last_scheduled_seal", "2026-11-24T17:00:00+00:00")
        store.set_meta("last_scheduled_seal", "2026-11-25T17:00:00+00:00")
        store.set_meta("endpoint:delivery", '{"last_success": null}')
        assert store.get_meta("last_scheduled_seal") == "2026-11-25T17:00:00+00:00"
        assert store.meta_items("endpoint:") == {"endpoint:delivery": '{"last_success": null}'}
        store.probe(now=NOW)  # a store that can be written takes the probe


#: A daemon node's heartbeat lease in these tests.
LEASE = 30.0


class NodesContract:
    """Several daemons on one store: node leases, leases on names, duties, a fenced delivery."""

    @pytest.fixture
    def node_a(self, another_process: Callable[[str], Store]) -> Store:
        a = another_process("node-a:11:aaaa")
        assert a.register_node("node-a", version="1", now=NOW, lease_seconds=LEASE) is None
        return a

    @pytest.fixture
    def node_b(self, another_process: Callable[[str], Store]) -> Store:
        b = another_process("node-b:22:bbbb")
        assert b.register_node("node-b", version="1", now=NOW, lease_seconds=LEASE) is None
        return b

    def test_nodes_register_and_a_name_taken_over_is_lost_to_the_process_that_had_it(
        self, node_a: Store, node_b: Store, another_process: Callable[[str], Store], reader: LedgerReader
    ) -> None:
        assert [(n.name, n.holder, n.alive(NOW)) for n in reader.nodes()] == [
            ("node-a", "node-a:11:aaaa", True),
            ("node-b", "node-b:22:bbbb", True),
        ]
        assert node_a.take_lease("file:erp:/in/a.xml", now=NOW, lease_seconds=LEASE)
        # node-a was killed and started again at once (its lease still ran): the new process
        # takes the name, hears whose it was, and what the old one held is free at once.
        again = another_process("node-a:33:cccc")
        soon = NOW + timedelta(seconds=2)
        assert again.register_node("node-a", version="2", now=soon, lease_seconds=LEASE) == "node-a:11:aaaa"
        assert again.take_lease("file:erp:/in/a.xml", now=soon, lease_seconds=LEASE)
        assert not node_a.renew_node("node-a", now=soon, lease_seconds=LEASE)
        assert node_b.renew_node("node-b", now=soon, lease_seconds=LEASE)
        (a, b) = reader.nodes()
        assert (a.holder, a.version, b.alive(soon)) == ("node-a:33:cccc", "2", True)
        # A node that stopped cleanly is known as stopped, and its name is free without a word.
        again.leave_node("node-a", now=soon)
        (a, _) = reader.nodes()
        assert (a.alive(soon), a.stopped_at) == (False, soon)
        assert (
            another_process("node-a:44:dddd").register_node(
                "node-a", version="2", now=soon, lease_seconds=LEASE
            )
            is None
        )

    def test_a_lease_is_held_while_its_node_beats_and_taken_over_once_it_stops(
        self, node_a: Store, node_b: Store
    ) -> None:
        name = "file:erp:/in/a.xml"
        assert node_a.take_lease(name, now=NOW, lease_seconds=LEASE)
        assert node_a.take_lease(name, now=NOW, lease_seconds=LEASE)  # its own: still held
        assert not node_b.take_lease(name, now=NOW + timedelta(seconds=1), lease_seconds=LEASE)
        assert node_b.leased_by_others("file:erp:", now=NOW) == {name}
        assert node_a.leased_by_others("file:erp:", now=NOW) == set()
        # The heartbeat renews the node and what it holds.
        assert node_a.renew_node("node-a", now=NOW + timedelta(seconds=20), lease_seconds=LEASE)
        assert not node_b.take_lease(name, now=NOW + timedelta(seconds=45), lease_seconds=LEASE)
        # The node died (kill -9): no heartbeat, its lease runs out, another node takes the file.
        after = NOW + timedelta(seconds=20 + LEASE + 1)
        assert not node_b.take_lease(name, now=after, lease_seconds=LEASE)  # its own heartbeat stopped too
        assert node_b.renew_node("node-b", now=after, lease_seconds=LEASE)
        assert node_b.take_lease(name, now=after, lease_seconds=LEASE)
        node_a.release_lease(name)  # too late: it is no longer its own to release
        assert not node_a.take_lease(name, now=after, lease_seconds=LEASE)
        node_b.release_lease(name)
        assert node_a.take_lease(name, now=after, lease_seconds=LEASE) is False  # node-a is not alive
        assert node_a.register_node("node-a", version="1", now=after, lease_seconds=LEASE) is None
        assert node_a.take_lease(name, now=after, lease_seconds=LEASE)

    def test_a_lease_name_is_matched_as_written_whatever_wildcards_a_file_name_holds(
        self, node_a: Store, node_b: Store
    ) -> None:
        odd = "file:erp:/in/50%_rest!.xml"
        assert node_a.take_lease(odd, now=NOW, lease_seconds=LEASE)
        assert node_a.take_lease("file:erp:/in/5000xrest.xml", now=NOW, lease_seconds=LEASE)
        assert node_b.leased_by_others(odd, now=NOW) == {odd}
        assert node_b.leased_by_others("file:erp:/in/50%", now=NOW) == {odd}
        assert node_b.leased_by_others("file:erp:/in/50_", now=NOW) == set()

    def test_a_journal_in_delivery_stays_its_nodes_while_the_node_beats(
        self, store: Store, node_a: Store, node_b: Store
    ) -> None:
        judge(store, "a.xml", ["C-1"])
        (journal,) = seal(store)
        assert node_a.begin_delivery(journal.journal_id, now=NOW, lease_seconds=60)
        # A slow link: the delivery outlasts its 60 s, and the node's heartbeat keeps it its own.
        assert node_a.renew_node("node-a", now=NOW + timedelta(seconds=50), lease_seconds=LEASE)
        assert node_b.renew_node("node-b", now=NOW + timedelta(seconds=50), lease_seconds=LEASE)
        assert not node_b.begin_delivery(
            journal.journal_id, now=NOW + timedelta(seconds=70), lease_seconds=60
        )

    def test_a_node_that_stops_cleanly_leaves_its_leases_at_once(self, node_a: Store, node_b: Store) -> None:
        assert node_a.take_lease("file:erp:/in/a.xml", now=NOW, lease_seconds=LEASE)
        node_a.leave_node("node-a", now=NOW + timedelta(seconds=1))
        assert node_b.take_lease("file:erp:/in/a.xml", now=NOW + timedelta(seconds=2), lease_seconds=LEASE)

    def test_a_duty_is_done_once_per_slot_and_taken_over_from_a_node_that_died_doing_it(
        self, node_a: Store, node_b: Store
    ) -> None:
        assert node_a.take_duty("seal", "2026-11-25T16:00", now=NOW)
        assert not node_b.take_duty("seal", "2026-11-25T16:00", now=NOW)
        node_a.finish_duty("seal", "2026-11-25T16:00", now=NOW)
        assert not node_b.take_duty("seal", "2026-11-25T16:00", now=NOW)
        assert not node_a.take_duty("seal", "2026-11-25T16:00", now=NOW)  # done is done
        assert node_b.take_duty("report", "2026-11-24", now=NOW)
        assert not node_a.take_duty("report", "2026-11-24", now=NOW + timedelta(seconds=LEASE - 1))
        # node-b died before it finished: once its lease ran out node-a does the report.
        assert node_a.renew_node("node-a", now=NOW + timedelta(seconds=LEASE), lease_seconds=LEASE)
        assert node_a.take_duty("report", "2026-11-24", now=NOW + timedelta(seconds=LEASE + 1))
        assert not node_b.take_duty("seal", "2026-11-25T17:00", now=NOW + timedelta(seconds=LEASE + 1))
        node_b.finish_duty("report", "2026-11-24", now=NOW + timedelta(seconds=LEASE + 2))  # not its own now
        assert node_a.take_duty("report", "2026-11-24", now=NOW + timedelta(seconds=LEASE + 3))

    def test_a_file_is_fenced_a_node_whose_lease_was_taken_over_cannot_give_it_a_verdict(
        self, node_a: Store, node_b: Store
    ) -> None:
        name = file_lease_name("erp", "/in/a.xml")
        assert node_a.take_lease(name, now=NOW, lease_seconds=LEASE)
        record = claim(node_a, "a.xml")
        later = NOW + timedelta(seconds=LEASE + 1)  # node-a hangs; node-b takes the file over
        assert node_b.renew_node("node-b", now=later, lease_seconds=LEASE)
        assert node_b.take_lease(name, now=later, lease_seconds=LEASE)
        taken_over = claim(node_b, "a.xml", now=later)
        assert (taken_over.id, taken_over.attempts) == (record.id, 2)  # the hung attempt counts
        with pytest.raises(StoreConflictError):
            node_a.record_judgement(judgement(node_a, record, ["C-1"]))
        node_b.record_judgement(judgement(node_b, taken_over, ["C-1"], now=later))
        assert node_b.file(record.id).state is FileState.JUDGED and node_b.receipt_count() == 1

    def test_a_delivery_lease_is_fenced_a_node_that_lost_it_cannot_record_the_delivery(
        self, store: Store, node_a: Store, node_b: Store
    ) -> None:
        judge(store, "a.xml", ["C-1"])
        (journal,) = seal(store)
        assert node_a.begin_delivery(journal.journal_id, now=NOW, lease_seconds=300)
        assert not node_b.begin_delivery(
            journal.journal_id, now=NOW + timedelta(seconds=5), lease_seconds=300
        )
        # node-a hangs past its node lease (its delivery lease would run 300 s): node-b takes over.
        later = NOW + timedelta(seconds=LEASE + 1)
        assert node_b.renew_node("node-b", now=later, lease_seconds=LEASE)
        assert node_b.begin_delivery(journal.journal_id, now=later, lease_seconds=300)
        with pytest.raises(StoreConflictError):
            node_a.record_delivered(journal.journal_id, now=later)
        node_a.record_delivery_failure(journal.journal_id, "late", retry_at=later + HOUR)  # changes nothing
        node_b.record_delivered(journal.journal_id, now=later, receipt_sha256="f" * 64)
        delivered = present(store, journal.journal_id)
        assert (delivered.state, delivered.delivered_by, delivered.attempts, delivered.last_error) == (
            JournalState.DELIVERED,
            "node-b:22:bbbb",
            2,
            None,
        )


# -- alarms ------------------------------------------------------------------------------------------


def condition(
    alarm: str = "file-quarantined", subject: str = "file-1", *, node: str | None = None
) -> Condition:
    return Condition(alarm, subject, NOW - HOUR, f"sv {alarm} {subject}", f"en {alarm} {subject}", node)


CHANNELS = ("webhook", "smtp")


class AlarmContract:
    """Alarms raised once and resolved once, whichever of several processes asks; the outbox.
    ``node_a`` and ``node_b`` are :class:`NodesContract`'s two registered nodes."""

    def test_an_alarm_is_raised_once_and_resolved_once_whichever_node_asks(
        self, node_a: Store, node_b: Store, reader: LedgerReader
    ) -> None:
        held = [condition(), condition("disk-low", "node-a", node="node-a")]
        (quarantined, disk) = node_a.reconcile_alarms(held, node="node-a", channels=CHANNELS, now=NOW)
        assert (quarantined.alarm, quarantined.subject, quarantined.firing) == (
            "file-quarantined",
            "file-1",
            True,
        )
        assert (quarantined.since, quarantined.raised_at, quarantined.resolved_at) == (NOW - HOUR, NOW, None)
        assert (quarantined.message_sv, quarantined.message_en, quarantined.node) == (
            "sv file-quarantined file-1",
            "en file-quarantined file-1",
            None,
        )
        assert disk.node == "node-a"
        # Still holding, as seen again and by another node: nothing changes, nothing is told again.
        assert node_a.reconcile_alarms(held, node="node-a", channels=CHANNELS, now=NOW + HOUR) == []
        assert node_b.reconcile_alarms([condition()], node="node-b", channels=CHANNELS, now=NOW + HOUR) == []
        # The store's fact is gone: the first node to see it resolves it; node-a's own fact stays
        # until node-a itself sees it gone.
        later = NOW + 2 * HOUR
        (resolved,) = node_b.reconcile_alarms([], node="node-b", channels=CHANNELS, now=later)
        assert (resolved.id, resolved.firing, resolved.resolved_at) == (quarantined.id, False, later)
        assert node_a.reconcile_alarms(held[1:], node="node-a", channels=CHANNELS, now=later) == []
        states = {(a.alarm, a.firing) for a in reader.alarm_states(resolved_since=NOW)}
        assert states == {("file-quarantined", False), ("disk-low", True)}
        assert [a.alarm for a in reader.alarm_states(resolved_since=later + HOUR)] == ["disk-low"]
        (gone,) = node_a.reconcile_alarms([], node="node-a", channels=CHANNELS, now=later)
        assert (gone.alarm, gone.firing) == ("disk-low", False)
        # A condition that comes back is a new alarm.
        (again,) = node_b.reconcile_alarms([condition()], node="node-b", channels=(), now=later + HOUR)
        assert again.id not in (quarantined.id, disk.id) and again.firing

    def test_each_change_is_told_once_per_channel_in_order_and_retried_until_sent(
        self, node_a: Store, node_b: Store
    ) -> None:
        (raised,) = node_a.reconcile_alarms([condition()], node="node-a", channels=CHANNELS, now=NOW)
        node_a.reconcile_alarms([], node="node-a", channels=CHANNELS, now=NOW + HOUR)
        taken = node_a.take_notifications(now=NOW + HOUR, lease_seconds=60, limit=10)
        # The resolution waits until its alarm's firing was told on that channel.
        assert [(n.channel, n.state, n.node, n.attempts, n.alarm.id) for n in taken] == [
            ("webhook", "firing", "node-a", 1, raised.id),
            ("smtp", "firing", "node-a", 1, raised.id),
        ]
        assert taken[0].idempotency_key == taken[1].idempotency_key
        webhook, smtp = taken
        # Taken: another process passes them by while the lease runs.
        assert node_b.take_notifications(now=NOW + HOUR, lease_seconds=60, limit=10) == []
        node_a.notification_sent(webhook.id, now=NOW + HOUR)
        node_a.notification_failed(smtp.id, "refused", retry_at=NOW + 2 * HOUR)
        (resolved,) = node_b.take_notifications(now=NOW + HOUR, lease_seconds=60, limit=10)
        assert (resolved.channel, resolved.state, resolved.attempts) == ("webhook", "resolved", 1)
        assert resolved.idempotency_key != webhook.idempotency_key
        node_b.notification_sent(resolved.id, now=NOW + HOUR)
        assert node_b.take_notifications(now=NOW + HOUR, lease_seconds=60, limit=10) == []
        (retried,) = node_b.take_notifications(now=NOW + 2 * HOUR, lease_seconds=60, limit=10)
        assert (retried.id, retried.attempts, retried.idempotency_key) == (smtp.id, 2, smtp.idempotency_key)
        # A process that died holding one: it is taken over once the lease ran out.
        assert (
            node_a.take_notifications(now=NOW + 2 * HOUR + timedelta(seconds=61), lease_seconds=60, limit=10)[
                0
            ].id
            == smtp.id
        )

    def test_files_with_a_verdict_are_counted_per_source_client_and_period(self, store: Store) -> None:
        judge(store, "a.xml", ["C-1"], now=NOW)
        judge(store, "b.xml", ["C-2"], now=NOW + HOUR, client=OTHER_CLIENT, orgnr=OTHER_ORGNR)
        judge(store, "c.xml", source="sftp", now=NOW)
        claim(store, "d.xml", now=NOW)  # no verdict yet
        count = store.files_received_count
        assert count(source="erp", client_id=None, start=None, end=NOW + 2 * HOUR) == 2
        assert count(source="erp", client_id=CLIENT, start=NOW - HOUR, end=NOW + 2 * HOUR) == 1
        assert count(source="erp", client_id=None, start=NOW + timedelta(minutes=1), end=NOW + 2 * HOUR) == 1
        assert count(source="erp", client_id=None, start=NOW - HOUR, end=NOW) == 0
        assert count(source="sftp", client_id=None, start=None, end=NOW + HOUR) == 1


# -- errors ------------------------------------------------------------------------------------------


def _enter(context: AbstractContextManager[None]) -> None:
    with context:
        pass


def _nothing_judged(file_id: int) -> Judgement:
    return Judgement(
        file_id, "rejected", None, None, None, 0, [], 0, "r", "r", "0" * 64, GENESIS_SHA256, "f", NOW, None
    )


#: One call of every method of every role, as a closed store is asked it. Iterators are consumed.
CALLS: dict[str, Callable[[Store, Path], object]] = {
    "receipt_for_bytes": lambda s, _: s.receipt_for_bytes("a" * 64),
    "receipt_for_file_id": lambda s, _: s.receipt_for_file_id(ORGNR, "a.xml"),
    "last_sequence": lambda s, _: s.last_sequence(ORGNR),
    "accepted_case_fingerprint": lambda s, _: s.accepted_case_fingerprint(ORGNR, "C-1"),
    "case_for_claim_reference": lambda s, _: s.case_for_claim_reference(ORGNR, "F-C-1"),
    "accepted_case_fingerprints": lambda s, _: s.accepted_case_fingerprints(ORGNR, ["C-1"]),
    "cases_for_claim_references": lambda s, _: s.cases_for_claim_references(ORGNR, ["F-C-1"]),
    "file": lambda s, _: s.file(1),
    "files_in_state": lambda s, _: s.files_in_state(FileState.CLAIMED),
    "log_event": lambda s, _: s.log_event("file-failed", "a.xml", "?", now=NOW),
    "claim_file": lambda s, _: claim(s, "a.xml"),
    "release_attempt": lambda s, _: s.release_attempt(1, "?"),
    "record_failure": lambda s, _: s.record_failure(1, "?"),
    "abandon_claim": lambda s, _: s.abandon_claim(1, "?", now=NOW),
    "received_file": lambda s, _: s.received_file(
        source="erp", path="/in/a.xml", sha256="a" * 64, identity=None
    ),
    "receipt_path_taken": lambda s, _: s.receipt_path_taken(receipt_path("a.xml")),
    "receipt_chain_tip": lambda s, _: s.receipt_chain_tip(),
    "open_journal_id": lambda s, _: s.open_journal_id(CLIENT, now=NOW),
    "record_judgement": lambda s, _: s.record_judgement(_nothing_judged(1)),
    "mark_done": lambda s, _: s.mark_done(1, final_path="var/archive/1-a.xml", now=NOW),
    "resolve_quarantined": lambda s, _: s.resolve_quarantined(1, by="Karin", resolution="?", now=NOW),
    "journal": lambda s, _: s.journal(f"{CLIENT}-j1"),
    "journals": lambda s, _: s.journals(),
    "journal_cases": lambda s, _: list(s.journal_cases(f"{CLIENT}-j1")),
    "seal_journals": lambda s, _: seal(s),
    "approve_journal": lambda s, _: s.approve_journal(f"{CLIENT}-j1", by="Karin", now=NOW),
    "journal_references": lambda s, _: s.journal_references(f"{CLIENT}-j1"),
    "record_journal_building": lambda s, _: s.record_journal_building(f"{CLIENT}-j1", file_name="j.xml"),
    "record_journal_built": lambda s, _: s.record_journal_built(
        f"{CLIENT}-j1", file_name="j.xml", sha256="e" * 64, size=1, built_at=NOW
    ),
    "begin_delivery": lambda s, _: s.begin_delivery(f"{CLIENT}-j1", now=NOW, lease_seconds=60),
    "record_delivery_failure": lambda s, _: s.record_delivery_failure(f"{CLIENT}-j1", "?", retry_at=NOW),
    "release_delivery_lease": lambda s, _: s.release_delivery_lease(f"{CLIENT}-j1"),
    "record_delivered": lambda s, _: s.record_delivered(f"{CLIENT}-j1", now=NOW),
    "withdraw_case": lambda s, _: s.withdraw_case("C-1", client_id=None, by="Karin", reason="?", now=NOW),
    "get_meta": lambda s, _: s.get_meta("k"),
    "set_meta": lambda s, _: s.set_meta("k", "v"),
    "probe": lambda s, _: s.probe(now=NOW),
    "file_by_name_or_sha": lambda s, _: s.file_by_name_or_sha("a.xml"),
    "file_findings": lambda s, _: s.file_findings(1),
    "cases_of_file": lambda s, _: s.cases_of_file(1, limit=1),
    "file_of_case": lambda s, _: s.file_of_case(1),
    "files_of_journal": lambda s, _: s.files_of_journal(f"{CLIENT}-j1"),
    "cases_by_reference": lambda s, _: s.cases_by_reference("C-1"),
    "unjournaled_cases": lambda s, _: s.unjournaled_cases("C-1"),
    "events_about": lambda s, _: s.events_about(["a.xml"]),
    "recent_events": lambda s, _: s.recent_events(1),
    "snapshot": lambda s, _: _enter(s.snapshot()),
    "received_files": lambda s, _: list(s.received_files(NOW - HOUR, NOW)),
    "case_mismatches": lambda s, _: s.case_mismatches(NOW - HOUR, NOW),
    "capital_by_state": lambda s, _: s.capital_by_state(NOW - HOUR, NOW, None),
    "finding_counts": lambda s, _: list(s.finding_counts(NOW - HOUR, NOW)),
    "journal_sequences": lambda s, _: s.journal_sequences(),
    "journals_touched": lambda s, _: s.journals_touched(NOW - HOUR, NOW),
    "cases_awaiting_review": lambda s, _: s.cases_awaiting_review(client_id=None, limit=1),
    "quarantined_files": lambda s, _: s.quarantined_files(),
    "receipt_chain": lambda s, _: list(s.receipt_chain()),
    "receipt_count": lambda s, _: s.receipt_count(),
    "receipt_chain_head": lambda s, _: s.receipt_chain_head(),
    "knows_path": lambda s, _: s.knows_path(receipt_path("a.xml")),
    "journal_file_known": lambda s, _: s.journal_file_known("j.xml"),
    "newest_judgement": lambda s, _: s.newest_judgement(),
    "counts": lambda s, _: s.counts(),
    "last_received": lambda s, _: s.last_received(),
    "meta_items": lambda s, _: s.meta_items("endpoint:"),
    "running_totals": lambda s, _: s.running_totals(),
    "backup_to": lambda s, folder: s.backup_to(folder / "copy.db"),
    "nodes": lambda s, _: s.nodes(),
    "register_node": lambda s, _: s.register_node("n", version="1", now=NOW, lease_seconds=LEASE),
    "renew_node": lambda s, _: s.renew_node("n", now=NOW, lease_seconds=LEASE),
    "leave_node": lambda s, _: s.leave_node("n", now=NOW),
    "take_lease": lambda s, _: s.take_lease("file:erp:/in/a.xml", now=NOW, lease_seconds=LEASE),
    "release_lease": lambda s, _: s.release_lease("file:erp:/in/a.xml"),
    "leased_by_others": lambda s, _: s.leased_by_others("file:", now=NOW),
    "take_duty": lambda s, _: s.take_duty("seal", "slot", now=NOW),
    "queue_receipt_uploads": lambda s, _: s.queue_receipt_uploads([receipt_copy()], now=NOW),
    "due_receipt_uploads": lambda s, _: s.due_receipt_uploads(now=NOW, limit=1),
    "receipt_upload_due": lambda s, _: s.receipt_upload_due(1, now=NOW),
    "record_receipt_uploaded": lambda s, _: s.record_receipt_uploaded(1, now=NOW),
    "record_receipt_upload_failure": lambda s, _: s.record_receipt_upload_failure(1, "?", retry_at=NOW),
    "retry_refused_receipt_uploads": lambda s, _: s.retry_refused_receipt_uploads(now=NOW),
    "receipt_upload_backlog": lambda s, _: s.receipt_upload_backlog(limit=1),
    "finish_duty": lambda s, _: s.finish_duty("seal", "slot", now=NOW),
    "files_received_count": lambda s, _: s.files_received_count(
        source="erp", client_id=None, start=None, end=NOW
    ),
    "alarm_states": lambda s, _: s.alarm_states(resolved_since=NOW),
    "reconcile_alarms": lambda s, _: s.reconcile_alarms([condition()], node="n", channels=CHANNELS, now=NOW),
    "take_notifications": lambda s, _: s.take_notifications(now=NOW, lease_seconds=60, limit=1),
    "notification_sent": lambda s, _: s.notification_sent(1, now=NOW),
    "notification_failed": lambda s, _: s.notification_failed(1, "?", retry_at=NOW),
}


def role_methods() -> set[str]:
    """Every method some role declares (``close`` is what makes a store closed)."""
    return {
        name
        for role in Store.__mro__
        if getattr(role, "_is_protocol", False)
        for name, member in vars(role).items()
        if inspect.isfunction(member) and not name.startswith("_")
    } - {"close"}


def receipt_copy(
    source: str = "erp", name: str = "2026-11-25/a.xml.3033a297494b.kvittens.xml"
) -> ReceiptUpload:
    return ReceiptUpload(
        source=source,
        local_path=f"outbox/receipts/{name}",
        name=name,
        sha256="ab" * 32,
        size=10,
        subject="file:1",
    )


class ReceiptQueueContract:
    def test_a_receipt_copy_is_queued_once_and_is_due_until_it_is_sent(
        self, store: Store, reader: LedgerReader
    ) -> None:
        first, second = receipt_copy("erp"), receipt_copy("erp-sftp")
        store.queue_receipt_uploads([first], now=NOW)
        store.queue_receipt_uploads([first, second], now=NOW + HOUR)  # again, after a crash
        due = store.due_receipt_uploads(now=NOW + HOUR, limit=10)
        assert [(u.source, u.name, u.state, u.attempts, u.queued_at) for u in due] == [
            ("erp", first.name, "pending", 0, NOW),
            ("erp-sftp", second.name, "pending", 0, NOW + HOUR),
        ]
        assert store.due_receipt_uploads(now=NOW + HOUR, limit=1) == due[:1]
        backlog = reader.receipt_upload_backlog(limit=10)
        assert (backlog.pending, backlog.failing, backlog.oldest_queued_at, backlog.refused) == (
            2,
            0,
            NOW,
            [],
        )
        assert store.receipt_upload_due(due[1].id, now=NOW + HOUR)
        assert not store.receipt_upload_due(due[1].id, now=NOW)  # not yet queued then
        store.record_receipt_uploaded(due[1].id, now=NOW + HOUR)
        assert not store.receipt_upload_due(due[1].id, now=NOW + 2 * HOUR)  # sent: another node skips it
        store.queue_receipt_uploads([second], now=NOW + 2 * HOUR)  # a copy sent is never sent again
        assert [u.source for u in store.due_receipt_uploads(now=NOW + 3 * HOUR, limit=10)] == ["erp"]

    def test_a_failed_copy_waits_for_its_next_try_and_a_refused_one_for_a_person(
        self, store: Store, reader: LedgerReader
    ) -> None:
        store.queue_receipt_uploads([receipt_copy()], now=NOW)
        (upload,) = store.due_receipt_uploads(now=NOW, limit=10)
        store.record_receipt_upload_failure(upload.id, "Connection refused", retry_at=NOW + HOUR)
        assert store.due_receipt_uploads(now=NOW + HOUR / 2, limit=10) == []
        (again,) = store.due_receipt_uploads(now=NOW + HOUR, limit=10)
        assert (again.attempts, again.last_error, again.next_try) == (1, "Connection refused", NOW + HOUR)
        assert reader.receipt_upload_backlog(limit=10).failing == 1
        store.record_receipt_upload_failure(upload.id, "exists with other content", retry_at=None)
        assert store.due_receipt_uploads(now=NOW + 9 * HOUR, limit=10) == []
        backlog = reader.receipt_upload_backlog(limit=10)
        assert backlog.pending == 0
        assert [(u.name, u.state, u.last_error) for u in backlog.refused] == [
            (upload.name, "refused", "exists with other content")
        ]
        assert store.retry_refused_receipt_uploads(now=NOW + 9 * HOUR) == 1
        assert [u.id for u in store.due_receipt_uploads(now=NOW + 9 * HOUR, limit=10)] == [upload.id]


class ErrorContract:
    def test_every_method_of_every_role_is_asked_of_a_closed_store_below(self) -> None:
        assert set(CALLS) == role_methods()

    @pytest.mark.parametrize("method", sorted(CALLS))
    def test_a_closed_store_refuses_with_a_store_error_never_a_drivers(
        self, store: Store, tmp_path: Path, method: str
    ) -> None:
        store.close()
        with pytest.raises(StoreError):
            CALLS[method](store, tmp_path)

    def test_an_iterator_read_on_after_its_store_was_closed_raises_a_store_error(self, store: Store) -> None:
        judge(store, "a.xml")
        judge(store, "b.xml")
        files = store.received_files(NOW - HOUR, NOW + HOUR)
        assert next(files).name == "a.xml"
        store.close()
        with pytest.raises(StoreError):
            next(files)


class StoreContract(
    IntakeContract,
    JournalContract,
    ReadModelContract,
    BookkeepingContract,
    NodesContract,
    ReceiptQueueContract,
    AlarmContract,
    ErrorContract,
):
    """Everything a store does. Subclass it in a module named ``test_store_contract_<backend>.py``
    and give it the fixtures ``store``, ``second_node``, ``another_process`` and ``reader`` (see the
    module's docstring)."""
