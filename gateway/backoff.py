"""Waiting before trying again: one named policy, exponential with a cap and jitter.

Jitter keeps several files, journals or nodes that failed together from retrying in step.

>>> policy = Backoff(base_seconds=1.0, max_seconds=30.0, jitter=0.0)
>>> [policy.delay(n) for n in (1, 2, 3, 6, 100)]
[1.0, 2.0, 4.0, 30.0, 30.0]
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    base_seconds: float
    max_seconds: float
    #: Each delay is scaled by a random factor in [1 - jitter, 1 + jitter] (then capped).
    jitter: float = 0.2

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1 for the first).

        Jitter never takes a delay past the cap:

        >>> capped = Backoff(base_seconds=10.0, max_seconds=11.0, jitter=0.5)
        >>> max(capped.delay(1) for _ in range(200)) <= 11.0
        True
        """
        exponent = min(max(failures - 1, 0), 62)  # 2**62 s is already far past any cap
        raw = min(self.max_seconds, self.base_seconds * 2.0**exponent)
        if self.jitter:
            raw *= random.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        return min(self.max_seconds, raw)
