"""Alarms: the hook every reader of alarm states goes through (`status`, ``/readyz``, ``/metrics``).

The daemon raises and resolves alarms in the store (:mod:`gateway.service.alarms`); here they are
read back, the same way for every reader: each alarm and subject once, firing, or resolved within
the last :data:`RESOLVED_SHOWN` (so that ``/metrics`` shows it at 0 for a while).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.store.roles import LedgerReader

#: How long a resolved alarm is still shown (at 0 in /metrics).
RESOLVED_SHOWN = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm on one subject (a source, a client, a journal), firing or resolved."""

    alarm: str
    subject: str
    firing: bool
    since: datetime
    message_sv: str
    message_en: str
    resolved_at: datetime | None = None

    @property
    def message(self) -> str:
        return self.message_en


def read_alarms(store: LedgerReader, *, now: datetime) -> list[Alarm]:
    """Every alarm's state: the firing ones, and the ones resolved lately (unless the same alarm
    fires again on the subject), oldest first."""
    latest: dict[tuple[str, str], Alarm] = {}
    for record in store.alarm_states(resolved_since=now - RESOLVED_SHOWN):
        key = (record.alarm, record.subject)
        if key in latest and latest[key].firing and not record.firing:
            continue
        latest[key] = Alarm(
            alarm=record.alarm,
            subject=record.subject,
            firing=record.firing,
            since=record.since,
            message_sv=record.message_sv,
            message_en=record.message_en,
            resolved_at=record.resolved_at,
        )
    return sorted(latest.values(), key=lambda alarm: (alarm.since, alarm.alarm, alarm.subject))
