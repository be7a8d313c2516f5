"""What the running daemon says about itself, for `status` (and later health checks) to read.

The daemon holds an exclusive ``flock`` on ``var/gateway.lock`` for as long as it runs: a command
that cannot take a shared lock on it knows a daemon runs on this data folder, whatever the pid
file says (a killed daemon's lock is released by the kernel).

Beside it, ``var/daemon.state`` holds the daemon's own account in JSON: its pid, since when it
runs, the last heartbeat of its loop, what is paused and why, the files that wait. It is written
in place into room allocated when the daemon starts, so that it can still be written when the
disk is full (exactly when it matters most), and without going through the store (which may be
what fails). A reader may catch a write half done; it simply reads again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

# The logger keeps its published name (operators filter on it), wherever the module lives.
log = logging.getLogger("gateway.runstate")

LOCK_NAME = "gateway.lock"
STATE_NAME = "daemon.state"
#: Room reserved for the state; what does not fit is cut (lists are shortened first).
STATE_BYTES = 256 * 1024


class RunState:
    """The daemon's side: the state file, written in place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._descriptor: int | None = None
        self._written = 0
        self._warned = False
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            log.warning("cannot keep %s for `status`: %s", path, error.strerror or error)
            return
        try:
            os.ftruncate(descriptor, 0)
            try:
                os.posix_fallocate(descriptor, 0, STATE_BYTES)
            except OSError:
                os.pwrite(descriptor, b" " * STATE_BYTES, 0)  # no fallocate here: write the room
        except OSError as error:
            log.warning("cannot reserve room for %s: %s", path, error.strerror or error)
        self._descriptor = descriptor

    def write(self, facts: dict[str, Any]) -> None:
        if self._descriptor is None:
            return
        data = _fitted(facts)
        try:
            # Padding over the rest of what was there before: the reader stops at the JSON's end.
            os.pwrite(self._descriptor, data + b" " * max(0, self._written - len(data)), 0)
            self._written = len(data)
        except OSError as error:
            if not self._warned:
                log.warning("cannot update %s for `status`: %s", self.path, error.strerror or error)
                self._warned = True

    def close(self, facts: dict[str, Any] | None = None) -> None:
        if facts is not None:
            self.write(facts)
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


def _fitted(facts: dict[str, Any]) -> bytes:
    data = json.dumps(facts, ensure_ascii=False, default=str).encode("utf-8")
    while len(data) > STATE_BYTES:
        longest = max(
            (k for k, v in facts.items() if isinstance(v, list) and v),
            key=lambda k: len(facts[k]),
            default=None,
        )
        if longest is None:
            return json.dumps({"error": "state too large"}).encode()
        facts = {**facts, longest: facts[longest][: len(facts[longest]) // 2]}
        data = json.dumps(facts, ensure_ascii=False, default=str).encode("utf-8")
    return data


#: Where each node keeps its lock and its account when several nodes share the data folder.
NODES_FOLDER = "nodes"


def lock_path(var: Path, node: str | None = None) -> Path:
    """The lock a daemon holds while it runs: var/gateway.lock (one daemon per data folder), or
    with ``node`` (several nodes share it) var/nodes/<node>.lock: one daemon per node name."""
    return var / LOCK_NAME if node is None else var / NODES_FOLDER / f"{node}.lock"


def state_path(var: Path, node: str | None = None) -> Path:
    return var / STATE_NAME if node is None else var / NODES_FOLDER / f"{node}.state"


def read_state(var: Path, node: str | None = None) -> dict[str, Any] | None:
    """The daemon's last account of itself, or None when there is none (or it cannot be read)."""
    path = state_path(var, node)
    for _ in range(5):
        try:
            text = path.read_bytes().rstrip(b" \x00\n")
        except OSError:
            return None
        if not text:
            return None
        with contextlib.suppress(ValueError):
            value = json.loads(text)
            return value if isinstance(value, dict) else None
        time.sleep(0.02)  # caught in the middle of a write: read again
    return None


def daemon_running(var: Path, node: str | None = None) -> bool:
    """True when a daemon holds the data folder's lock (it is released when the process dies)."""
    path = lock_path(var, node)
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(descriptor)
    return False
