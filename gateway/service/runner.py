"""The daemon: scan sources, take finished files through intake, seal and deliver journals.

A runner in the manner of Mailman's: one loop (:meth:`Daemon._one_iteration`) in the main thread
does all the work, one file at a time; signal handlers and the scheduler only set flags and wake
the loop. SIGTERM therefore lets the file in hand finish, and nothing is ever half-done by a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
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
from typing import Any, Protocol, TextIO
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from gateway import __version__
from gateway.accounting.reports.build import build_report, write_report
from gateway.adapters import Source, Transport
from gateway.adapters.alarm_channels import AlarmChannel
from gateway.config import GatewayConfig
from gateway.errors import ConfigError, OutputError, SourceError, StoreError, StoreUnavailableError
from gateway.folders import Folders
from gateway.fsutil import write_new
from gateway.service.alarms import EVALUATE_SECONDS, AlarmSender, AlarmWatch
from gateway.service.consistency import describe_refusal, files_ahead_of_store
from gateway.service.intake import DEFAULT_FILE_TIMEOUT_SECONDS, Intake, output_error
from gateway.service.intake import DEFAULT_LEASE_SECONDS as NODE_LEASE_SECONDS
from gateway.service.journals import JournalService
from gateway.service.pauses import Pauses
from gateway.service.receipts import ReceiptReturns
from gateway.service.runstate import RunState, lock_path, state_path
from gateway.store import node_holder
from gateway.store.roles import Bookkeeping, LedgerReader, Nodes, Store

# The logger keeps its published name (operators filter on it), wherever the module lives.
log = logging.getLogger("gateway.daemon")

LAST_SCHEDULED_SEAL = "last_scheduled_seal"
LAST_SCHEDULED_REPORT = "last_scheduled_report"
#: Daily reports written at start for the days a stop missed, at most.
MAX_CATCH_UP_REPORTS = 31
#: A scheduled seal that starts late (a busy loop, a suspended VM) still runs: APScheduler's
#: default grace of 1 s silently drops a job that starts 2.5 s late.
MISFIRE_GRACE_SECONDS = 6 * 3600
#: How often to look while a producer has a file under a temporary name.
RENAME_POLL_SECONDS = 0.1
#: How long a start waits for the data folder's lock (a `status` holds it for an instant).
LOCK_WAIT_SECONDS = 2.0
#: How often claims of files that left their source are looked for.
VANISHED_CHECK_SECONDS = 60.0
#: The loop never spins faster than this, whatever it waits for.
MIN_WAIT_SECONDS = 0.02
#: How long the daemon waits for another process's write lock on the store before it pauses
#: (a command's seal, say) rather than blocking its loop.
DAEMON_BUSY_SECONDS = 10.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def _single_instance(path: Path) -> TextIO:
    """Hold an exclusive lock on var/gateway.lock for the life of the process (with several nodes
    on a PostgreSQL store, var/nodes/<node>.lock: one daemon per node name).

    Two daemons on one SQLite store would each recover the other's half-finished files; the
    commands (`journal`, `status`) do not take this lock and stay safe to use beside the daemon.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = path.open("a+")
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            # `status` takes a shared lock for an instant to see whether a daemon runs: wait that
            # out. Another daemon holds its lock for as long as it runs.
            if time.monotonic() > deadline:
                handle.close()
                raise ConfigError(
                    f"{path}: another inkasso-gateway is running on this data folder"
                    + (" as this node" if path.parent.name == "nodes" else "")
                ) from None
            time.sleep(0.05)
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
    except OSError as error:
        # A full disk must not stop the start: the lock is what counts (the pid is in daemon.state).
        log.warning("cannot write the pid into %s: %s", path, error.strerror or error)
    return handle


class Watcher(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class Parts(Protocol):
    """What the daemon is given by the composition root (:mod:`gateway.bootstrap`): it names no
    concrete store, source or transport itself."""

    @property
    def folders(self) -> Folders: ...

    def store_location(self) -> str: ...

    def store_exists(self) -> bool: ...

    def forget_new_store(self) -> None: ...

    def open_store(self, *, busy_seconds: float | None = None, holder: str | None = None) -> Store: ...

    def sources(self) -> list[Source]: ...

    def transport(self) -> Transport: ...

    def receipt_folders(self) -> dict[str, Transport]: ...

    def watcher(self, sources: list[Source], wake: threading.Event) -> Watcher: ...

    def alarm_channels(self) -> list[AlarmChannel]: ...


class LoopWatch(Protocol):
    """Who watches the main loop (gateway.monitoring's Monitor: health checks, metrics, systemd).

    Called from the main thread only: ``open`` once the daemon holds its data folder, ``beat``
    every turn and before each file (``allowance``: the step ahead has a time limit of its own),
    ``ready`` once after the first turn, ``status`` with a one-line summary each turn,
    ``receipt_published`` with the file's last write, ``stopping`` on SIGTERM, ``close`` at the
    end. ``max_wait``: the loop turns at least this often (None: no need)."""

    def open(self) -> None: ...
    def beat(self, *, allowance: float | None = None) -> None: ...
    def max_wait(self) -> float | None: ...
    def ready(self, summary: str) -> None: ...
    def status(self, summary: str) -> None: ...
    def receipt_published(self, written_at: datetime) -> None: ...
    def stopping(self) -> None: ...
    def close(self) -> None: ...


class _Unwatched:
    """No monitor (`run --once`, tests): every call does nothing."""

    def open(self) -> None:
        pass

    def beat(self, *, allowance: float | None = None) -> None:
        pass

    def max_wait(self) -> float | None:
        return None

    def ready(self, summary: str) -> None:
        pass

    def status(self, summary: str) -> None:
        pass

    def receipt_published(self, written_at: datetime) -> None:
        pass

    def stopping(self) -> None:
        pass

    def close(self) -> None:
        pass


class StoreBehindError(ConfigError):
    """The store knows less than the data folder holds: refused at start (exit code 2)."""


class Daemon:
    def __init__(
        self,
        config: GatewayConfig,
        parts: Parts,
        *,
        once: bool = False,
        clock: Callable[[], datetime] = utc_now,
        watch: LoopWatch | None = None,
    ) -> None:
        self.config = config
        self._watch: LoopWatch = watch or _Unwatched()
        self._announced = False  # READY=1 sent
        self._taken_since_start = 0
        self._scanned_at: dict[str, str] = {}
        self._parts = parts
        self.once = once
        self._clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._seal_requested = threading.Event()
        self._report_requested = threading.Event()
        self._report_days: list[date] = []  # days owed after a stop; empty: yesterday
        self._zone = ZoneInfo(config.timezone)
        self.folders = parts.folders
        self.pauses = Pauses(clock=clock)
        self._store: Store | None = None
        self._intake: Intake | None = None
        self._journals: JournalService | None = None
        self._returns: ReceiptReturns | None = None
        self._sources: list[Source] = []
        self._started_up = False
        self._behind_checked = False
        self._next_vanished_check = 0.0
        self._store_failing = False
        self._started_at = clock()
        self._scheduler: BackgroundScheduler | None = None
        self._state: RunState | None = None
        # Who this run is among the nodes on the store, and its heartbeat.
        self.node = config.node
        self.holder = node_holder(config.node)
        self._heartbeat: NodeHeartbeat | None = None
        self._last_turn = time.monotonic()
        self._seal_slot_left: str | None = None
        # Alarms: evaluated from the loop, told from a thread of their own (or at the end of --once).
        self._alarms = AlarmWatch(config, node=self.node, clock=clock)
        self._alarm_sender: AlarmSender | None = None
        self._next_alarm_check = 0.0

    # -- signals only set flags --------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info(
            "received %s: finishing the file in hand, then stopping",
            signal.Signals(signum).name,
            extra={"event": "daemon-stopping"},
        )
        self._watch.stopping()
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
        """Run until SIGTERM (or, with ``once``, until what is there is done). Never ends on a
        file or on its environment: what fails is paused and tried again."""
        previous_umask = os.umask(0o077)  # receipts, journals and the store hold personal data
        previous_handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
        lock: TextIO | None = None
        watcher: Watcher | None = None
        try:
            self.folders.ensure(sources=self.config.sources)
            own = self.node if self.config.several_nodes else None
            lock = _single_instance(lock_path(self.folders.var, own))
            self._state = RunState(state_path(self.folders.var, own))
            self._sources = self._parts.sources()
            self._refuse_a_store_behind_the_files()
            for signum in previous_handlers:
                signal.signal(signum, self._on_signal)
            log.info(
                "inkasso-gateway %s started: node %s, %d source(s), store %s, delivery %s, schedule %r in %s",
                __version__,
                self.node,
                len(self._sources),
                self._parts.store_location(),
                self.config.delivery.type,
                self.config.delivery.schedule,
                self.config.timezone,
                extra={"event": "daemon-started"},
            )
            self._watch.open()
            self._alarm_sender = AlarmSender(
                lambda: self._parts.open_store(busy_seconds=DAEMON_BUSY_SECONDS, holder=self.holder),
                self._parts.alarm_channels(),
                clock=self._clock,
            )
            if not self.once:
                watcher = self._parts.watcher(self._sources, self._wake)
                watcher.start()
                self._scheduler = self._start_scheduler()
                self._alarm_sender.start()
            exit_code = self._loop()
            if self.once:
                self._alarm_sender.send_due()
            return exit_code
        finally:
            if self._alarm_sender is not None:
                self._alarm_sender.stop()
            self._watch.close()
            if self._scheduler is not None:
                self._scheduler.shutdown(wait=False)
            self._leave()
            if watcher is not None:
                # Stopping the observer mid-read makes watchdog log a harmless error; keep the log clean.
                logging.getLogger("watchdog.observers.inotify").setLevel(logging.CRITICAL)
                watcher.stop()
            if self._state is not None:
                self._state.close({**self._facts(), "stopped_at": self._clock().isoformat()})
            if self._store is not None:
                self._store.close()
            if lock is not None:
                lock.close()
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
            os.umask(previous_umask)
            log.info("inkasso-gateway stopped", extra={"event": "daemon-stopped"})

    def _refuse_a_store_behind_the_files(self) -> None:
        """Exit 2 (StoreBehindError) when the store knows less than the folders hold."""
        existed = self._parts.store_exists()
        try:
            store = self._parts.open_store()
        except StoreUnavailableError as error:
            log.warning("the store cannot be opened yet (%s): it is checked once it can", error)
            return
        try:
            self._check_store_not_behind(store)
        except StoreBehindError:
            if not existed:
                self._parts.forget_new_store()
            raise
        finally:
            store.close()

    def _check_store_not_behind(self, store: LedgerReader) -> None:
        ahead = files_ahead_of_store(store, self.folders, self._zone)
        self._behind_checked = True
        if ahead:
            raise StoreBehindError(describe_refusal(ahead, self._parts.store_location()))

    def _start_scheduler(self) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(timezone=self._zone)
        scheduler.add_job(
            self.request_seal,
            CronTrigger.from_crontab(self.config.delivery.schedule, timezone=self._zone),
            id="seal",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
        )
        if self.config.reports.schedule:
            scheduler.add_job(
                self.request_report,
                CronTrigger.from_crontab(self.config.reports.schedule, timezone=self._zone),
                id="report",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=MISFIRE_GRACE_SECONDS,
            )
        scheduler.start()
        return scheduler

    def _loop(self) -> int:
        deadline = (
            time.monotonic() + 30 + 10 * max((s.stable_seconds for s in self.config.sources), default=0)
        )
        while not self._stop.is_set():
            try:
                self._one_iteration()
                self.pauses.succeeded("daemon")
            except StoreBehindError:
                raise  # found once the store could be opened: the start is refused after all
            except Exception as error:
                # The daemon never dies: an error nobody foresaw is told once, then retried slower.
                if self.pauses.paused("daemon") is None:
                    log.exception("unexpected error in the daemon's loop (tried again)")
                self.pauses.failed(
                    "daemon", f"{type(error).__name__}: {error}", waits_for="the error to go away"
                )
            self._write_state()
            self._tell_the_watch()
            waiting = [w for w in (s.next_stable_in() for s in self._sources) if w is not None]
            if (
                self.once
                and (not waiting or time.monotonic() > deadline)
                and (not self.pauses.all() or time.monotonic() > deadline)
            ):
                break
            timeout = min([self.config.scan_seconds, *(w + 0.05 for w in waiting)])
            watched = self._watch.max_wait()
            if watched is not None:
                timeout = min(timeout, watched)
            next_try = self.pauses.next_try_in()
            if next_try is not None:
                timeout = min(timeout, next_try + 0.05)
            if any(source.being_written for source in self._sources):
                # inotify reports a rename within the folder only after pairing its two halves
                # (half a second in watchdog): look again soon instead of waiting for the event.
                timeout = min(timeout, RENAME_POLL_SECONDS)
            self._wake.wait(max(timeout, MIN_WAIT_SECONDS))
            self._wake.clear()
        return 1 if self.once and self.pauses.all() else 0

    def _one_iteration(self) -> None:
        self._store_failing = False
        self._last_turn = time.monotonic()
        store = self._ready_store()
        if store is None:
            return
        assert self._intake is not None and self._journals is not None
        if self._heartbeat is not None and self._heartbeat.lost:
            # Taken for dead (no heartbeat for a lease): others may have taken over what it held.
            # It joins again and recovers like a start; what it was doing is fenced in the store.
            log.warning("node %s lost its registration on the store: joining again", self.node)
            self._heartbeat.stop()
            self._heartbeat = None
            self._started_up = False
        if not self._started_up and not self._start_up(store):
            return
        self._take_files(self._intake)
        if self._stop.is_set():
            return
        self._seal_and_deliver(self._journals, store)
        self._return_receipts()
        if self._report_requested.is_set() and not self.pauses.blocked("reports"):
            self._write_daily_report(store)
        self._evaluate_alarms(store)
        # The store's pause ends only after a round of real work went through: a probe alone
        # can succeed where the work fails (a damaged index), and must not make the pause flap.
        if not self._store_failing:
            self.pauses.succeeded("store")

    def _evaluate_alarms(self, store: Store) -> None:
        """Every few seconds: which alarms hold, reconciled in the store (each change once, whichever
        node sees it first), and the sender woken for what changed."""
        if time.monotonic() < self._next_alarm_check:
            return
        self._next_alarm_check = time.monotonic() + min(self.config.scan_seconds, EVALUATE_SECONDS)
        try:
            changed = self._alarms.evaluate(store, self.pauses.all())
        except StoreUnavailableError as error:
            self._store_failed(error)
            return
        if changed and self._alarm_sender is not None:
            self._alarm_sender.wake()

    def _ready_store(self) -> Store | None:
        """The store, opened (again) once it can be; None while it is paused."""
        if self.pauses.blocked("store"):
            return None
        try:
            if self._store is None:
                self._store = self._parts.open_store(busy_seconds=DAEMON_BUSY_SECONDS, holder=self.holder)
                self._intake = Intake(
                    self.config,
                    self._store,
                    self.folders,
                    clock=self._clock,
                    sources={source.name: source for source in self._sources},
                    lease_seconds=NODE_LEASE_SECONDS,
                )
                self._journals = JournalService(
                    self.config,
                    self._store,
                    self.folders,
                    self._parts.transport(),
                    clock=self._clock,
                )
                self._returns = ReceiptReturns(
                    self._store,
                    self.folders,
                    self._parts.receipt_folders(),
                    clock=self._clock,
                    lease_seconds=NODE_LEASE_SECONDS,
                )
            elif self.pauses.paused("store") is not None:
                self._store.probe(now=self._clock())
        except StoreUnavailableError as error:
            self._store_failed(error)
            return None
        return self._store

    def _store_failed(self, error: StoreUnavailableError) -> None:
        self._store_failing = True
        self.pauses.failed("store", str(error), waits_for=_store_waits_for(str(error)))

    def _start_up(self, store: Store) -> bool:
        """What a start does once the store can be used: finish interrupted files, run missed jobs."""
        assert self._intake is not None
        try:
            if not self._behind_checked:  # the store could not be opened when the daemon started
                self._check_store_not_behind(store)
            self._join(store)
            self._keep_configuration()
            recovered = self._intake.recover()
            if recovered:
                log.info("finished %d file(s) that a previous run had committed", recovered)
            if self._returns is not None and self._returns.retry_refused():
                log.info("receipts refused by their senders' receipt folders are tried again")
            if self._missed(store, LAST_SCHEDULED_SEAL, self.config.delivery.schedule):
                log.info("a scheduled seal was missed while the gateway was stopped: sealing now")
                self._seal_requested.set()
            self._plan_missed_reports(store)
        except StoreUnavailableError as error:
            self._store_failed(error)
            return False
        except OutputError as error:
            self.pauses.failed("intake", str(error), waits_for=error.waits_for)
            return False
        self._started_up = True
        return True

    def _join(self, store: Store) -> None:
        """Register as this node (its lock on the data folder is held) and start the heartbeat."""
        previous = store.register_node(
            self.node, version=__version__, now=self._clock(), lease_seconds=NODE_LEASE_SECONDS
        )
        if previous is not None:
            log.info("node %s: taken over from %s, which stopped without signing off", self.node, previous)
        if self._heartbeat is None:
            self._heartbeat = NodeHeartbeat(
                lambda: self._parts.open_store(busy_seconds=DAEMON_BUSY_SECONDS, holder=self.holder),
                self.node,
                clock=self._clock,
                loop_alive=self._loop_alive,
            )
            self._heartbeat.start()

    def _loop_alive(self) -> bool:
        """The main loop came round lately: a file in hand may take its time limit, no longer."""
        limit = DEFAULT_FILE_TIMEOUT_SECONDS + 3 * self.config.scan_seconds + NODE_LEASE_SECONDS
        return time.monotonic() - self._last_turn < limit

    def _leave(self) -> None:
        """A clean stop: the heartbeat ends and the node's leases go at once."""
        if self._heartbeat is None:
            return
        self._heartbeat.stop()
        self._heartbeat = None
        if self._store is not None:
            try:
                self._store.leave_node(self.node, now=self._clock())
            except StoreError as error:
                log.warning(
                    "node %s could not sign off (its leases lapse on their own): %s", self.node, error
                )

    def _keep_configuration(self) -> None:
        """Keep the configuration in force as var/config/<sha256>.toml: what every receipt's
        KonfigSha256 stands for, readable by an auditor years later."""
        kept = self.folders.configs / f"{self.config.sha256}.toml"
        if kept.exists():
            return
        try:
            content = self.config.path.read_bytes()
        except OSError as error:
            log.warning("cannot read %s again to keep it: %s", self.config.path, error.strerror or error)
            return
        if hashlib.sha256(content).hexdigest() != self.config.sha256:
            log.warning(
                "%s changed since the gateway started: restart it to use the new one", self.config.path
            )
            return
        try:
            self.folders.configs.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_new(kept, content)
        except FileExistsError:
            pass
        except OSError as error:
            raise output_error(self.folders.configs, error) from error

    def _plan_missed_reports(self, store: Bookkeeping) -> None:
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

    def _take_files(self, intake: Intake) -> None:
        """Publish what was committed but not published, then take new files from each source."""
        if self.pauses.blocked("intake"):
            return
        try:
            paused = self.pauses.paused("intake")
            if paused is not None and paused.folder:
                probe_writable(Path(paused.folder))
            intake.publish_pending()
            if time.monotonic() >= self._next_vanished_check:
                self._next_vanished_check = time.monotonic() + VANISHED_CHECK_SECONDS
                intake.abandon_vanished()
            for source in self._sources:
                if self._stop.is_set():
                    return
                self._take_from(source, intake)
        except OutputError as error:
            self.pauses.failed("intake", str(error), waits_for=error.waits_for, folder=error.folder)
            return
        except StoreUnavailableError as error:
            self._store_failed(error)
            return
        self.pauses.succeeded("intake")

    def _take_from(self, source: Source, intake: Intake) -> None:
        scope = f"source:{source.name}"
        if self.pauses.blocked(scope):
            return
        try:
            candidates = source.scan()
            self._scanned_at[source.name] = self._clock().isoformat()
            for candidate in candidates:
                if self._stop.is_set():
                    return
                self._beat_before_a_file()
                if intake.process(candidate, source) is not None:
                    self._taken_since_start += 1
                    self._watch.receipt_published(datetime.fromtimestamp(candidate.mtime_ns / 1e9, tz=UTC))
        except SourceError as error:
            self.pauses.failed(scope, str(error), waits_for="the source to answer again")
            return
        finally:
            source.end_batch()
        self.pauses.succeeded(scope)

    def _seal_and_deliver(self, journals: JournalService, store: Store) -> None:
        if self.pauses.blocked("delivery"):
            return
        try:
            if self._seal_requested.is_set():
                # Once per schedule slot, whichever nodes run: the first to take the duty seals.
                slot = self._slot(self.config.delivery.schedule)
                if store.take_duty("seal", slot, now=self._clock()):
                    journals.seal()
                    store.finish_duty("seal", slot, now=self._clock())
                    self._seal_requested.clear()
                    store.set_meta(LAST_SCHEDULED_SEAL, self._clock().isoformat())
                elif self._seal_slot_left != slot:
                    # Another node seals this slot. The request stays: should that node die
                    # before it finished, the duty is taken over on a later turn (once it is
                    # done, asking again is one small write per turn until the next slot).
                    log.info("the seal of %s is another node's", slot)
                    self._seal_slot_left = slot
            self._last_turn = time.monotonic()  # a slow delivery is work, not a hung loop
            results = journals.deliver_approved()
        except StoreUnavailableError as error:
            self._store_failed(error)
            return
        except OSError as error:
            self.pauses.failed("delivery", f"{error.strerror or error}", waits_for="the folder to work again")
            return
        failed = [r for r in results if not r.delivered and not r.skipped]
        if failed and not any(r.delivered for r in results):
            self.pauses.failed(
                "delivery",
                f"{failed[0].journal_id}: {failed[0].error}",
                waits_for="the destination to accept the journal",
            )
        elif not failed:
            self.pauses.succeeded("delivery")
        self._record_endpoint(store, journals.transport)

    def _return_receipts(self) -> None:
        """Send the copies of receipts that are due to their senders' receipt folders. An SFTP
        source's server is one endpoint: while the source is paused (its server does not answer)
        its copies wait, and a copy that finds the server gone pauses the source."""
        if self._returns is None or not self._returns.destinations:
            return
        sftp = {source.name for source in self.config.sources if source.type == "sftp"}
        waiting = {name for name in sftp if self.pauses.paused(f"source:{name}") is not None}
        try:
            result = self._returns.send_due(unreachable=waiting)
        except StoreUnavailableError as error:
            self._store_failed(error)
            return
        for name, cause in result.unreachable.items():
            if name in sftp:
                self.pauses.failed(f"source:{name}", cause, waits_for="the source to answer again")

    def _write_daily_report(self, store: Store) -> None:
        """The scheduled report: the whole of the previous day in the gateway's zone (and the days
        a stop made it miss)."""
        now = self._clock()
        days = self._report_days or [now.astimezone(self._zone).date() - timedelta(days=1)]
        for day in list(days):
            try:
                if not store.take_duty("report", day.isoformat(), now=now):
                    self._report_days = [d for d in days if d > day]
                    continue  # written by another node
                report = build_report(
                    store, self.config, period_from=day, period_to=day, client=None, now=now
                )
                written = write_report(report, self.folders.reports)
                store.finish_duty("report", day.isoformat(), now=self._clock())
            except StoreUnavailableError as error:
                self._store_failed(error)
                return
            except OSError as error:
                self.pauses.failed(
                    "reports",
                    f"{self.folders.reports}: {error.strerror or error}",
                    waits_for="the folder to work again",
                )
                return
            self._report_days = [d for d in days if d > day]
            if report.balanced:
                log.info("report of %s written: %s; everything accounted for", day, written[0])
            else:
                log.warning(
                    "report of %s written: %s; NOT accounted for: %d item(s)",
                    day,
                    written[0],
                    len(report.discrepancies) + len(report.gaps),
                )
        self._report_days = []
        self._report_requested.clear()
        self.pauses.succeeded("reports")
        store.set_meta(LAST_SCHEDULED_REPORT, now.isoformat())

    # -- what the monitor is told ---------------------------------------------------------------

    def _beat_before_a_file(self) -> None:
        """A file may take up to the intake's own time limit; the loop counts as alive that long.
        Once started up, a file in hand means the sources were looked at: ready."""
        self._watch.beat(allowance=DEFAULT_FILE_TIMEOUT_SECONDS + self.config.scan_seconds)
        # The node's heartbeat lives as long as the loop comes round; a turn of many files is
        # work, not a hang: each file gives it its time limit afresh.
        self._last_turn = time.monotonic()
        if self._started_up and not self._announced:
            self._announced = True
            self._watch.ready(self._summary())

    def _tell_the_watch(self) -> None:
        """After each turn: a beat, READY=1 after the first turn (whatever it met: a start that
        finds its store paused is still a start), and what the daemon is doing."""
        self._watch.beat()
        if not self._announced:
            self._announced = True
            self._watch.ready(self._summary())
        else:
            self._watch.status(self._summary())

    def _summary(self) -> str:
        paused = ", ".join(pause.scope for pause in self.pauses.all())
        return f"{len(self._sources)} source(s); {self._taken_since_start} file(s) taken since start; " + (
            f"paused: {paused}" if paused else "nothing paused"
        )

    # -- what `status` reads ---------------------------------------------------------------------

    def _facts(self) -> dict[str, Any]:
        now = self._clock()
        facts: dict[str, Any] = {
            "pid": os.getpid(),
            "version": __version__,
            "config_sha256": self.config.sha256,
            "started_at": self._started_at.isoformat(),
            "heartbeat_at": now.isoformat(),
            "pauses": self.pauses.as_json(),
            "sources_scanned_at": dict(self._scanned_at),
            "waiting_files": [
                {
                    "source": wait.source,
                    "name": wait.name,
                    "cause": wait.cause,
                    "message": wait.message,
                    "since": wait.since.isoformat(),
                }
                for wait in (self._intake.waiting_files() if self._intake is not None else [])
            ],
        }
        if self._scheduler is not None:
            for job in self._scheduler.get_jobs():
                facts[f"next_{job.id}_at"] = job.next_run_time.isoformat() if job.next_run_time else None
        return facts

    def _write_state(self) -> None:
        if self._state is not None:
            self._state.write(self._facts())

    @staticmethod
    def _record_endpoint(store: Bookkeeping, endpoint: object) -> None:
        """For `status`: an SFTP endpoint's last success and last error (never a secret)."""
        name = getattr(endpoint, "name", "delivery")
        if hasattr(endpoint, "last_success"):
            state = {
                "last_success": endpoint.last_success,
                "last_error": getattr(endpoint, "last_error", None),
            }
            store.set_meta(f"endpoint:{name}", json.dumps(state))

    def _slot(self, schedule: str) -> str:
        """The schedule's latest time that has come (in UTC, to the minute): what a duty is done
        once for, whichever node's scheduler fired and however late."""
        now = self._clock()
        trigger = CronTrigger.from_crontab(schedule, timezone=self._zone)
        moment = trigger.get_next_fire_time(
            None, (now - timedelta(seconds=MISFIRE_GRACE_SECONDS)).astimezone(self._zone)
        )
        latest: datetime | None = None
        while moment is not None and moment <= now:
            latest = moment
            moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
        if latest is None:
            latest = now.replace(second=0, microsecond=0)  # asked for outside the schedule
        return latest.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")

    def _missed(self, store: Bookkeeping, key: str, schedule: str) -> bool:
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


class NodeHeartbeat:
    """Keeps this node's lease, and every lease it holds, alive from a thread of its own (a file
    in hand can take minutes), over a store connection of its own, for as long as the main loop
    comes round; a hung loop stops it, and other nodes take over. ``lost`` once the registration
    is no longer this process's (it was taken for dead)."""

    def __init__(
        self,
        open_store: Callable[[], Nodes],
        node: str,
        *,
        clock: Callable[[], datetime],
        loop_alive: Callable[[], bool],
        lease_seconds: float = NODE_LEASE_SECONDS,
    ) -> None:
        self._open_store = open_store
        self._node = node
        self._clock = clock
        self._loop_alive = loop_alive
        self._lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{node}", daemon=True)
        self.lost = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=self._lease_seconds)

    def _run(self) -> None:
        store: Nodes | None = None
        failing = False
        while not self._stop.wait(self._lease_seconds / 3):
            if not self._loop_alive():
                continue  # a hung loop must not keep its files: let the lease run out
            try:
                if store is None:
                    store = self._open_store()
                if not store.renew_node(self._node, now=self._clock(), lease_seconds=self._lease_seconds):
                    self.lost = True
                if failing:
                    log.info("node %s: heartbeat written again", self._node)
                failing = False
            except StoreError as error:
                if not failing:
                    log.warning("node %s: heartbeat not written (%s); tried again", self._node, error)
                failing = True
                if store is not None:
                    with contextlib.suppress(StoreError):
                        store.close()
                    store = None
        if store is not None:
            with contextlib.suppress(StoreError):
                store.close()


def _store_waits_for(message: str) -> str:
    lowered = message.lower()
    if "write lock" in lowered:
        return "the other process to release the store's lock"
    if "disk is full" in lowered:
        return "free space for the store"
    if "damaged" in lowered:
        return "a person to restore the store from a backup"
    return "the store to work again"


def probe_writable(folder: Path) -> None:
    """OutputError unless a file can be written (and removed) in ``folder`` now."""
    probe = folder / f".probe-{os.getpid()}.tmp"
    try:
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(descriptor, b"probe\n")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        probe.unlink()
    except OSError as error:
        probe.unlink(missing_ok=True)
        raise output_error(folder, error) from error
