"""Faults planted through the gateway's seams, for tests only (production code has no test hook).

In-process tests replace the one function every file's content goes through,
:func:`gateway.service.intake.validate_file`, with one that fails on files whose name holds a marker.
Process tests start `tests/faulty_gateway.py`, which does the same from ``$GATEWAY_TEST_FAULT``
and then runs the real command line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.backoff import Backoff
from gateway.monitoring.heartbeat import Heartbeat
from gateway.service import intake as pipeline

#: ``<kind>:<marker>``: a file whose name contains the marker makes the gateway exit (like a
#: crash inside a C library), raise, or hang past its time limit; ``hang-loop:<path>``: the main
#: loop hangs while the file at <path> exists (see :func:`hanging_heartbeat`);
#: ``exit-before-receipt-upload:<path>``: the gateway dies (as by kill -9) just before it sends
#: a copy of a receipt to a sender's receipt folder, once, while the file at <path> exists.
FAULT_ENV = "GATEWAY_TEST_FAULT"


def faulty(validate: Callable[..., Any], kind: str, marker: str) -> Callable[..., Any]:
    def validate_file(path: Any, settings: Any, *, name: str | None = None, on_case: Any = None) -> Any:
        if marker in (name or ""):
            if kind == "exit":
                os._exit(70)
            if kind == "raise":
                raise RuntimeError(f"injected fault for {name}")
            if kind == "hang":
                time.sleep(3600)
        return validate(path, settings, name=name, on_case=on_case)

    return validate_file


def hanging_heartbeat(trigger: Path) -> type[Heartbeat]:
    """A heartbeat whose beat blocks while ``trigger`` exists: the main loop, which beats it every
    turn, hangs there as a loop stuck in a call would, and stops beating."""

    class HangingHeartbeat(Heartbeat):
        def beat(self, *, allowance: float | None = None) -> None:
            while trigger.exists():
                time.sleep(0.05)
            super().beat(allowance=allowance)

    return HangingHeartbeat


def dying_before_receipt_upload(send: Callable[..., Any], trigger: Path) -> Callable[..., Any]:
    """``ReceiptReturns._send`` that ends the process without a word the first time it is called
    while ``trigger`` exists: the local receipt is published and its copy queued, the sender's
    copy not yet sent. The trigger goes first, so that the next start sends it."""

    def _send(self: Any, *args: Any, **kwargs: Any) -> Any:
        if trigger.exists():
            trigger.unlink()
            os._exit(70)
        return send(self, *args, **kwargs)

    return _send


def plant(monkeypatch: pytest.MonkeyPatch, kind: str = "raise", marker: str = "poison") -> None:
    """Make files named with ``marker`` fail in this process; retries without a backoff."""
    monkeypatch.setattr(pipeline, "validate_file", faulty(pipeline.validate_file, kind, marker))
    monkeypatch.setattr(
        pipeline, "FILE_RETRY_BACKOFF", Backoff(base_seconds=0.0, max_seconds=0.0, jitter=0.0)
    )
