"""Pauses: what the daemon stops doing while its environment fails, and when it tries again.

A failure of the environment (a full disk, a read-only folder, the store's lock held elsewhere, an
SFTP server down) is not a file's fault. The daemon pauses what it affects (``intake``, one
source ``source:<name>``, ``delivery``, or everything that needs the ``store``), says so once per
distinct cause with what it waits for, tries again after a capped backoff, and resumes by itself
(saying so once) when a try succeeds. Nothing here touches the store: a pause of the store must
be recordable while the store is the thing that fails.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway.backoff import Backoff

# The logger keeps its published name (operators filter on it), wherever the module lives.
log = logging.getLogger("gateway.pauses")

#: Trying again after an environment failure: 1 s, 2 s, 4 s ... at most 30 s, with jitter.
PAUSE_BACKOFF = Backoff(base_seconds=1.0, max_seconds=30.0)


@dataclass(slots=True)
class Pause:
    scope: str  # intake | store | delivery | source:<name>
    cause: str  # what failed, in a sentence
    waits_for: str  # what would end it
    since: datetime
    failures: int
    next_try: float  # on the monotonic clock
    folder: str | None = None  # the folder whose failure it is, probed before the next try

    def as_json(self, now: float) -> dict[str, object]:
        return {
            "scope": self.scope,
            "cause": self.cause,
            "waits_for": self.waits_for,
            "since": self.since.isoformat(),
            "failures": self.failures,
            "next_try_in_seconds": round(max(0.0, self.next_try - now), 1),
        }


class Pauses:
    """The daemon's current pauses, each with its own backoff."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
        backoff: Backoff = PAUSE_BACKOFF,
    ) -> None:
        self._clock = clock
        self._monotonic = monotonic
        self._backoff = backoff
        self._pauses: dict[str, Pause] = {}

    def failed(self, scope: str, cause: str, *, waits_for: str, folder: str | None = None) -> Pause:
        """Record a failure in ``scope``: log it once per distinct cause, back off."""
        pause = self._pauses.get(scope)
        if pause is None or pause.cause != cause:
            failures = pause.failures if pause is not None else 0
            since = pause.since if pause is not None else self._clock()
            pause = Pause(scope, cause, waits_for, since, failures, 0.0, folder)
            self._pauses[scope] = pause
            delay = self._backoff.delay(failures + 1)
            log.warning(
                "%s paused: %s; waiting for %s (trying again in %.0f s, then with a growing pause up to %.0f s)",
                scope,
                cause,
                waits_for,
                delay,
                self._backoff.max_seconds,
                extra={"event": "paused", "scope": scope},
            )
        else:
            delay = self._backoff.delay(pause.failures + 1)
        pause.failures += 1
        pause.next_try = self._monotonic() + delay
        return pause

    def succeeded(self, scope: str) -> None:
        """A try in ``scope`` worked: end its pause (told once)."""
        pause = self._pauses.pop(scope, None)
        if pause is not None:
            took = (self._clock() - pause.since).total_seconds()
            log.info(
                "%s resumed after %.0f s (it was paused: %s)",
                scope,
                took,
                pause.cause,
                extra={"event": "resumed", "scope": scope},
            )

    def blocked(self, scope: str) -> bool:
        """True while ``scope`` is paused and its next try has not come."""
        pause = self._pauses.get(scope)
        return pause is not None and pause.next_try > self._monotonic()

    def paused(self, scope: str) -> Pause | None:
        return self._pauses.get(scope)

    def next_try_in(self) -> float | None:
        """Seconds until the earliest paused scope may be tried again; None when nothing is paused."""
        if not self._pauses:
            return None
        now = self._monotonic()
        return max(0.0, min(pause.next_try - now for pause in self._pauses.values()))

    def all(self) -> list[Pause]:
        return sorted(self._pauses.values(), key=lambda pause: pause.since)

    def as_json(self) -> list[dict[str, object]]:
        now = self._monotonic()
        return [pause.as_json(now) for pause in self.all()]
