"""``/metrics``: the gateway's figures in Prometheus's text format.

The names and labels are a contract (README, "Monitoring"). What must survive a restart (files,
cases, capital, journals, deliveries) is read from the store at every scrape, by
:class:`LedgerCollector` through the read side (:meth:`LedgerReader.running_totals`), so a
restart never resets a counter and every configured source and client has its series from the
first scrape, at zero. Only what one process measures is kept in it: the intake latency
histogram (counted since the daemon started; Prometheus's ``rate`` takes the reset in its
stride). Labels carry ids (source names, client ids, states), never a person's identity.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from gateway import __version__
from gateway.config import GatewayConfig
from gateway.domain.rules import RULESET_VERSION
from gateway.errors import StoreError
from gateway.monitoring.alarms import read_alarms
from gateway.monitoring.facts import free_bytes, source_facts
from gateway.store import RunningTotals
from gateway.store.roles import LedgerReader

log = logging.getLogger("gateway.monitoring")

PREFIX = "inkasso_gateway_"
#: A file's status in the store, and its label (a label value reads better without a dash).
FILE_STATUSES = {
    "accepted": "accepted",
    "partially-accepted": "partially_accepted",
    "rejected": "rejected",
    "duplicate": "duplicate",
    "quarantined": "quarantined",
}
CASE_OUTCOMES = ("accepted", "rejected", "duplicate")
JOURNAL_STATES = ("open", "sealed", "approved", "delivered", "failed")
DELIVERY_FAILURE_KINDS = ("temporary", "permanent")
#: From the producer's last write to the published receipt: a file waits ``stable_seconds``
#: (2 s by default) and a scan (10 s) before it is taken; a big file takes minutes.
INTAKE_BUCKETS = (1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)


def _seconds(moment: datetime | None) -> float:
    return 0.0 if moment is None else moment.timestamp()


class LedgerCollector(Collector):
    """The store's totals and the sources' state, read at each scrape."""

    def __init__(self, config: GatewayConfig, open_reader: Callable[[], LedgerReader]) -> None:
        self._config = config
        self._open_reader = open_reader
        self._warned = False

    def collect(self) -> Iterable[Metric]:
        yield from self._looked_at()
        store = GaugeMetricFamily(
            PREFIX + "store_up",
            "1 when the store could be read at this scrape (else the store's series are left out)",
        )
        try:
            reader = self._open_reader()
            try:
                totals = reader.running_totals()
                last_files = reader.last_received()
                alarms = read_alarms(reader, now=datetime.now(UTC))
                backlog = reader.receipt_upload_backlog(limit=10_000)
            finally:
                reader.close()
        except StoreError as error:
            # A scrape must not fail because of the store: the process is up and says so; the
            # store's series are missing for this scrape and /readyz tells why.
            if not self._warned:
                log.warning("metrics: the store cannot be read: %s", error)
                self._warned = True
            store.add_metric([], 0)
            yield store
            return
        self._warned = False
        store.add_metric([], 1)
        yield store
        yield from self._from_store(totals, last_files)
        alarm = GaugeMetricFamily(
            PREFIX + "alarm", "1 while an alarm fires, 0 once resolved", labels=["alarm", "subject"]
        )
        for state in alarms:
            alarm.add_metric([state.alarm, state.subject], 1 if state.firing else 0)
        yield alarm
        uploads = GaugeMetricFamily(
            PREFIX + "receipt_uploads",
            "Copies of receipts not yet in their senders' receipt folders (receipt_dir), by state",
            labels=["state"],
        )
        uploads.add_metric(["pending"], backlog.pending)
        uploads.add_metric(["failing"], backlog.failing)
        uploads.add_metric(["refused"], len(backlog.refused))
        yield uploads

    def _looked_at(self) -> Iterator[Metric]:
        """What is read from the machine, not the store: the build, free space, the inboxes."""
        build = GaugeMetricFamily(
            PREFIX + "build_info", "The gateway's version and rule set", labels=["version", "rules"]
        )
        build.add_metric([__version__, str(RULESET_VERSION)], 1)
        yield build
        free = free_bytes(self._config.data_dir)
        if free is not None:
            yield GaugeMetricFamily(
                PREFIX + "data_free_bytes", "Free bytes on the data folder's file system", value=free
            )
        oldest = GaugeMetricFamily(
            PREFIX + "inbox_oldest_file_timestamp_seconds",
            "Modification time of the oldest file waiting in a folder source (0: none waits)",
            labels=["source"],
        )
        for source in source_facts(self._config):
            waiting = source["oldest_waiting_at"]
            oldest.add_metric(
                [source["name"]], _seconds(datetime.fromisoformat(waiting) if waiting else None)
            )
        yield oldest

    def _from_store(self, totals: RunningTotals, last_files: dict[str, datetime]) -> Iterator[Metric]:
        sources = sorted({s.name for s in self._config.sources} | {source for source, _ in totals.files})
        clients = sorted({c.id for c in self._config.clients} | set(totals.accepted_capital_ore))
        files = CounterMetricFamily(
            PREFIX + "files",
            "Files received, by source and status (from receipts)",
            labels=["source", "status"],
        )
        last = GaugeMetricFamily(
            PREFIX + "last_file_timestamp_seconds",
            "When the source's last file was received (0: never)",
            labels=["source"],
        )
        for source in sources:
            for status, label in FILE_STATUSES.items():
                files.add_metric([source, label], totals.files.get((source, status), 0))
            last.add_metric([source], _seconds(last_files.get(source)))
        yield files
        yield last
        cases = CounterMetricFamily(
            PREFIX + "cases",
            'Cases received, by client and outcome (client "": not configured)',
            labels=["client", "outcome"],
        )
        capital = CounterMetricFamily(
            PREFIX + "accepted_capital_kronor", "Capital of accepted cases, in kronor", labels=["client"]
        )
        for client in clients:
            for outcome in CASE_OUTCOMES:
                cases.add_metric([client, outcome], totals.cases.get((client, outcome), 0))
            capital.add_metric([client], totals.accepted_capital_ore.get(client, 0) / 100)
        yield cases
        yield capital
        journal_clients = sorted(set(clients) - {""} | {client for client, _ in totals.journals})
        journals = GaugeMetricFamily(
            PREFIX + "journals",
            "Journals by client and state (failed: approved, last delivery attempt failed)",
            labels=["client", "state"],
        )
        delivered = GaugeMetricFamily(
            PREFIX + "last_delivery_timestamp_seconds",
            "When the client's last journal was delivered (0: never)",
            labels=["client"],
        )
        failures = CounterMetricFamily(
            PREFIX + "delivery_failures",
            "Failed delivery attempts, by client and kind",
            labels=["client", "kind"],
        )
        for client in journal_clients:
            for state in JOURNAL_STATES:
                journals.add_metric([client, state], totals.journals.get((client, state), 0))
            delivered.add_metric([client], _seconds(totals.last_delivered.get(client)))
            for kind in DELIVERY_FAILURE_KINDS:
                failures.add_metric([client, kind], totals.delivery_failures.get((client, kind), 0))
        yield journals
        yield delivered
        yield failures
        yield GaugeMetricFamily(
            PREFIX + "files_in_progress", "Files taken in hand and not yet judged", value=totals.in_progress
        )


class GatewayMetrics:
    """The registry ``/metrics`` serves (its own, never the client library's global one)."""

    def __init__(self, config: GatewayConfig, open_reader: Callable[[], LedgerReader]) -> None:
        self.registry = CollectorRegistry()
        self.intake_seconds = Histogram(
            PREFIX + "intake_seconds",
            "From the producer's last write to the file (its mtime) to its published receipt",
            buckets=INTAKE_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(LedgerCollector(config, open_reader))

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The body and content type for a scrape (OpenMetrics when the scraper asks for it)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
