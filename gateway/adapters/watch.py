"""Waking the daemon early when a file in a local folder is finished (watchdog).

Only a wake-up: the source's full scan is the truth (inotify drops events when its queue
overflows, and network shares send none), so a missed event only delays a file.
"""

from __future__ import annotations

import threading
from pathlib import Path

from watchdog.events import FileClosedEvent, FileMovedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer


class _WakeOnFinishedFile(FileSystemEventHandler):
    def __init__(self, wake: threading.Event) -> None:
        self._wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._wake.set()


class FolderWatcher:
    """Wakes the daemon when a file in a folder is closed after writing or moved into place.

    "Created" fires when a producer opens the file, not when it is complete, so only "closed" and
    "moved" events are asked for; the scan decides whether the file is really finished.
    """

    def __init__(self, folders: list[Path], wake: threading.Event) -> None:
        self._observer = Observer()
        handler = _WakeOnFinishedFile(wake)
        for folder in folders:
            self._observer.schedule(handler, str(folder), event_filter=[FileClosedEvent, FileMovedEvent])

    def start(self) -> None:
        self._observer.daemon = True
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)
