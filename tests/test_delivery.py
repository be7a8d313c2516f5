"""Delivering a journal when the destination fails for a while, fails for good, or takes it: the
journal service in-process with the shipped MockTransport (and the producer's file in a
MemoryFileSystem), on a clock the test moves."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from gateway import cli
from gateway import config as config_module
from gateway.adapters.folder import FolderSource
from gateway.adapters.memory import MemoryFileSystem, MockTransport
from gateway.errors import PermanentDeliveryError, StoreUnavailableError, TemporaryDeliveryError
from gateway.folders import Folders
from gateway.service.intake import Intake
from gateway.service.journals import JournalService
from gateway.store import JournalState
from gateway.store.sqlite import SqliteStore
from tests.conftest import EXAMPLE, SAMPLE_CONFIG

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
JOURNAL = "lst-exempel-000001.xml"


class Day:
    """One accepted file, its journal sealed and approved, and a destination that does as told."""

    def __init__(self, folder: Path) -> None:
        (folder / "gateway.toml").write_text(SAMPLE_CONFIG, encoding="utf-8")
        self.config = config_module.load(folder / "gateway.toml")
        self.folders = Folders.from_config(self.config)
        self.folders.ensure(sources=self.config.sources)
        self.store = SqliteStore(folder / "var" / "gateway.db")
        self.now = NOW
        self.transport = MockTransport()
        self.journals = self.journal_service(self.store)
        inbox = MemoryFileSystem()
        inbox.write("/inbox/export.xml", EXAMPLE.read_bytes())
        source = FolderSource(name="erp", folder=Path("/inbox"), stable_seconds=0.0, fs=inbox)
        intake = Intake(self.config, self.store, self.folders, clock=lambda: self.now)
        source.scan()
        for candidate in source.scan():
            intake.process(candidate, source)
        (sealed,) = self.journals.seal().sealed
        assert sealed.state is JournalState.APPROVED
        self.journal_id = sealed.journal_id

    def journal_service(self, store: SqliteStore) -> JournalService:
        return JournalService(self.config, store, self.folders, self.transport, clock=lambda: self.now)

    def receipts(self) -> list[Path]:
        return sorted(self.folders.journal_receipts.glob("*.kvittens.xml"))


@pytest.fixture
def day(tmp_path: Path) -> Day:
    return Day(tmp_path)


def _receipt_text(path: Path, element: str) -> str:
    (text,) = etree.parse(path.open("rb")).xpath(f"//*[local-name()='{element}']/text()")
    return str(text)


def test_a_journal_the_destination_takes_is_delivered_once_with_its_receipt(day: Day) -> None:
    (result,) = day.journals.deliver_approved()
    assert (result.delivered, result.file_name, result.error) == (True, JOURNAL, None)
    sent = day.folders.sent / JOURNAL
    (delivered,) = day.transport.delivered.values()
    assert delivered.content == sent.read_bytes()
    assert delivered.sha256 == hashlib.sha256(sent.read_bytes()).hexdigest()
    record = day.store.journal(day.journal_id)
    assert record is not None and (record.state, record.attempts, record.last_error) == (
        JournalState.DELIVERED,
        1,
        None,
    )
    (receipt,) = day.receipts()
    assert _receipt_text(receipt, "Transport") == "folder"
    assert _receipt_text(receipt, "Destination") == f"mock:/journals/{JOURNAL}"
    day.now += timedelta(days=1)
    assert day.journals.deliver_approved() == []  # nothing is delivered a second time
    assert day.transport.attempts == [JOURNAL]


def test_a_temporary_failure_is_retried_after_its_backoff_and_then_delivered(
    day: Day, caplog: pytest.LogCaptureFixture
) -> None:
    day.transport.fail(TemporaryDeliveryError("the share timed out"))
    with caplog.at_level(logging.WARNING, logger="gateway.journals"):
        (failed,) = day.journals.deliver_approved()
    assert (failed.delivered, failed.skipped, failed.error) == (False, False, "the share timed out")
    assert re.search(r"delivery failed, retrying in [456] s: the share timed out", caplog.text)
    record = day.store.journal(day.journal_id)
    assert record is not None and (record.state, record.last_error) == (
        JournalState.APPROVED,
        "the share timed out",
    )
    # The first backoff is 5 s, give or take a fifth: not tried again before it is over.
    day.now += timedelta(seconds=3.9)
    (waiting,) = day.journals.deliver_approved()
    assert waiting.skipped and day.transport.attempts == [JOURNAL]
    day.now += timedelta(seconds=2.2)
    (delivered,) = day.journals.deliver_approved()
    assert delivered.delivered and day.transport.attempts == [JOURNAL, JOURNAL]
    record = day.store.journal(day.journal_id)
    assert record is not None and (record.state, record.attempts) == (JournalState.DELIVERED, 2)
    (receipt,) = day.receipts()
    assert _receipt_text(receipt, "Forsok") == "2"


def test_a_permanent_failure_is_recorded_shown_by_status_and_retried_only_when_a_person_sends_it(
    day: Day, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    refusal = f"mock:/journals/{JOURNAL} exists with other content: not overwritten"
    day.transport.fail(PermanentDeliveryError(refusal))
    with caplog.at_level(logging.ERROR, logger="gateway.journals"):
        (failed,) = day.journals.deliver_approved()
    assert (failed.delivered, failed.error) == (False, refusal)
    assert "delivery failed permanently and needs a person" in caplog.text
    record = day.store.journal(day.journal_id)
    assert record is not None and record.last_error == f"PERMANENT: {refusal}"
    day.now += timedelta(days=30)
    (later,) = day.journals.deliver_approved()  # not retried on its own, however long it waits
    assert later.skipped and day.transport.attempts == [JOURNAL]
    day.store.close()
    cli.main(["status", "--format", "json", "--config", str(day.config.path)])
    status = json.loads(capsys.readouterr().out)
    (alarm,) = [item for item in status["attention"] if item["kind"] == "delivery-failed"]
    assert alarm["subject"] == day.journal_id and refusal in alarm["message"]
    assert f"`journal send {day.journal_id}`" in alarm["message"]
    store = SqliteStore(day.folders.var / "gateway.db")
    (sent,) = day.journal_service(store).deliver_approved(only=day.journal_id, force=True)
    assert sent.delivered and day.transport.attempts == [JOURNAL, JOURNAL]
    store.close()


def test_a_delivery_whose_success_the_store_could_not_record_is_not_delivered_twice(
    day: Day, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = day.store.record_delivered

    def store_fails_once(*args: object, **kwargs: object) -> None:
        monkeypatch.setattr(day.store, "record_delivered", original)
        raise StoreUnavailableError("disk I/O error")

    monkeypatch.setattr(day.store, "record_delivered", store_fails_once)
    with pytest.raises(StoreUnavailableError):
        day.journals.deliver_approved()  # delivered, its receipt written, then the store failed
    (again,) = day.journals.deliver_approved()  # the daemon, once the store is back
    assert again.delivered and day.transport.attempts == [JOURNAL, JOURNAL]
    assert list(day.transport.delivered) == [JOURNAL]  # found there with its content: delivered
    assert [path.name for path in day.receipts()] == [f"{JOURNAL}.kvittens.xml"]
    record = day.store.journal(day.journal_id)
    assert record is not None and record.state is JournalState.DELIVERED
