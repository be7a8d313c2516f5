"""The daemon's monitor: what ties its main loop to Prometheus, health checks and systemd.

The daemon (:class:`gateway.service.runner.Daemon`) tells it when the loop turns, when a file is
about to be taken, when it is ready, what it is doing and when it stops; the monitor beats the
:class:`~gateway.monitoring.heartbeat.Heartbeat`, speaks systemd's notify protocol, and serves
``/metrics``, ``/livez`` and ``/readyz`` from a thread of its own when ``[monitoring] listen`` is
configured. That thread only reads: the heartbeat, the store (read-only, per request) and the
data folder, exactly as `status` does; it never touches the loop's state.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gateway.bootstrap import wire
from gateway.config import GatewayConfig
from gateway.monitoring.facts import status_facts
from gateway.monitoring.health import HEALTH_CONTENT_TYPE, readiness
from gateway.monitoring.heartbeat import Heartbeat
from gateway.monitoring.metrics import GatewayMetrics
from gateway.monitoring.notify import Notifier

log = logging.getLogger("gateway.monitoring")

#: How long after a failed bind (the address taken) the server is tried again.
BIND_RETRY_SECONDS = 30.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow scraper never holds up a stop

    def __init__(self, address: tuple[str, int], monitor: Monitor) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.monitor = monitor
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "inkasso-gateway"

    def do_GET(self) -> None:
        monitor = self.server.monitor
        path = self.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                body, content_type = monitor.metrics.exposition(self.headers.get("Accept"))
                self._answer(200, body, content_type)
            elif path == "/livez":
                code, text = monitor.liveness()
                self._answer(code, text.encode(), "text/plain; charset=utf-8")
            elif path == "/readyz":
                code, document = monitor.readiness()
                self._answer(
                    code, json.dumps(document, ensure_ascii=False, indent=2).encode(), HEALTH_CONTENT_TYPE
                )
            else:
                self._answer(404, b"not found: /metrics, /livez, /readyz\n", "text/plain; charset=utf-8")
        except Exception:
            log.exception("monitoring: %s failed", path)
            self._answer(500, b"internal error (see the gateway's log)\n", "text/plain; charset=utf-8")

    def _answer(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is not news; failures are logged above


class Monitor:
    """The daemon's :class:`~gateway.service.runner.LoopWatch`."""

    def __init__(
        self, config: GatewayConfig, *, heartbeat: Heartbeat | None = None, notifier: Notifier | None = None
    ) -> None:
        self.config = config
        self.heartbeat = heartbeat or Heartbeat(scan_seconds=config.scan_seconds)
        self.notifier = notifier or Notifier()
        self.metrics = GatewayMetrics(config, lambda: wire(config).open_reader())
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._next_bind: float | None = None

    # -- the loop's side -------------------------------------------------------------------------

    def open(self) -> None:
        self.heartbeat.beat()
        if self.config.monitoring.listen is not None:
            self._next_bind = 0.0
            self._serve()

    def beat(self, *, allowance: float | None = None) -> None:
        self.heartbeat.beat(allowance=allowance)
        self.notifier.watchdog()
        if self._next_bind is not None and time.monotonic() >= self._next_bind:
            self._serve()

    def max_wait(self) -> float | None:
        """The loop must turn at least this often: systemd's watchdog wants a sign every half
        interval, and a turn may wait a quarter before it beats."""
        seconds = self.notifier.watchdog_seconds
        return None if seconds is None else seconds / 4

    def ready(self, summary: str) -> None:
        self.notifier.ready(summary)

    def status(self, summary: str) -> None:
        self.notifier.status(summary)

    def stopping(self) -> None:
        self.notifier.stopping()

    def receipt_published(self, written_at: datetime) -> None:
        self.metrics.intake_seconds.observe(max(0.0, (datetime.now(UTC) - written_at).total_seconds()))

    def close(self) -> None:
        self._next_bind = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _serve(self) -> None:
        address = self.config.monitoring.listen
        assert address is not None
        try:
            self._server = _Server(address, self)
        except OSError as error:
            # Another process on the port must not stop the daemon's work: told, tried again.
            if self._next_bind == 0.0:
                log.error(
                    "monitoring: cannot listen on %s:%d: %s; trying again every %.0f s",
                    *address,
                    error.strerror or error,
                    BIND_RETRY_SECONDS,
                    extra={"event": "monitoring-unavailable"},
                )
            self._next_bind = time.monotonic() + BIND_RETRY_SECONDS
            return
        self._next_bind = None
        self._thread = threading.Thread(target=self._server.serve_forever, name="monitoring", daemon=True)
        self._thread.start()
        host, port = address
        log.info(
            "monitoring on http://%s:%d/ (/metrics, /livez, /readyz)",
            f"[{host}]" if ":" in host else host,
            port,
            extra={"event": "monitoring-started"},
        )

    # -- what the HTTP thread answers ------------------------------------------------------------

    def liveness(self) -> tuple[int, str]:
        age = self.heartbeat.age()
        if self.heartbeat.alive():
            return 200, f"ok: the main loop's last heartbeat was {age:.1f} s ago\n"
        return 503, f"hung: the main loop's last heartbeat was {age:.1f} s ago\n"

    def readiness(self) -> tuple[int, dict[str, Any]]:
        now = datetime.now(UTC)
        return readiness(status_facts(self.config, now=now), now=now)
