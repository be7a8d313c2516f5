"""Alarms in the daemon: the facts gathered, the conditions evaluated, the store reconciled, and
every change told on the configured channels from the store's outbox.

From the daemon's loop, every few seconds, :class:`AlarmWatch` gathers what the alarms look at (the
store's journals, quarantined files and received files, this node's pauses and free space, the
``[[expect]]`` deadlines), asks the pure evaluator (:mod:`gateway.domain.alarms`) which conditions
hold now, and lets the store reconcile them: a new condition is raised, a condition gone is
resolved, each exactly once whichever node sees it first, with one notification per channel in
the outbox. The node that made a change logs it (``alarm-fired``, ``alarm-resolved``).

:class:`AlarmSender` sends the outbox from a thread of its own, over its own store connection, so
that a webhook or mail server that does not answer never holds up the loop; what fails is tried
again with a backoff, also after a restart (the outbox is in the store).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from gateway import __version__
from gateway.adapters.alarm_channels import AlarmChannel, AlarmMessage, ChannelError
from gateway.backoff import Backoff
from gateway.config import ExpectConfig, GatewayConfig
from gateway.domain.alarms import (
    AlarmFacts,
    AlarmThresholds,
    ExpectedWindow,
    FailingDelivery,
    PauseFact,
    QuarantinedFile,
    WaitingJournal,
    evaluate,
)
from gateway.errors import StoreError
from gateway.service.pauses import Pause
from gateway.store import AlarmNotification, AlarmRecord, JournalState
from gateway.store.roles import AlarmBook, LedgerReader

log = logging.getLogger("gateway.alarms")

#: Trying a notification again: 2 s, 4 s, 8 s ... at most 10 minutes, with jitter.
NOTIFY_BACKOFF = Backoff(base_seconds=2.0, max_seconds=600.0)
#: How long a taken notification is this process's before another may send it.
NOTIFY_LEASE_SECONDS = 60.0
#: Notifications taken at a time: each may take a channel's timeout (10 s; SMTP's few steps each),
#: and all must be sent well within their lease.
NOTIFY_BATCH = 2
#: How often the sender looks into the outbox when not woken.
SENDER_POLL_SECONDS = 1.0
#: The conditions are evaluated at most this often (and at least every scan).
EVALUATE_SECONDS = 10.0
#: How far back the last two times of an ``[[expect]]`` schedule are looked for, widening.
_LOOKBACKS = tuple(timedelta(days=days) for days in (1 / 12, 2, 9, 63, 400, 1500))


class AlarmSide(LedgerReader, AlarmBook, Protocol):
    """What the alarms read and write: the daemon's store."""


# -- [[expect]] deadlines ----------------------------------------------------------------------------


class Deadlines:
    """An ``[[expect]]``'s deadlines: each time of its cron schedule in the gateway's zone, plus its
    grace as elapsed time. A wall-clock time that comes twice (the autumn's repeated hour) is one
    time, the first; one that never comes (spring's skipped hour) is the moment the clock jumps
    past it, as APScheduler places it."""

    def __init__(self, schedule: str, zone: ZoneInfo, grace: timedelta) -> None:
        self._trigger = CronTrigger.from_crontab(schedule, timezone=zone)
        self._zone = zone
        self._grace = grace

    def _fires(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """The schedule's times in [start, end], in UTC, each wall-clock time once."""
        # Compared in UTC only: two times of one zone compare by their wall clocks, folds ignored.
        moment = self._trigger.get_next_fire_time(None, start.astimezone(self._zone))
        last_wall: datetime | None = None
        while moment is not None and moment.astimezone(UTC) <= end:
            wall = moment.replace(tzinfo=None)
            if wall != last_wall:
                yield moment.astimezone(UTC)
            last_wall = wall
            probe = moment.astimezone(UTC) + timedelta(seconds=1)
            following = self._trigger.get_next_fire_time(moment, probe.astimezone(self._zone))
            for _ in range(48):
                if following is None or following.astimezone(UTC) > moment.astimezone(UTC):
                    break
                # APScheduler can answer the repeated hour's time again: look past it.
                probe += timedelta(hours=1)
                following = self._trigger.get_next_fire_time(moment, probe.astimezone(self._zone))
            else:
                return  # never: a schedule that does not move on is not followed further
            moment = following

    def last_two(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """The latest deadline at or before ``now`` and the one before it (None: none found)."""
        end = now.astimezone(UTC) - self._grace
        latest: datetime | None = None
        for lookback in _LOOKBACKS:
            fires = list(self._fires(end - lookback, end))
            if len(fires) >= 2:
                return fires[-2] + self._grace, fires[-1] + self._grace
            if fires:
                latest = fires[-1]
        return None, None if latest is None else latest + self._grace


def expected_window(
    expect: ExpectConfig, deadlines: Deadlines, reader: LedgerReader, *, now: datetime
) -> ExpectedWindow | None:
    """The files an ``[[expect]]`` counts at its latest deadline (None: no deadline has come yet)."""
    start, deadline = deadlines.last_two(now)
    if deadline is None:
        return None

    def count(begin: datetime | None, end: datetime) -> int:
        return reader.files_received_count(
            source=expect.source, client_id=expect.client, start=begin, end=end
        )

    return ExpectedWindow(
        source=expect.source,
        client=expect.client,
        min_files=expect.min_files,
        start=start,
        deadline=deadline,
        received=count(start, deadline),
        received_since=count(deadline, now + timedelta(seconds=1)),
    )


# -- the conditions and their states -----------------------------------------------------------------


def thresholds_of(config: GatewayConfig) -> AlarmThresholds:
    alarms = config.alarms
    return AlarmThresholds(
        delivery_failing=timedelta(minutes=alarms.delivery_failing_minutes),
        approval_waiting=timedelta(hours=alarms.approval_waiting_hours),
        min_free_bytes=alarms.min_free_mb << 20,
        source_failing=timedelta(minutes=alarms.source_failing_minutes),
    )


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


class AlarmWatch:
    """The daemon's alarms: evaluated and reconciled from its loop (see the module)."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        node: str,
        clock: Callable[[], datetime],
        free_bytes: Callable[[Path], int | None] = _free_bytes,
    ) -> None:
        self.config = config
        self.node = node
        self._clock = clock
        self._free_bytes = free_bytes
        self._zone = ZoneInfo(config.timezone)
        self._thresholds = thresholds_of(config)
        self._deadlines = [
            (expect, Deadlines(expect.schedule, self._zone, expect.grace)) for expect in config.expectations
        ]

    def facts(self, store: LedgerReader, pauses: Sequence[Pause], *, now: datetime) -> AlarmFacts:
        deliveries: list[FailingDelivery] = []
        waiting: list[WaitingJournal] = []
        for journal in store.journals(states=[JournalState.SEALED, JournalState.APPROVED]):
            if journal.state is JournalState.SEALED and journal.sealed_at is not None:
                waiting.append(WaitingJournal(journal.journal_id, journal.sealed_at))
            elif journal.state is JournalState.APPROVED and journal.last_error:
                failures = [
                    datetime.fromisoformat(at)
                    for at, kind, _, _ in store.events_about([journal.journal_id])
                    if kind in ("delivery-retry", "delivery-failed")
                ]
                since = min(failures, default=journal.approved_at or journal.sealed_at or now)
                deliveries.append(
                    FailingDelivery(
                        journal.journal_id,
                        since,
                        journal.last_error,
                        permanent=journal.last_error.startswith("PERMANENT"),
                    )
                )
        windows = [
            window
            for expect, deadlines in self._deadlines
            if (window := expected_window(expect, deadlines, store, now=now)) is not None
        ]
        return AlarmFacts(
            node=self.node,
            data_dir=str(self.config.data_dir),
            free_bytes=self._free_bytes(self.config.data_dir),
            zone=self.config.timezone,
            windows=windows,
            deliveries=deliveries,
            waiting=waiting,
            quarantined=[
                QuarantinedFile(record.id, record.name, record.judged_at or record.received_at)
                for record in store.quarantined_files(unresolved_only=True)
            ],
            pauses=[PauseFact(pause.scope, pause.since, pause.cause) for pause in pauses],
        )

    def evaluate(self, store: AlarmSide, pauses: Sequence[Pause]) -> list[AlarmRecord]:
        """Evaluate now and reconcile the store; the alarms this node raised or resolved (logged)."""
        now = self._clock()
        conditions = evaluate(self.facts(store, pauses, now=now), self._thresholds, now=now)
        changed = store.reconcile_alarms(
            conditions, node=self.node, channels=self.config.alarms.channels, now=now
        )
        for alarm in changed:
            if alarm.firing:
                log.warning(
                    "alarm %s fired for %s: %s",
                    alarm.alarm,
                    alarm.subject,
                    alarm.message_en,
                    extra={"event": "alarm-fired", "alarm": alarm.alarm, "subject": alarm.subject},
                )
            else:
                log.info(
                    "alarm %s resolved for %s (it fired since %s)",
                    alarm.alarm,
                    alarm.subject,
                    alarm.since.isoformat(),
                    extra={"event": "alarm-resolved", "alarm": alarm.alarm, "subject": alarm.subject},
                )
        return changed


# -- telling the channels ----------------------------------------------------------------------------


def message_of(notification: AlarmNotification) -> AlarmMessage:
    alarm = notification.alarm
    return AlarmMessage(
        alarm=alarm.alarm,
        state=notification.state,
        subject=alarm.subject,
        since=alarm.since.isoformat(),
        message_sv=alarm.message_sv,
        message_en=alarm.message_en,
        node=notification.node,
        gateway_version=__version__,
        idempotency_key=notification.idempotency_key,
    )


class AlarmSender:
    """Sends the outbox's due notifications, from a thread of its own (or once, by :meth:`send_due`)."""

    def __init__(
        self,
        open_store: Callable[[], AlarmBook],
        channels: Sequence[AlarmChannel],
        *,
        clock: Callable[[], datetime],
        backoff: Backoff = NOTIFY_BACKOFF,
        poll_seconds: float = SENDER_POLL_SECONDS,
    ) -> None:
        self._open_store = open_store
        self._channels = {channel.name: channel for channel in channels}
        self._clock = clock
        self._backoff = backoff
        self._poll_seconds = poll_seconds
        self._store: AlarmBook | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alarm-sender", daemon=True)
        self._store_failing = False

    def start(self) -> None:
        if self._channels:
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.send_due()
            except Exception:
                # The thread must outlive whatever a channel does: told, and tried again later.
                log.exception("alarm notifications: unexpected error (tried again)")
                self._close()
            self._wake.wait(self._poll_seconds)
            self._wake.clear()

    def _close(self) -> None:
        if self._store is not None:
            with contextlib.suppress(StoreError):
                self._store.close()
            self._store = None

    def send_due(self) -> int:
        """One look into the outbox: every due notification sent or put off. How many were sent."""
        if not self._channels:
            return 0
        sent = 0
        try:
            if self._store is None:
                self._store = self._open_store()
            store = self._store
            # No more than can be sent within the lease, each taking up to its timeout: a
            # notification whose lease ran out mid-batch would be sent again by another node.
            for notification in store.take_notifications(
                now=self._clock(), lease_seconds=NOTIFY_LEASE_SECONDS, limit=NOTIFY_BATCH
            ):
                if self._stop.is_set() and sent:
                    break
                if self._send(store, notification):
                    sent += 1
            self._store_failing = False
        except StoreError as error:
            if not self._store_failing:
                log.warning("alarm notifications wait: the store cannot be used (%s); tried again", error)
            self._store_failing = True
            self._close()
        return sent

    def _send(self, store: AlarmBook, notification: AlarmNotification) -> bool:
        channel = self._channels.get(notification.channel)
        fields = {"alarm": notification.alarm.alarm, "subject": notification.alarm.subject}
        try:
            if channel is None:
                raise ChannelError(f"the channel {notification.channel} is no longer configured")
            channel.send(message_of(notification))
        except ChannelError as error:
            delay = self._backoff.delay(notification.attempts)
            store.notification_failed(
                notification.id, str(error), retry_at=self._clock() + timedelta(seconds=delay)
            )
            log.warning(
                "alarm %s (%s) not told by %s: %s; tried again in %.0f s",
                notification.alarm.alarm,
                notification.state,
                notification.channel,
                error,
                delay,
                extra={"event": "alarm-notification-failed", **fields},
            )
            return False
        store.notification_sent(notification.id, now=self._clock())
        log.info(
            "alarm %s (%s) told by %s",
            notification.alarm.alarm,
            notification.state,
            notification.channel,
            extra={"event": "alarm-notified", **fields},
        )
        return True
