"""systemd's notify protocol, spoken directly: a few lines in one datagram to $NOTIFY_SOCKET.

``READY=1`` once the daemon has recovered and looked at its sources, ``STATUS=`` a one-line summary
whenever it changes, ``WATCHDOG=1`` while $WATCHDOG_USEC asks for it (sent by the main loop itself,
so that a hung loop stops sending and systemd restarts the service), ``STOPPING=1`` on SIGTERM.
Without $NOTIFY_SOCKET every call does nothing. An address starting with ``@`` is in the abstract
namespace. A failed send is logged once and never stops the daemon: systemd's own timeouts tell.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("gateway.daemon")


def _address(value: str) -> str | bytes | None:
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock and the like: not spoken here


class Notifier:
    def __init__(
        self, environ: Mapping[str, str] | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        environ = os.environ if environ is None else environ
        self._clock = clock
        self._address = _address(environ.get("NOTIFY_SOCKET", ""))
        if environ.get("NOTIFY_SOCKET") and self._address is None:
            log.warning(
                "NOTIFY_SOCKET=%s is not a socket path or @name: systemd is not told",
                environ["NOTIFY_SOCKET"],
            )
        self.watchdog_seconds: float | None = None
        usec = environ.get("WATCHDOG_USEC", "")
        watched_pid = environ.get("WATCHDOG_PID", "")
        # systemd names the process it watches; a child that inherited the variables is not it.
        if (
            self._address is not None
            and usec.isdigit()
            and int(usec) > 0
            and watched_pid in ("", str(os.getpid()))
        ):
            self.watchdog_seconds = int(usec) / 1e6
        self._last_watchdog: float | None = None
        self._status: str | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def _send(self, *lines: str) -> None:
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(lines).encode("utf-8"), self._address)
        except OSError as error:
            if not self._warned:
                log.warning("cannot notify systemd: %s", error.strerror or error)
                self._warned = True

    def ready(self, summary: str) -> None:
        self._status = _one_line(summary)
        self._send("READY=1", f"STATUS={self._status}")

    def status(self, summary: str) -> None:
        line = _one_line(summary)
        if line != self._status:
            self._status = line
            self._send(f"STATUS={line}")

    def watchdog(self) -> None:
        """WATCHDOG=1, at most every half interval (systemd's own advice)."""
        if self.watchdog_seconds is None:
            return
        now = self._clock()
        if self._last_watchdog is None or now - self._last_watchdog >= self.watchdog_seconds / 2:
            self._last_watchdog = now
            self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._send("STOPPING=1", "STATUS=stopping: finishing the file in hand")


def _one_line(text: str) -> str:
    return " ".join(text.split())
