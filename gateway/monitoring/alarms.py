"""Alarms: the hook every reader of alarm states goes through (`status`, ``/readyz``, ``/metrics``).

No alarm is defined yet: :func:`read_alarms` returns none. When alarms come, they are read here
and every reader shows them at once, the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.store.roles import LedgerReader


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm on one subject (a source, a client, a journal), firing or resolved."""

    alarm: str
    subject: str
    firing: bool
    since: datetime
    message: str


def read_alarms(store: LedgerReader, *, now: datetime) -> list[Alarm]:
    """Every alarm's state, firing or lately resolved (none yet)."""
    del store, now  # what alarms will be read from and measured against
    return []
