"""Monitoring as an operator's tools meet it: /metrics scraped while files arrive and across a
restart, /livez when the main loop hangs, /readyz when the store cannot be read, systemd's notify
socket, and the JSON log lines read by a log shipper.

The process tests run the real daemon (tests/daemon_harness.py) and read only what it serves,
writes and answers; the loop is made to hang through tests/faulty_gateway.py, never a hook in
gateway/. The fast tests below them check the parts alone.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.errors import ConfigError
from gateway.logs import JsonFormatter, MaskIdentities
from gateway.monitoring.health import readiness
from gateway.monitoring.heartbeat import Heartbeat
from gateway.monitoring.notify import Notifier
from tests.daemon_harness import (
    EXAMPLE_PERSONNUMMER,
    MAIN_CLIENT,
    case_file,
    cases,
    drop,
    full_identities_in,
    wait_for,
)
from tests.faults import FAULT_ENV
from tests.monitoring_harness import (
    OTHER_CLIENT,
    OTHER_SOURCE,
    get,
    labels,
    monitored_gateway,
    receipt_figures,
    samples,
    series,
)

CLIENTS = {MAIN_CLIENT[1].replace("-", ""): MAIN_CLIENT[0], OTHER_CLIENT[1].replace("-", ""): OTHER_CLIENT[0]}
SOURCES = ("erp", OTHER_SOURCE)


def _scrape(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = get(base + "/metrics")
    assert answer is not None and answer.status == 200, answer
    assert answer.content_type.startswith("text/plain")
    return samples(answer.body)


def _store_series(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[object, float]:
    """The series read from the store (what must survive a restart)."""
    kept = (
        "inkasso_gateway_files_total",
        "inkasso_gateway_cases_total",
        "inkasso_gateway_accepted_capital_kronor_total",
        "inkasso_gateway_journals",
        "inkasso_gateway_last_file_timestamp_seconds",
        "inkasso_gateway_last_delivery_timestamp_seconds",
        "inkasso_gateway_delivery_failures_total",
    )
    return {key: value for key, value in scraped.items() if key[0] in kept}


# -- /metrics ------------------------------------------------------------------------------------


@pytest.mark.process
def test_metrics_start_at_zero_match_the_receipts_and_survive_a_restart(tmp_path: Path) -> None:
    gateway, base = monitored_gateway(tmp_path)
    daemon = gateway.start()
    try:
        first = wait_for(lambda: get(base + "/metrics"), timeout=30, what="/metrics", daemon=daemon)
        scraped = samples(first.body)
        # Before any file: every configured source and client has its series, at zero.
        for source in SOURCES:
            for status in ("accepted", "partially_accepted", "rejected", "duplicate", "quarantined"):
                assert scraped[("inkasso_gateway_files_total", labels(source=source, status=status))] == 0
            assert scraped[("inkasso_gateway_last_file_timestamp_seconds", labels(source=source))] == 0
            assert ("inkasso_gateway_inbox_oldest_file_timestamp_seconds", labels(source=source)) in scraped
        for client in (MAIN_CLIENT[0], OTHER_CLIENT[0]):
            for outcome in ("accepted", "rejected", "duplicate"):
                assert scraped[("inkasso_gateway_cases_total", labels(client=client, outcome=outcome))] == 0
            assert scraped[("inkasso_gateway_accepted_capital_kronor_total", labels(client=client))] == 0
            for state in ("open", "sealed", "approved", "delivered", "failed"):
                assert scraped[("inkasso_gateway_journals", labels(client=client, state=state))] == 0
            for kind in ("temporary", "permanent"):
                assert (
                    scraped[("inkasso_gateway_delivery_failures_total", labels(client=client, kind=kind))]
                    == 0
                )
            assert scraped[("inkasso_gateway_last_delivery_timestamp_seconds", labels(client=client))] == 0
        assert scraped[("inkasso_gateway_files_in_progress", labels())] == 0
        assert scraped[("inkasso_gateway_data_free_bytes", labels())] > 0
        assert series(scraped, "inkasso_gateway_alarm") == {}
        for state in ("pending", "failing", "refused"):
            assert scraped[("inkasso_gateway_receipt_uploads", labels(state=state))] == 0
        (build,) = series(scraped, "inkasso_gateway_build_info")
        assert dict(build).keys() == {"version", "rules"}

        accepted = case_file("MON-1", cases("MONA", 3))
        drop(gateway.inbox, "accepted.xml", accepted)
        drop(gateway.inbox, "partly.xml", case_file("MON-2", cases("MONB", 3, bad_identity=[1])))
        drop(gateway.inbox, "totals.xml", case_file("MON-3", cases("MONC", 2), wrong_totals=True))
        drop(gateway.root / "inbox2", "again.xml", accepted)
        drop(
            gateway.root / "inbox2", "other.xml", case_file("MON-5", cases("MOND", 2), orgnr=OTHER_CLIENT[1])
        )
        wait_for(lambda: len(gateway.receipt_paths()) == 5, timeout=60, what="five receipts", daemon=daemon)
        expected = receipt_figures(gateway, CLIENTS)
        # Which of the two copies is the duplicate depends on which source is looked at first.
        assert {status for _, status in expected.files} == {
            "accepted",
            "partially_accepted",
            "rejected",
            "duplicate",
        }

        def matches() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            scraped = _scrape(base)
            files = {
                (dict(key)["source"], dict(key)["status"]): value
                for key, value in series(scraped, "inkasso_gateway_files_total").items()
                if value
            }
            return scraped if files == dict(expected.files) else None

        scraped = wait_for(matches, timeout=30, what="the files counted as the receipts say", daemon=daemon)
        cases_counted = {
            (dict(key)["client"], dict(key)["outcome"]): value
            for key, value in series(scraped, "inkasso_gateway_cases_total").items()
            if value
        }
        assert cases_counted == {key: value for key, value in expected.cases.items() if value}
        for client, kronor in expected.capital.items():
            assert scraped[("inkasso_gateway_accepted_capital_kronor_total", labels(client=client))] == float(
                kronor
            )
        assert scraped[("inkasso_gateway_journals", labels(client=MAIN_CLIENT[0], state="open"))] == 1
        assert scraped[("inkasso_gateway_last_file_timestamp_seconds", labels(source=OTHER_SOURCE))] > 0
        # Observed once the receipt is published, a moment after the verdict the store counts.
        wait_for(
            lambda: _scrape(base)[("inkasso_gateway_intake_seconds_count", labels())] == 5,
            timeout=30,
            what="five files in the intake histogram",
            daemon=daemon,
        )
        before = _store_series(scraped)
        assert gateway.status()["files"]  # `status` sees the same store
    finally:
        assert daemon.terminate() == 0

    again = gateway.start()
    try:
        after = wait_for(
            lambda: get(base + "/metrics"), timeout=30, what="/metrics after a restart", daemon=again
        )
        assert _store_series(samples(after.body)) == before
    finally:
        assert again.terminate() == 0


# -- /livez and /readyz ----------------------------------------------------------------------------


@pytest.mark.process
def test_livez_fails_while_the_main_loop_hangs_and_recovers_when_it_goes_on(tmp_path: Path) -> None:
    trigger = tmp_path / "hang-now"
    gateway, base = monitored_gateway(tmp_path / "gw")
    daemon = gateway.start(env={FAULT_ENV: f"hang-loop:{trigger}"})
    try:
        live = wait_for(lambda: get(base + "/livez"), timeout=30, what="/livez", daemon=daemon)
        assert live.status == 200
        trigger.touch()  # the loop's next heartbeat blocks
        wait_for(
            lambda: (answer := get(base + "/livez")) is not None and answer.status == 503,
            timeout=30,
            what="/livez to say the loop hangs",
            daemon=daemon,
        )
        assert daemon.alive()  # only the loop hangs: the process answers
        trigger.unlink()
        wait_for(
            lambda: (answer := get(base + "/livez")) is not None and answer.status == 200,
            timeout=30,
            what="/livez once the loop goes on",
            daemon=daemon,
        )
    finally:
        trigger.unlink(missing_ok=True)
        daemon.kill()


def _ready(base: str) -> tuple[int, dict[str, object]] | None:
    answer = get(base + "/readyz")
    if answer is None:
        return None
    assert answer.content_type == "application/health+json"
    document: dict[str, object] = json.loads(answer.body)
    return answer.status, document


@pytest.mark.process
def test_readyz_tells_what_status_tells_and_fails_when_the_store_cannot_be_read(tmp_path: Path) -> None:
    gateway, base = monitored_gateway(tmp_path)
    daemon = gateway.start()
    try:
        drop(gateway.inbox, "a.xml", case_file("MON-1", cases("MONA", 2)))
        wait_for(lambda: gateway.receipt_paths(), timeout=30, what="a receipt", daemon=daemon)
        _, document = wait_for(
            lambda: (ready := _ready(base)) is not None and ready[0] == 200 and ready,
            timeout=30,
            what="/readyz to pass",
            daemon=daemon,
        )
        checks = document["checks"]
        assert isinstance(checks, dict)
        assert {"store:responseTime", "source-erp:lastScan", f"source-{OTHER_SOURCE}:lastScan", "delivery:lastSuccess",
                "data:freeBytes", "alarms:firing"} <= set(checks)  # fmt: skip
        status = gateway.status()
        assert status["store_error"] is None and status["alarms"] == []
        assert checks["store:responseTime"][0]["status"] == "pass"
        assert checks["alarms:firing"][0]["observedValue"] == len(status["alarms"])

        # The store replaced by garbage in place: nothing can read it any more.
        gateway.db.write_bytes(b"this is no longer a database " * 512)
        _, document = wait_for(
            lambda: (ready := _ready(base)) is not None and ready[0] == 503 and ready,
            timeout=30,
            what="/readyz to fail",
            daemon=daemon,
        )
        assert document["status"] == "fail"
        checks = document["checks"]
        assert isinstance(checks, dict)
        assert checks["store:responseTime"][0]["status"] == "fail"
        status = gateway.status()  # the same facts: `status` says the store cannot be used
        assert status["store_error"] and any(
            item["kind"] == "store-unavailable" for item in status["attention"]
        )
        assert daemon.alive()
    finally:
        daemon.kill()


# -- systemd -----------------------------------------------------------------------------------------


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing in for systemd's notify socket."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30)
    yield sock, str(path)
    sock.close()


def _messages(sock: socket.socket, until: str) -> list[str]:
    """Every line received until one equals ``until`` (socket.timeout when it never comes)."""
    lines: list[str] = []
    while until not in lines:
        lines += sock.recv(4096).decode().splitlines()
    return lines


@pytest.mark.process
def test_the_daemon_tells_systemd_ready_status_watchdog_and_stopping(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    gateway, _ = monitored_gateway(tmp_path / "gw")
    # A watchdog of 2 s: the loop sends WATCHDOG=1 at least every second.
    daemon = gateway.start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    try:
        lines = _messages(sock, "READY=1")
        ready = lines.index("READY=1")
        assert any(line.startswith("STATUS=") for line in lines[ready:] + _messages(sock, "WATCHDOG=1"))
        _messages(sock, "WATCHDOG=1")  # and again: it keeps coming while the loop turns
        drop(gateway.inbox, "a.xml", case_file("MON-1", cases("MONA", 1)))
        status_lines = wait_for(
            lambda: [line for line in _messages(sock, "WATCHDOG=1") if "1 file(s) taken" in line],
            timeout=30,
            what="a STATUS naming the file taken",
            daemon=daemon,
        )
        assert status_lines[0].startswith("STATUS=")
        daemon.send_sigterm()
        assert "STOPPING=1" in _messages(sock, "STOPPING=1")
        assert daemon.wait() == 0
    finally:
        daemon.kill()


# -- logs for machines -----------------------------------------------------------------------------


@pytest.mark.process
def test_json_log_lines_carry_the_fields_and_no_identity_in_full(tmp_path: Path) -> None:
    gateway, _ = monitored_gateway(tmp_path, extra_config="")
    daemon = gateway.start(args=["--log-format", "json"])
    name = f"{EXAMPLE_PERSONNUMMER[0]}.xml"  # a producer that names files after a person
    try:
        drop(gateway.inbox, name, case_file("MON-1", cases("MONA", 2)))
        wait_for(lambda: gateway.receipt_paths(), timeout=30, what="a receipt", daemon=daemon)
        gateway.cli("journal", "seal")
        wait_for(lambda: gateway.journal_files(), timeout=30, what="a delivered journal", daemon=daemon)
        wait_for(
            lambda: "journal-delivered" in daemon.stderr(),
            timeout=30,
            what="the delivery's log line",
            daemon=daemon,
        )
    finally:
        assert daemon.terminate() == 0
    text = daemon.stderr()
    assert full_identities_in(text, EXAMPLE_PERSONNUMMER[:1]) == []
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    by_event: dict[str, list[dict[str, object]]] = {}
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys()
        if "event" in entry:
            by_event.setdefault(str(entry["event"]), []).append(entry)
    assert {"daemon-started", "file-claimed", "file-judged", "journal-delivered", "daemon-stopped"} <= set(
        by_event
    )
    (judged,) = by_event["file-judged"]
    receipt = gateway.receipts_by_name()
    (only,) = receipt.values()
    assert judged["source"] == "erp" and judged["client"] == MAIN_CLIENT[0]
    assert judged["sha256"] == only.file_sha256 and judged["status"] == "accepted"
    assert judged["journal"] == only.cases[0].journal_id
    assert judged["file"] != name and str(judged["file"]).endswith(".xml")  # masked, not dropped
    (claimed,) = by_event["file-claimed"]
    assert claimed["file"] == judged["file"] and claimed["sha256"] == judged["sha256"]
    (delivered,) = by_event["journal-delivered"]
    (journal,) = gateway.journals_listed()
    assert delivered["journal"] == journal["journal_id"] and delivered["client"] == MAIN_CLIENT[0]
    assert delivered["file"] == journal["file_name"] and delivered["sha256"] == journal["sha256"]


# -- the parts alone (fast) --------------------------------------------------------------------------


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_the_notifier_speaks_to_a_path_and_to_an_abstract_socket(tmp_path: Path, abstract: bool) -> None:
    name = f"inkasso-test-notify-{os.getpid()}"
    address, bind = (f"@{name}", f"\0{name}") if abstract else (str(tmp_path / "n.sock"),) * 2
    clock = [0.0]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(bind)
        sock.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"}, clock=lambda: clock[0])
        notifier.ready("starting\nup")
        assert sock.recv(4096) == b"READY=1\nSTATUS=starting up"
        notifier.status("starting up")  # unchanged: not sent again
        notifier.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
        clock[0] = 0.4
        notifier.watchdog()  # before half the interval: not sent
        clock[0] = 0.5
        notifier.watchdog()
        notifier.stopping()
        assert sock.recv(4096) == b"WATCHDOG=1"  # one, not two: the early one was not sent
        assert sock.recv(4096).split(b"\n")[0] == b"STOPPING=1"


def test_without_notify_socket_nothing_is_sent_and_no_watchdog_is_kept() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled and notifier.watchdog_seconds is None
    notifier.ready("x")
    notifier.watchdog()
    notifier.stopping()
    other = Notifier(
        {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    )
    assert other.watchdog_seconds is None  # systemd watches another process


def test_a_heartbeat_is_alive_for_three_turns_or_the_allowance_of_the_step_in_hand() -> None:
    clock = [100.0]
    heartbeat = Heartbeat(scan_seconds=2.0, clock=lambda: clock[0])
    clock[0] += 6.0
    assert heartbeat.alive()
    clock[0] += 0.1
    assert not heartbeat.alive()
    heartbeat.beat(allowance=600.0)
    clock[0] += 599.0
    assert heartbeat.alive()
    heartbeat.beat()
    clock[0] += 7.0
    assert not heartbeat.alive() and heartbeat.age() == pytest.approx(7.0)


@pytest.mark.parametrize(
    "listen", ["9464", "localhost", "127.0.0.1:0", "127.0.0.1:65536", "::1:9464", "[nohost]:1"]
)
def test_a_listen_address_is_host_colon_port(tmp_path: Path, listen: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(f'[monitoring]\nlisten = "{listen}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"monitoring\.listen"):
        config_module.load(path)


def test_monitoring_is_off_unless_configured_and_listens_only_where_told(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("", encoding="utf-8")
    assert config_module.load(path).monitoring.listen is None
    path.write_text('[monitoring]\nlisten = "[::1]:9464"\n', encoding="utf-8")
    assert config_module.load(path).monitoring.listen == ("::1", 9464)
    path.write_text('[monitoring]\nlisten = "0.0.0.0:9464"\n', encoding="utf-8")
    assert config_module.load(path).monitoring.listens_everywhere


def _facts(**changes: object) -> dict[str, object]:
    facts: dict[str, object] = {
        "data_dir": "/srv/gw",
        "store_error": None,
        "store_response_ms": 1.5,
        "paused": [],
        "attention": [],
        "sources": [{"name": "erp", "last_scan_at": "2026-11-25T10:00:00+00:00"}],
        "last_delivery_at": None,
        "data_free_bytes": 10 << 30,
        "alarms": [],
    }
    facts.update(changes)
    return facts


def test_readiness_passes_warns_and_fails_from_the_status_facts() -> None:
    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert readiness(_facts(), now=now)[1]["status"] == "pass"
    code, document = readiness(
        _facts(attention=[{"kind": "file-quarantined", "subject": "a.xml", "message": "m"}]), now=now
    )
    assert (code, document["status"]) == (200, "warn")
    code, document = readiness(_facts(store_error="the store cannot be used now"), now=now)
    assert (code, document["status"]) == (503, "fail")
    assert document["checks"]["store:responseTime"][0]["output"] == "the store cannot be used now"
    paused = {
        "scope": "source:erp",
        "since": "x",
        "cause": "unreachable",
        "waits_for": "the source to answer again",
    }
    code, document = readiness(_facts(paused=[paused]), now=now)
    assert code == 503 and document["checks"]["source-erp:lastScan"][0]["status"] == "fail"


def test_the_mask_filter_masks_the_fields_of_a_json_line_too() -> None:
    record = logging.makeLogRecord(
        {
            "msg": "file %s judged",
            "args": (f"{EXAMPLE_PERSONNUMMER[0]}.xml",),
            "levelname": "INFO",
            "name": "t",
        }
    )
    record.file = f"{EXAMPLE_PERSONNUMMER[0]}\n.xml"
    record.event = "file-judged"
    assert MaskIdentities().filter(record)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert full_identities_in(line, EXAMPLE_PERSONNUMMER[:1]) == []
    assert entry["event"] == "file-judged" and "\n" not in entry["file"] and entry["file"].endswith(".xml")
