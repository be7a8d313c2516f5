"""Logging for operations: readable lines by default, JSON lines with ``--log-format json``.

A JSON line carries ``time``, ``level``, ``logger`` and ``message``, and the fields the main log
calls give with ``extra=`` for machines to filter on instead of the sentence: ``event`` (what
happened: ``file-claimed``, ``file-judged``, ``journal-delivered``, ...), ``file``, ``source``,
``client``, ``sha256``, ``journal``, ``status``, ``scope`` and (for alarms) ``alarm`` and ``subject``.

Every record passes a filter that masks anything shaped like a personal identity number
(``YYMMDD-XXXX``), whatever the code that logged it: a log line is the easiest place for one to
leak. The same filter escapes control characters (a file name may hold a newline, and would
otherwise forge a log line of its own).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from gateway.domain.identity import mask_identities
from gateway.fsutil import display_name

_STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class MaskIdentities(logging.Filter):
    """Rewrites each record's message, and the text of each field given with ``extra=`` (a file
    name, say), with identity numbers masked (organisation numbers stay) and control characters
    escaped (one record, one line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_identities(display_name(message))
        if masked != message or record.args:
            record.msg, record.args = masked, None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRIBUTES and isinstance(value, str):
                setattr(record, key, mask_identities(display_name(value)))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRIBUTES})
        if record.exc_info:
            entry["error"] = mask_identities(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatException(self, ei: object) -> str:  # noqa: N802 - logging's own name
        return mask_identities(super().formatException(ei))  # type: ignore[arg-type]


def setup_logging(*, json_lines: bool = False, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(MaskIdentities())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler logs every job run at INFO; the gateway logs what the job did instead.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
