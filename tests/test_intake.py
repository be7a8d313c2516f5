"""Intake and journals in-process: the steps the daemon runs, with a fixed clock."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from gateway import config as config_module
from gateway.adapters.folder import FolderSource, FolderTransport
from gateway.config import GatewayConfig
from gateway.folders import Folders
from gateway.formats.journal import read_journal
from gateway.formats.schemas import load_schema
from gateway.service.intake import Intake
from gateway.service.journals import JournalService
from gateway.store import FileState, JournalState
from gateway.store.sqlite import SqliteStore
from tests.conftest import EXAMPLE, REPO, SAMPLE_CONFIG, broken_copy
from tests.faults import plant

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
PACKAGE = REPO / "tests" / "data" / "valid" / "bilagor-i-paket.zip"
CONFIG = SAMPLE_CONFIG + "stable_seconds = 0.001\n"
KV = {"k": "urn:inkasso-gateway:kvittens:1"}


class Gateway:
    """The daemon's parts wired as `run` wires them, minus the loop."""

    def __init__(self, folder: Path, config: str = CONFIG) -> None:
        (folder / "gateway.toml").write_text(config, encoding="utf-8")
        self.config: GatewayConfig = config_module.load(folder / "gateway.toml")
        self.folders = Folders.from_config(self.config)
        self.folders.ensure(sources=self.config.sources)
        self.store = SqliteStore(folder / "var" / "gateway.db")
        self.now = 0.0
        self.source = FolderSource(
            name="erp", folder=self.config.sources[0].path, stable_seconds=0.001, clock=lambda: self.now
        )
        self.intake = Intake(self.config, self.store, self.folders, clock=lambda: NOW)
        self.journals = JournalService(
            self.config, self.store, self.folders, FolderTransport(self.folders.journals), clock=lambda: NOW
        )
        self.inbox = self.config.sources[0].path
        assert self.inbox is not None

    def drop_and_process(self, *files: Path) -> None:
        for file in files:
            shutil.copyfile(file, self.inbox / file.name)
        self.tick()
        self.source.scan()  # first sight
        self.tick()  # the source's own clock moves on past stable_seconds
        for candidate in self.source.scan():
            self.intake.process(candidate, self.source)

    def tick(self) -> None:
        self.now += 1.0

    def receipts(self) -> list[etree._Element]:
        return [
            etree.parse(p.open("rb")).getroot()
            for p in sorted(self.folders.receipts.glob("*/*.kvittens.xml"))
        ]


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    return Gateway(tmp_path)


def test_a_package_becomes_a_zip_journal_with_its_attachments(gateway: Gateway) -> None:
    gateway.drop_and_process(PACKAGE, EXAMPLE)
    assert [r.findtext("k:Status", namespaces=KV) for r in gateway.receipts()] == ["Godkand", "Godkand"]
    assert not list(gateway.inbox.iterdir())
    (sealed,) = gateway.journals.seal().sealed
    (result,) = gateway.journals.deliver_approved()
    assert result.delivered and result.file_name == "lst-exempel-000001.zip"
    with zipfile.ZipFile(gateway.folders.journals / result.file_name) as package:
        names = package.namelist()
        assert names[0] == "arendejournal.xml"
        _, cases, totals = read_journal(package.open("arendejournal.xml"))
        for case in cases:
            for name, sha in zip(case.attachments, case.attachment_sha256, strict=True):
                member = f"bilagor/{case.reference}/{name}"
                assert member in names
                assert hashlib.sha256(package.read(member)).hexdigest() == sha
    assert totals.case_count == sealed.case_count == 4
    assert (gateway.folders.sent / result.file_name).read_bytes() == (
        gateway.folders.journals / result.file_name
    ).read_bytes()
    receipt = etree.parse((gateway.folders.journal_receipts / f"{result.file_name}.kvittens.xml").open("rb"))
    assert load_schema("journalkvittens-1.xsd").validate(receipt)


def test_receipts_form_one_chain(gateway: Gateway) -> None:
    gateway.drop_and_process(EXAMPLE, PACKAGE)
    files = sorted(gateway.folders.receipts.glob("*/*.kvittens.xml"), key=lambda p: p.stat().st_mtime_ns)
    previous = "0" * 64
    for path in files:
        root = etree.parse(path.open("rb")).getroot()
        assert load_schema("kvittens-1.xsd").validate(root)
        assert root.findtext("k:ForegaendeKvittensSha256", namespaces=KV) == previous
        previous = hashlib.sha256(path.read_bytes()).hexdigest()
    assert gateway.store.receipt_chain_head() == previous


def test_an_exception_on_a_file_is_retried_then_quarantined_with_a_receipt(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant(monkeypatch, "raise", "poison")
    poison = gateway.inbox.parent / "poison.xml"
    shutil.copyfile(EXAMPLE, poison)
    gateway.drop_and_process(poison)
    for attempt in range(1, 4):
        if attempt > 1:
            gateway.tick()
            for candidate in gateway.source.scan():
                gateway.intake.process(candidate, gateway.source)
        claimed = gateway.store.files_in_state(FileState.CLAIMED)
        if attempt < 3:
            assert claimed[0].attempts == attempt and "injected fault" in (claimed[0].last_error or "")
    assert gateway.store.files_in_state(FileState.CLAIMED) == []
    (quarantined,) = list(gateway.folders.quarantine.glob("*-poison.xml"))
    assert "injected fault" in quarantined.with_name(quarantined.name + ".reason.txt").read_text()
    (receipt,) = gateway.receipts()
    assert receipt.findtext("k:Anmarkning/k:Regel", namespaces=KV) == "F08"
    assert receipt.findtext("k:Status", namespaces=KV) == "Underkand"


def test_a_crash_after_the_commit_is_finished_at_start(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[int] = []
    monkeypatch.setattr(Intake, "_publish", lambda self, file_id, *args: published.append(file_id))
    gateway.drop_and_process(EXAMPLE)  # committed, but "crashed" before publishing
    assert published and gateway.store.files_in_state(FileState.JUDGED)
    assert not list(gateway.folders.receipts.glob("*/*.kvittens.xml"))
    assert list(gateway.folders.receipts.glob("*/.*.kvittens.xml.tmp"))
    monkeypatch.undo()
    restarted = Intake(
        gateway.config, gateway.store, gateway.folders, clock=lambda: NOW, sources={"erp": gateway.source}
    )
    assert restarted.recover() == 1
    assert len(gateway.receipts()) == 1 and not list(gateway.inbox.iterdir())
    assert gateway.store.files_in_state(FileState.DONE)[0].status == "accepted"


def test_manual_review_holds_the_journal_until_approved(gateway: Gateway) -> None:
    gateway.drop_and_process(EXAMPLE)
    gateway.store.seal_journals(now=NOW, client_ids=None, manual_review=True)
    assert gateway.journals.deliver_approved() == []
    (journal,) = gateway.store.journals(states=[JournalState.SEALED])
    gateway.store.approve_journal(journal.journal_id, by="Karin Granskare", now=NOW)
    (result,) = gateway.journals.deliver_approved()
    header, _, _ = read_journal((gateway.folders.journals / result.file_name).open("rb"))
    assert header.approved_by == "Karin Granskare"


def test_a_file_that_ends_in_the_middle_waits_instead_of_being_rejected(gateway: Gateway) -> None:
    whole = EXAMPLE.read_bytes()
    target = gateway.inbox / "export.xml"
    target.write_bytes(whole[: len(whole) // 2])
    gateway.source.scan()
    gateway.tick()
    (candidate,) = gateway.source.scan()
    assert gateway.intake.process(candidate, gateway.source) is None
    assert target.exists() and gateway.receipts() == []  # no receipt, not rejected
    (claimed,) = gateway.store.files_in_state(FileState.CLAIMED)
    assert claimed.attempts == 0 and (claimed.last_error or "").startswith("incomplete")
    target.write_bytes(whole)  # the producer finishes writing
    gateway.drop_and_process()
    (receipt,) = gateway.receipts()
    assert receipt.findtext("k:Status", namespaces=KV) == "Godkand"


def test_a_file_that_stays_incomplete_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    gateway = Gateway(tmp_path)
    gateway.intake = Intake(
        gateway.config, gateway.store, gateway.folders, clock=lambda: NOW, incomplete_seconds=0.0
    )
    gateway.inbox.joinpath("cut.xml").write_bytes(EXAMPLE.read_bytes()[:1500])
    gateway.drop_and_process()
    (receipt,) = gateway.receipts()
    assert receipt.findtext("k:Anmarkning/k:Regel", namespaces=KV) == "F08"
    assert "ends in the middle" in (receipt.findtext("k:Anmarkning/k:MeddelandeEn", namespaces=KV) or "")
    assert list(gateway.folders.quarantine.glob("*-cut.xml"))


def test_the_same_bytes_after_a_rejection_are_judged_again_not_called_duplicates(gateway: Gateway) -> None:
    rejected = gateway.inbox.parent / "other-client.xml"
    rejected.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace("202100-0001", "202100-6255"), encoding="utf-8"
    )
    gateway.drop_and_process(rejected)
    gateway.drop_and_process(rejected)
    statuses = [r.findtext("k:Status", namespaces=KV) for r in gateway.receipts()]
    assert statuses == ["Underkand", "Underkand"]


def test_originals_are_archived_owner_only(gateway: Gateway) -> None:
    gateway.drop_and_process(EXAMPLE)
    (archived,) = gateway.folders.archive.glob("*/*")
    assert archived.stat().st_mode & 0o777 == 0o600


def test_only_one_daemon_runs_on_a_data_folder(tmp_path: Path) -> None:
    from gateway.errors import ConfigError
    from gateway.service.runner import _single_instance

    held = _single_instance(tmp_path / "gateway.lock")
    try:
        with pytest.raises(ConfigError, match="another inkasso-gateway is running"):
            _single_instance(tmp_path / "gateway.lock")
    finally:
        held.close()
    _single_instance(tmp_path / "gateway.lock").close()  # free again once the first one ends


# -- faults around the files, in process --------------------------------------------------------------


def _receipt_statuses(gateway: Gateway) -> list[str]:
    return [r.findtext("k:Status", namespaces=KV) or "" for r in gateway.receipts()]


def test_a_stranger_at_the_archive_path_is_never_overwritten_and_the_file_waits(
    gateway: Gateway,
) -> None:
    day = NOW.date().isoformat()
    stranger = gateway.folders.archive / day / "1-lst-exempel-2026-11-24.xml"
    stranger.parent.mkdir(parents=True)
    stranger.write_bytes(b"not the gateway's")
    gateway.drop_and_process(EXAMPLE)
    assert stranger.read_bytes() == b"not the gateway's"  # a clash is refused, never a replace
    assert gateway.store.files_in_state(FileState.JUDGED), "committed, but not published over the stranger"
    assert _receipt_statuses(gateway) == ["Godkand"]  # the receipt itself is out
    stranger.unlink()  # a person moves it away
    gateway.intake._publish_backoff.clear()  # not wait out the backoff in a test
    assert gateway.intake.publish_pending() == 1
    assert stranger.read_bytes() == EXAMPLE.read_bytes()
    assert gateway.store.files_in_state(FileState.DONE)


@pytest.mark.parametrize("change", ["rewritten", "deleted"])
def test_a_file_changed_in_the_inbox_while_judged_is_not_received_and_leaves_no_claim(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    from gateway.service import intake as pipeline

    target = gateway.inbox / "changing.xml"
    original = pipeline.validate_file
    changed = []

    def producer_changes_it_meanwhile(*args: object, **kwargs: object) -> object:
        if not changed:
            changed.append(True)
            if change == "rewritten":
                text = EXAMPLE.read_text(encoding="utf-8").replace("LST-2026-0412", "LST-2026-7412")
                target.write_text(text, encoding="utf-8")
            else:
                target.unlink()
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "validate_file", producer_changes_it_meanwhile)
    shutil.copyfile(EXAMPLE, target)
    gateway.drop_and_process()
    assert gateway.receipts() == []
    assert gateway.store.files_in_state(FileState.CLAIMED) == []  # no claim left "in progress"
    gateway.drop_and_process()  # the next scans see what is there now
    gateway.drop_and_process()
    from gateway.accounting.reports.build import build_report

    report = build_report(
        gateway.store, gateway.config, period_from=NOW.date(), period_to=NOW.date(), client=None, now=NOW
    )
    if change == "rewritten":
        assert _receipt_statuses(gateway) == ["Godkand"]  # the new version, once
        assert report.total.files == 1 and report.balanced
    else:
        assert gateway.receipts() == [] and report.total.files == 0 and report.balanced
    assert gateway.store.files_in_state(FileState.CLAIMED) == []


def test_a_seal_racing_the_commit_is_not_an_attempt_and_never_quarantines(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = gateway.store
    gateway.drop_and_process(EXAMPLE)  # the client's open journal has cases
    original = store.record_judgement
    races = []

    def sealed_just_before(judgement: object) -> None:
        if not races:  # `journal seal` in another process, between the verdict and its commit
            races.append(True)
            store.seal_journals(now=NOW, client_ids=None, manual_review=False)
        original(judgement)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "record_judgement", sealed_just_before)
    second = broken_copy(
        gateway.inbox.parent,
        {"LST-2026-04": "LST-2026-84", "2026-109": "2026-809", "2026-108": "2026-808", "501-4711": "501-8711",
         "20261124-01": "20261124-02", "<Lopnummer>1<": "<Lopnummer>2<"},
        name="second.xml",
    )  # fmt: skip
    gateway.drop_and_process(second)
    assert races
    (claimed,) = store.files_in_state(FileState.CLAIMED)
    assert claimed.attempts == 0, "a lost race is not an attempt"
    gateway.tick()
    for candidate in gateway.source.scan():
        gateway.intake.process(candidate, gateway.source)
    assert _receipt_statuses(gateway) == ["Godkand", "Godkand"]
    assert not list(gateway.folders.quarantine.iterdir())


def test_a_journal_number_found_in_var_sent_is_never_used_again(gateway: Gateway) -> None:
    # A store restored from a backup older than journal 3: the number is taken for good.
    gateway.folders.sent.mkdir(parents=True, exist_ok=True)
    (gateway.folders.sent / "lst-exempel-000003.xml").write_bytes(b"<delivered before/>")
    gateway.drop_and_process(EXAMPLE)
    (sealed,) = gateway.journals.seal().sealed
    assert sealed.sequence == 4


def test_a_judged_file_whose_source_cannot_be_tidied_is_never_received_a_second_time(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.errors import SourceError

    def refuse(candidate: object, *, accepted: bool) -> None:
        raise SourceError("the inbox is read-only just now")

    monkeypatch.setattr(gateway.source, "finish", refuse)
    gateway.drop_and_process(EXAMPLE)
    for _ in range(3):  # the file is still in the inbox and stable: listed again and again
        gateway.tick()
        for candidate in gateway.source.scan():
            gateway.intake.process(candidate, gateway.source)
        gateway.tick()
    assert _receipt_statuses(gateway) == ["Godkand"], "one receipt, no Dubblett of itself"
    monkeypatch.undo()
    gateway.intake._publish_backoff.clear()
    restarted = Intake(
        gateway.config, gateway.store, gateway.folders, clock=lambda: NOW, sources={"erp": gateway.source}
    )
    assert restarted.publish_pending() == 1
    assert not list(gateway.inbox.iterdir()) and _receipt_statuses(gateway) == ["Godkand"]


def test_recovery_keeps_a_committed_files_temporary_receipt_when_publishing_it_must_wait(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Intake, "_publish", lambda self, file_id, *args: None)  # killed after the commit
    gateway.drop_and_process(EXAMPLE)
    monkeypatch.undo()
    (temporary,) = gateway.folders.receipts.glob("*/.*.kvittens.xml.tmp")
    final = temporary.with_name(temporary.name[1:].removesuffix(".tmp"))
    final.write_bytes(b"a stranger at the receipt's name")
    restarted = Intake(
        gateway.config, gateway.store, gateway.folders, clock=lambda: NOW, sources={"erp": gateway.source}
    )
    assert restarted.recover() == 0  # cannot publish over the stranger: waits ...
    assert temporary.exists(), "... and the committed receipt is kept, not swept away as a leftover"
    final.unlink()
    assert restarted.recover() == 1
    assert _receipt_statuses(gateway) == ["Godkand"]


def test_the_source_entry_is_removed_only_while_it_is_the_file_taken(gateway: Gateway) -> None:
    target = gateway.inbox / "export.xml"
    shutil.copyfile(EXAMPLE, target)
    gateway.source.scan()
    gateway.tick()
    (candidate,) = gateway.source.scan()
    newer = gateway.inbox / ".export.xml.part"
    newer.write_bytes(b"<the producer's next version/>")
    newer.rename(target)  # put in place under the same name just before the tidying
    gateway.source.finish(candidate, accepted=True)
    assert target.read_bytes() == b"<the producer's next version/>"
    assert [p.name for p in gateway.inbox.iterdir()] == ["export.xml"]


def test_a_start_waits_out_a_status_looking_at_the_lock(tmp_path: Path) -> None:
    import fcntl
    import threading
    import time

    from gateway.service.runner import _single_instance

    lock = tmp_path / "gateway.lock"
    lock.touch()
    looking = threading.Event()

    def status_looks() -> None:
        with lock.open() as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            looking.set()
            time.sleep(0.5)

    thread = threading.Thread(target=status_looks)
    thread.start()
    looking.wait(5)
    _single_instance(lock).close()  # not "another inkasso-gateway is running"
    thread.join()
