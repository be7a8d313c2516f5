"""The daemon: scan sources, take finished files through intake, seal and deliver journals.

A runner in the manner of Mailman's: one loop (:meth:`Daemon._one_iteration`) in the main thread
does all the work, one file at a time; signal handlers and the scheduler only set flags and wake
the loop. SIGTERM therefore lets the file in hand finish, and nothing is ever half-done by a thread.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TextIO
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from gateway import __version__
from gateway.adapters import Source
from gateway.adapters.folder import FolderSource, FolderTransport, FolderWatcher
from gateway.adapters.sftp import Endpoint, SftpSource, SftpTransport
from gateway.config import GatewayConfig
from gateway.errors import ConfigError, SourceError, StoreError
from gateway.journals import JournalService, Transport
from gateway.pipeline import Folders, Intake
from gateway.reporting import build_report, write_report
from gateway.store.sqlite import SqliteStore

log = logging.getLogger(__name__)

LAST_SCHEDULED_SEAL = "last_scheduled_seal"
LAST_SCHEDULED_REPORT = "last_scheduled_report"
#: Daily reports written at start for the days a stop missed, at most.
MAX_CATCH_UP_REPORTS = 31
#: A scheduled seal that starts late (a busy loop, a suspended VM) still runs: APScheduler's
#: default grace of 1 s silently drops a job that starts 2.5 s late.
MISFIRE_GRACE_SECONDS = 6 * 3600
#: How often to look while a producer has a file under a temporary name.
RENAME_POLL_SECONDS = 0.1


def utc_now() -> datetime:
    return datetime.now(UTC)


def store_path(config: GatewayConfig) -> Path:
    url = config.store_url
    if not url.startswith("sqlite:///"):
        raise ConfigError(
            f"store.url: {url.split(':', 1)[0]} is not available in this version; use sqlite:///"
        )
    path = Path(url.removeprefix("sqlite:///"))
    return path if path.is_absolute() else (config.data_dir / path).resolve()


def open_store(config: GatewayConfig) -> SqliteStore:
    return SqliteStore(store_path(config))


def make_transport(config: GatewayConfig, folders: Folders) -> Transport:
    if config.delivery.type == "sftp":
        return SftpTransport(
            Endpoint.from_settings(config.delivery.settings, base=config.base_dir, where="delivery")
        )
    return FolderTransport(folders.journals)


def make_sources(config: GatewayConfig, folders: Folders) -> list[Source]:
    sources: list[Source] = []
    for source in config.sources:
        if source.type == "sftp":
            sources.append(SftpSource(source, base=config.base_dir, staging=folders.staging))
        else:
            sources.append(FolderSource(source))
    return sources


def _single_instance(path: Path) -> TextIO:
    """Hold an exclusive lock on var/gateway.lock for the life of the process.

    Two daemons on one store would each recover the other's half-finished files; the commands
    (`journal`, `status`) do not take this lock and stay safe to use beside the daemon.
    """
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(f"{path}: another inkasso-gateway is running on this data folder") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


class Daemon:
    def __init__(
        self, config: GatewayConfig, *, once: bool = False, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.config = config
        self.once = once
        self._clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._seal_requested = threading.Event()
        self._report_requested = threading.Event()
        self._report_days: list[date] = []  # days owed after a stop; empty: yesterday
        self._zone = ZoneInfo(config.timezone)
        self.folders = Folders.from_config(config)

    # -- signals only set flags --------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: finishing the file in hand, then stopping", signal.Signals(signum).name)
        self._stop.set()
        self._wake.set()

    def request_seal(self) -> None:
        self._seal_requested.set()
        self._wake.set()

    def request_report(self) -> None:
        self._report_requested.set()
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> int:
        os.umask(0o077)  # receipts, journals and the store hold personal data: owner-only
        self.folders.ensure(sources=self.config.sources)
        lock = _single_instance(self.folders.var / "gateway.lock")
        store = open_store(self.config)
        sources = make_sources(self.config, self.folders)
        intake = Intake(self.config, store, self.folders, clock=self._clock)
        journals = JournalService(
            self.config, store, self.folders, make_transport(self.config, self.folders), clock=self._clock
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        log.info(
            "inkasso-gateway %s started: %d source(s), store %s (schema %d), delivery %s, schedule %r in %s",
            __version__,
            len(sources),
            store.path,
            store.schema_version(),
            self.config.delivery.type,
            self.config.delivery.schedule,
            self.config.timezone,
        )
        recovered = intake.recover()
        if recovered:
            log.info("finished %d file(s) that a previous run had committed", recovered)
        if self._missed(store, LAST_SCHEDULED_SEAL, self.config.delivery.schedule):
            log.info("a scheduled seal was missed while the gateway was stopped: sealing now")
            self._seal_requested.set()
        report_schedule = self.config.reports.schedule
        last_report = store.get_meta(LAST_SCHEDULED_REPORT)
        if report_schedule and self._missed(store, LAST_SCHEDULED_REPORT, report_schedule):
            assert last_report is not None
            # Every day since the last run that wrote one (a gateway stopped over a weekend owes
            # three), at most a month.
            yesterday = self._clock().astimezone(self._zone).date() - timedelta(days=1)
            first = max(
                datetime.fromisoformat(last_report).astimezone(self._zone).date(),
                yesterday - timedelta(days=MAX_CATCH_UP_REPORTS - 1),
            )
            self._report_days = [first + timedelta(days=n) for n in range((yesterday - first).days + 1)]
            log.info(
                "scheduled reports were missed while the gateway was stopped: writing %d now",
                len(self._report_days),
            )
            self._report_requested.set()

        watcher = scheduler = None
        if not self.once:
            watcher = FolderWatcher([s.folder for s in sources if isinstance(s, FolderSource)], self._wake)
            watcher.start()
            scheduler = BackgroundScheduler(timezone=self._zone)
            scheduler.add_job(
                self.request_seal,
                CronTrigger.from_crontab(self.config.delivery.schedule, timezone=self._zone),
                coalesce=True,
                max_instances=1,
                misfire_grace_time=MISFIRE_GRACE_SECONDS,
            )
            if report_schedule:
                scheduler.add_job(
                    self.request_report,
                    CronTrigger.from_crontab(report_schedule, timezone=self._zone),
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=MISFIRE_GRACE_SECONDS,
                )
            scheduler.start()
        deadline = (
            time.monotonic() + 30 + 10 * max((s.stable_seconds for s in self.config.sources), default=0)
        )
        try:
            while not self._stop.is_set():
                self._one_iteration(sources, intake, journals, store)
                waiting = [w for w in (s.next_stable_in() for s in sources) if w is not None]
                if self.once and (not waiting or time.monotonic() > deadline):
                    break
                timeout = min([self.config.scan_seconds, *(w + 0.05 for w in waiting if w is not None)])
                if any(source.being_written for source in sources):
                    # inotify reports a rename within the folder only after pairing its two halves
                    # (half a second in watchdog): look again soon instead of waiting for the event.
                    timeout = min(timeout, RENAME_POLL_SECONDS)
                self._wake.wait(timeout)
                self._wake.clear()
        finally:
            lock.close()
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            if watcher is not None:
                # Stopping the observer mid-read makes watchdog log a harmless error; keep the log clean.
                logging.getLogger("watchdog.observers.inotify").setLevel(logging.CRITICAL)
                watcher.stop()
            store.close()
        log.info("inkasso-gateway stopped")
        return 0

    def _one_iteration(
        self, sources: list[Source], intake: Intake, journals: JournalService, store: SqliteStore
    ) -> None:
        for source in sources:
            try:
                candidates = source.scan()
            except SourceError as error:
                log.warning("source %s: %s", source.name, error)
                store.log_event("source-error", source.name, str(error), now=self._clock())
                self._record_endpoint(store, source)
                continue
            for candidate in candidates:
                if self._stop.is_set():
                    return
                try:
                    intake.process(candidate, source)
                except (SourceError, StoreError) as error:
                    log.warning("file %s: %s (tried again at the next scan)", candidate.name, error)
                    store.log_event("file-error", candidate.name, str(error), now=self._clock())
                except Exception as error:
                    # The daemon never dies on a file: log it, and the next scan tries again.
                    log.exception("file %s: unexpected error (tried again at the next scan)", candidate.name)
                    store.log_event("file-error", candidate.name, repr(error), now=self._clock())
            source.end_batch()
            self._record_endpoint(store, source)
        if self._stop.is_set():
            return
        try:
            if self._seal_requested.is_set():
                self._seal_requested.clear()
                journals.seal()
                store.set_meta(LAST_SCHEDULED_SEAL, self._clock().isoformat())
            journals.deliver_approved()
            self._record_endpoint(store, journals.transport)
        except Exception as error:
            log.exception("sealing or delivering journals failed (tried again at the next round)")
            store.log_event("journal-error", "", repr(error), now=self._clock())
        if self._report_requested.is_set():
            self._report_requested.clear()
            self._write_daily_report(store)

    def _write_daily_report(self, store: SqliteStore) -> None:
        """The scheduled report: the whole of the previous day in the gateway's zone (and the days
        a stop made it miss)."""
        now = self._clock()
        days = self._report_days or [now.astimezone(self._zone).date() - timedelta(days=1)]
        self._report_days = []
        for day in days:
            try:
                report = build_report(
                    store, self.config, period_from=day, period_to=day, client=None, now=now
                )
                written = write_report(report, self.folders.reports)
            except Exception as error:
                log.exception("writing the report of %s failed (it is written at the next start)", day)
                store.log_event("report-error", day.isoformat(), repr(error), now=now)
                return
            if report.balanced:
                log.info("report of %s written: %s; everything accounted for", day, written[0])
            else:
                log.warning(
                    "report of %s written: %s; NOT accounted for: %d item(s)",
                    day,
                    written[0],
                    len(report.discrepancies) + len(report.gaps),
                )
        store.set_meta(LAST_SCHEDULED_REPORT, now.isoformat())

    @staticmethod
    def _record_endpoint(store: SqliteStore, endpoint: object) -> None:
        """For `status`: an SFTP endpoint's last success and last error (never a secret)."""
        name = getattr(endpoint, "name", "delivery")
        if hasattr(endpoint, "last_success"):
            state = {
                "last_success": endpoint.last_success,
                "last_error": getattr(endpoint, "last_error", None),
            }
            store.set_meta(f"endpoint:{name}", json.dumps(state))

    def _missed(self, store: SqliteStore, key: str, schedule: str) -> bool:
        """True when a scheduled job fell due while the gateway was not running (run it once now)."""
        now = self._clock()
        last = store.get_meta(key)
        if last is None:
            store.set_meta(key, now.isoformat())
            return False
        trigger = CronTrigger.from_crontab(schedule, timezone=self._zone)
        since = datetime.fromisoformat(last) + timedelta(seconds=1)
        due = trigger.get_next_fire_time(None, since.astimezone(self._zone))
        return due is not None and due <= now
