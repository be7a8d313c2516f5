"""Alarms: which conditions that want a person hold now, each with a stable code and its text in
Swedish and English. Pure: the facts and "now" are passed in; the store keeps the alarms' states
(raised once, resolved once) and the daemon tells the channels.

Every text is masked (:func:`~gateway.domain.identity.mask_identities`): a file name may hold a
personnummer, and an alarm goes to e-mail and webhooks.

>>> now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
>>> facts = AlarmFacts(node="n1", data_dir="/srv/data", free_bytes=10 << 20, zone="Europe/Stockholm",
...     quarantined=(QuarantinedFile(7, "850315-9819.xml", now - timedelta(hours=1)),))
>>> [(c.alarm, c.subject) for c in evaluate(facts, AlarmThresholds(), now=now)]
[('file-quarantined', 'file-7'), ('disk-low', 'n1')]
>>> evaluate(facts, AlarmThresholds(), now=now)[0].message_en.split(" in quarantine")[0]
'File 7 (850315-XXXX.xml)'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.domain.identity import mask_identities

#: Every alarm's stable code, and what it means (in English; the texts below say it in both).
ALARM_CODES: dict[str, str] = {
    "expected-file-missing": "fewer files than expected arrived from a source before a deadline",
    "delivery-failing": "a journal's delivery has failed for a while, or failed for good",
    "file-quarantined": "a file is in quarantine and no person has dealt with it",
    "journal-waiting-approval": "a sealed journal has waited long for a person's approval",
    "disk-low": "little free space on the data folder's file system",
    "intake-paused": "intake has been paused for a while by a fault around the files",
    "source-unreachable": "a source (SFTP) has failed for a while",
}

#: How long intake may be paused before it is an alarm.
INTAKE_PAUSED_AFTER = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class AlarmThresholds:
    delivery_failing: timedelta = timedelta(minutes=30)
    approval_waiting: timedelta = timedelta(hours=24)
    min_free_bytes: int = 1024 << 20
    intake_paused: timedelta = INTAKE_PAUSED_AFTER
    source_failing: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Condition:
    """An alarm's condition that holds now. ``node``: a fact of that node alone (its pauses, its
    disk), resolved only by that node; None: a fact of the store, resolved by any node."""

    alarm: str
    subject: str
    since: datetime
    message_sv: str
    message_en: str
    node: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.alarm, self.subject


@dataclass(frozen=True, slots=True)
class ExpectedWindow:
    """One ``[[expect]]`` at its latest deadline: files with a verdict received between the
    previous deadline (``start``; None: since ever) and ``deadline``, and since ``deadline``."""

    source: str
    client: str | None
    min_files: int
    start: datetime | None
    deadline: datetime
    received: int
    received_since: int

    @property
    def subject(self) -> str:
        return self.source if self.client is None else f"{self.source}/{self.client}"


@dataclass(frozen=True, slots=True)
class FailingDelivery:
    journal_id: str
    since: datetime  # the first failed attempt
    error: str
    permanent: bool


@dataclass(frozen=True, slots=True)
class WaitingJournal:
    journal_id: str
    sealed_at: datetime


@dataclass(frozen=True, slots=True)
class QuarantinedFile:
    file_id: int
    name: str
    since: datetime


@dataclass(frozen=True, slots=True)
class PauseFact:
    scope: str  # intake | source:<name> | ...
    since: datetime
    cause: str


@dataclass(frozen=True, slots=True)
class AlarmFacts:
    node: str
    data_dir: str
    free_bytes: int | None
    zone: str
    windows: Sequence[ExpectedWindow] = ()
    deliveries: Sequence[FailingDelivery] = ()
    waiting: Sequence[WaitingJournal] = ()
    quarantined: Sequence[QuarantinedFile] = ()
    pauses: Sequence[PauseFact] = ()


def _condition(
    alarm: str, subject: str, since: datetime, sv: str, en: str, node: str | None = None
) -> Condition:
    return Condition(
        alarm, mask_identities(subject), since.astimezone(UTC), mask_identities(sv), mask_identities(en), node
    )


def evaluate(facts: AlarmFacts, thresholds: AlarmThresholds, *, now: datetime) -> list[Condition]:
    """Every alarm condition that holds at ``now``."""
    zone = ZoneInfo(facts.zone)

    def local(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

    conditions: list[Condition] = []
    for window in facts.windows:
        if window.received >= window.min_files or window.received_since > 0:
            continue
        start = local(window.start) if window.start is not None else None
        client_sv = f" för uppdragsgivaren {window.client}" if window.client else ""
        client_en = f" for client {window.client}" if window.client else ""
        conditions.append(
            _condition(
                "expected-file-missing",
                window.subject,
                window.deadline,
                f"Förväntad fil saknas: {window.received} av minst {window.min_files} fil(er) från källan "
                f"{window.source}{client_sv} kom "
                + (
                    f"mellan {start} och {local(window.deadline)}"
                    if start
                    else f"före {local(window.deadline)}"
                ),
                f"Expected file missing: {window.received} of at least {window.min_files} file(s) from source "
                f"{window.source}{client_en} arrived "
                + (
                    f"between {start} and {local(window.deadline)}"
                    if start
                    else f"before {local(window.deadline)}"
                ),
            )
        )
    for delivery in facts.deliveries:
        if delivery.permanent:
            conditions.append(
                _condition(
                    "delivery-failing",
                    delivery.journal_id,
                    delivery.since,
                    f"Leveransen av journal {delivery.journal_id} misslyckades permanent ({delivery.error}); "
                    f"åtgärda felet och kör `journal send {delivery.journal_id}`",
                    f"The delivery of journal {delivery.journal_id} failed for good ({delivery.error}); "
                    f"fix the cause, then run `journal send {delivery.journal_id}`",
                )
            )
        elif now - delivery.since >= thresholds.delivery_failing:
            conditions.append(
                _condition(
                    "delivery-failing",
                    delivery.journal_id,
                    delivery.since,
                    f"Leveransen av journal {delivery.journal_id} har misslyckats sedan {local(delivery.since)} "
                    f"och försöks igen ({delivery.error})",
                    f"The delivery of journal {delivery.journal_id} has failed since {local(delivery.since)} "
                    f"and is being retried ({delivery.error})",
                )
            )
    for file in facts.quarantined:
        conditions.append(
            _condition(
                "file-quarantined",
                f"file-{file.file_id}",
                file.since,
                f"Fil {file.file_id} ({file.name}) ligger i karantän sedan {local(file.since)} och ingen har "
                f"hanterat den: `quarantine resolve {file.file_id} --by NAMN --note TEXT` när det är gjort",
                f"File {file.file_id} ({file.name}) in quarantine since {local(file.since)}, not dealt with "
                f"by anyone: `quarantine resolve {file.file_id} --by NAME --note TEXT` once it is",
            )
        )
    for journal in facts.waiting:
        if now - journal.sealed_at < thresholds.approval_waiting:
            continue
        hours = round(thresholds.approval_waiting.total_seconds() / 3600, 1)
        conditions.append(
            _condition(
                "journal-waiting-approval",
                journal.journal_id,
                journal.sealed_at,
                f"Journal {journal.journal_id} har väntat på godkännande sedan {local(journal.sealed_at)} "
                f"(mer än {hours:g} timmar): `journal approve {journal.journal_id} --by NAMN`",
                f"Journal {journal.journal_id} has waited for approval since {local(journal.sealed_at)} "
                f"(more than {hours:g} hours): `journal approve {journal.journal_id} --by NAME`",
            )
        )
    if facts.free_bytes is not None and facts.free_bytes < thresholds.min_free_bytes:
        free_mb, min_mb = facts.free_bytes >> 20, thresholds.min_free_bytes >> 20
        conditions.append(
            _condition(
                "disk-low",
                facts.node,
                now,
                f"Lite ledigt utrymme för datamappen {facts.data_dir} på nod {facts.node}: {free_mb} MB kvar, "
                f"gränsen är {min_mb} MB",
                f"Little free space for the data folder {facts.data_dir} on node {facts.node}: {free_mb} MB "
                f"left, the limit is {min_mb} MB",
                node=facts.node,
            )
        )
    for pause in facts.pauses:
        if pause.scope == "intake" and now - pause.since >= thresholds.intake_paused:
            conditions.append(
                _condition(
                    "intake-paused",
                    facts.node,
                    pause.since,
                    f"Mottagningen av filer på nod {facts.node} är pausad sedan {local(pause.since)}: "
                    f"{pause.cause}",
                    f"Intake on node {facts.node} has been paused since {local(pause.since)}: {pause.cause}",
                    node=facts.node,
                )
            )
        elif pause.scope.startswith("source:") and now - pause.since >= thresholds.source_failing:
            source = pause.scope.removeprefix("source:")
            conditions.append(
                _condition(
                    "source-unreachable",
                    f"{source}@{facts.node}",
                    pause.since,
                    f"Källan {source} kan inte nås från nod {facts.node} sedan {local(pause.since)}: {pause.cause}",
                    f"Source {source} cannot be reached from node {facts.node} since {local(pause.since)}: "
                    f"{pause.cause}",
                    node=facts.node,
                )
            )
    return conditions
