"""Monitoring: what the running gateway tells machines about itself.

- :mod:`~gateway.monitoring.facts`: the facts `status` prints, gathered once for `status`, the
  health check and the metrics alike, so that they never disagree;
- :mod:`~gateway.monitoring.metrics`: ``/metrics`` for Prometheus, the store's totals read at
  every scrape (they survive a restart) and the few figures only the process knows;
- :mod:`~gateway.monitoring.health`: ``/livez`` (the main loop's heartbeat) and ``/readyz``
  (the status facts as an ``application/health+json`` document);
- :mod:`~gateway.monitoring.notify`: systemd's notify protocol (READY, STATUS, WATCHDOG, STOPPING);
- :mod:`~gateway.monitoring.alarms`: the hook that reads alarm states from the store;
- :mod:`~gateway.monitoring.monitor`: the daemon's :class:`~gateway.service.runner.LoopWatch`,
  tying the heartbeat, the notifier and the HTTP server to the main loop.

It sits between the command line and the composition root: it opens the store to read through
:mod:`gateway.bootstrap` and never names a backend.
"""

from gateway.monitoring.heartbeat import Heartbeat
from gateway.monitoring.monitor import Monitor

__all__ = ["Heartbeat", "Monitor"]
