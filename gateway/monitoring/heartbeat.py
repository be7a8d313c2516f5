"""The main loop's heartbeat: beaten by the loop, read by ``/livez`` and systemd's watchdog.

The loop beats once per turn (it waits at most ``scan_seconds`` between turns) and before each
file it takes in hand. A file may take long, but never unbounded: the intake stops a file after
its own time limit. So a beat before a file carries that limit as its allowance, and the loop
counts as alive until the allowance runs out; otherwise it is alive while its last beat is
younger than :data:`TURNS` turns. A loop stuck anywhere else stops beating and is seen as hung.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: A loop is hung once it missed this many turns of ``scan_seconds`` (and no allowance covers it).
TURNS = 3


class Heartbeat:
    """Beaten from the main thread, read from others (a pair swapped at once: no lock needed)."""

    def __init__(self, *, scan_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_seconds = TURNS * scan_seconds
        self._clock = clock
        self._last = (clock(), self.limit_seconds)

    def beat(self, *, allowance: float | None = None) -> None:
        """The loop is here now; with ``allowance``, it enters a step bounded by that many seconds."""
        self._last = (self._clock(), max(self.limit_seconds, allowance or 0.0))

    def age(self) -> float:
        """Seconds since the last beat."""
        return self._clock() - self._last[0]

    def alive(self) -> bool:
        at, allowed = self._last
        return self._clock() - at <= allowed
