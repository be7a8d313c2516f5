"""Alarms: each fires once and resolves once, told to a real webhook (an HTTP server of the test's
own) and a real SMTP server (aiosmtpd), never repeated while it fires, still known after a restart,
retried with the same Idempotency-Key after the webhook answered 500, and never with a personnummer.

The time-based alarms run the daemon's own parts (the evaluator, the store's reconciliation, the
sender) against a real SQLite store with an injected clock; the process tests at the end run the
daemon itself (tests/daemon_harness.py), with faults planted through tests/faulty_gateway.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.backoff import Backoff
from gateway.bootstrap import wire
from gateway.config import GatewayConfig, load
from gateway.errors import ConfigError
from gateway.service.alarms import AlarmSender, AlarmWatch, Deadlines
from gateway.service.pauses import Pauses
from gateway.store.roles import Store
from tests.alarm_servers import MailServer, WebhookServer, alarms_config, mail_server, webhook_server
from tests.daemon_harness import (
    EXAMPLE_PERSONNUMMER,
    Gateway,
    case_file,
    cases,
    drop,
    full_identities_in,
    wait_for,
)
from tests.faults import FAULT_ENV
from tests.monitoring_harness import get, labels, monitored_gateway, samples, series
from tests.store_contract import judge, seal

STOCKHOLM = ZoneInfo("Europe/Stockholm")
NO_WAIT = Backoff(base_seconds=0.0, max_seconds=0.0, jitter=0.0)


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with webhook_server() as server:
        yield server


@pytest.fixture
def mail() -> Iterator[MailServer]:
    with mail_server() as server:
        yield server


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class AlarmBench:
    """The daemon's alarm parts on a real store and real channels, with an injected clock."""

    def __init__(
        self, root: Path, webhook: WebhookServer, mail: MailServer, *, more: str, start: datetime
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / "gateway.toml").write_text(
            '[gateway]\ntimezone = "Europe/Stockholm"\n\n'
            '[[clients]]\nid = "lst"\norgnr = "202100-0001"\nname = "Länsstyrelsen"\n\n'
            '[[sources]]\nname = "erp"\npath = "inbox"\n\n'
            '[[sources]]\nname = "erp-sftp"\ntype = "sftp"\nhost = "sftp.example.se"\nusername = "u"\n'
            'key_file = "k"\nknown_hosts = "h"\nremote_dir = "/out"\n'
            + alarms_config(webhook, mail, more=more),
            encoding="utf-8",
        )
        self.config: GatewayConfig = load(root / "gateway.toml")
        self.clock = Clock(start)
        self.free = 50 << 30
        self.pauses = Pauses(clock=self.clock)
        self.store: Store = wire(self.config).open_store(holder="node-1:1:aaaa")
        self.store.register_node("node-1", version="1", now=start, lease_seconds=86400 * 400)
        self.sender = AlarmSender(
            lambda: wire(self.config).open_store(holder="node-1:1:aaaa"),
            wire(self.config).alarm_channels(),
            clock=self.clock,
            backoff=NO_WAIT,
        )
        self.restart()

    def restart(self) -> None:
        """A new daemon process on the same store: it knows only what the store says."""
        self.watch = AlarmWatch(self.config, node="node-1", clock=self.clock, free_bytes=lambda _: self.free)

    def turn(self) -> None:
        """One evaluation, as the daemon's loop makes it, and one look into the outbox."""
        self.watch.evaluate(self.store, self.pauses.all())
        self.sender.send_due()

    def close(self) -> None:
        self.sender.stop()
        self.store.close()


@pytest.fixture
def bench(tmp_path: Path, webhook: WebhookServer, mail: MailServer) -> Iterator[Callable[..., AlarmBench]]:
    made: list[AlarmBench] = []

    def make(*, more: str = "", start: datetime = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)) -> AlarmBench:
        made.append(AlarmBench(tmp_path / f"gw{len(made)}", webhook, mail, more=more, start=start))
        return made[-1]

    yield make
    for each in made:
        each.close()


def _told(webhook: WebhookServer, mail: MailServer, alarm: str) -> tuple[list[str], list[str]]:
    return (
        [state for code, _, state in webhook.changes() if code == alarm],
        [state for code, state in mail.changes() if code == alarm],
    )


def _fires_once_then_resolves_once(
    bench: AlarmBench,
    webhook: WebhookServer,
    mail: MailServer,
    alarm: str,
    *,
    start: Callable[[], None],
    resolve: Callable[[], None],
) -> None:
    start()
    bench.turn()
    assert _told(webhook, mail, alarm) == (["firing"], ["firing"])
    for _ in range(3):  # while it fires: told once
        bench.clock.advance(minutes=1)
        bench.turn()
    bench.restart()  # and after a restart
    bench.turn()
    assert _told(webhook, mail, alarm) == (["firing"], ["firing"])
    resolve()
    bench.turn()
    bench.turn()
    assert _told(webhook, mail, alarm) == (["firing", "resolved"], ["firing", "resolved"])
    (firing, resolved) = [post for post in webhook.answered() if post.body["alarm"] == alarm]
    assert firing.body["since"] == resolved.body["since"]
    assert firing.headers["Idempotency-Key"] != resolved.headers["Idempotency-Key"]
    assert firing.body.keys() == {
        "alarm", "state", "subject", "since", "message_sv", "message_en", "node", "gateway_version"
    }  # fmt: skip
    assert firing.body["node"] == "node-1" and firing.body["message_sv"] != firing.body["message_en"]


# -- each alarm, with an injected clock -----------------------------------------------------------------


def test_a_quarantined_file_fires_until_a_person_resolves_it_and_names_no_personnummer(
    bench: Callable[..., AlarmBench], webhook: WebhookServer, mail: MailServer
) -> None:
    gateway = bench()
    name = f"{EXAMPLE_PERSONNUMMER[0]}.xml"

    def quarantine() -> None:
        judge(gateway.store, name, status="quarantined", now=gateway.clock())

    def resolve() -> None:
        (record,) = gateway.store.quarantined_files()
        gateway.store.resolve_quarantined(record.id, by="Karin", resolution="sent back", now=gateway.clock())

    _fires_once_then_resolves_once(
        gateway, webhook, mail, "file-quarantined", start=quarantine, resolve=resolve
    )
    told = "".join(str(post.body) for post in webhook.posts) + "".join(str(m) for m in mail.messages)
    assert "850315-XXXX" in told
    assert full_identities_in(told, EXAMPLE_PERSONNUMMER) == []


def test_a_journal_waiting_for_approval_fires_after_the_hours_configured(
    bench: Callable[..., AlarmBench], webhook: WebhookServer, mail: MailServer
) -> None:
    gateway = bench(more="approval_waiting_hours = 24\n")

    def seal_for_review() -> None:
        judge(gateway.store, "a.xml", ["C-1"], now=gateway.clock(), client="lst", orgnr="2021000001")
        assert len(seal(gateway.store, manual_review=True, now=gateway.clock())) == 1
        gateway.clock.advance(hours=23, minutes=59)
        gateway.turn()
        assert webhook.posts == []
        gateway.clock.advance(minutes=2)

    def approve() -> None:
        (journal,) = gateway.store.journals()[:1]
        gateway.store.approve_journal(journal.journal_id, by="Karin", now=gateway.clock())

    _fires_once_then_resolves_once(
        gateway, webhook, mail, "journal-waiting-approval", start=seal_for_review, resolve=approve
    )


@pytest.mark.parametrize("permanent", [False, True], ids=["retried", "failed for good"])
def test_a_failing_delivery_fires_after_the_minutes_configured_or_at_once_when_permanent(
    bench: Callable[..., AlarmBench], webhook: WebhookServer, mail: MailServer, permanent: bool
) -> None:
    gateway = bench(more="delivery_failing_minutes = 30\n")
    store = gateway.store

    def fail() -> None:
        judge(store, "a.xml", ["C-1"], now=gateway.clock(), client="lst", orgnr="2021000001")
        (journal,) = seal(store, now=gateway.clock())
        assert store.begin_delivery(journal.journal_id, now=gateway.clock(), lease_seconds=60)
        error = "PERMANENT: refused by the agency" if permanent else "connection refused"
        store.record_delivery_failure(journal.journal_id, error, retry_at=gateway.clock())
        store.log_event("delivery-retry", journal.journal_id, error, now=gateway.clock())
        if not permanent:
            gateway.clock.advance(minutes=29)
            gateway.turn()
            assert webhook.posts == []
            gateway.clock.advance(minutes=2)

    def deliver() -> None:
        (journal,) = store.journals()[:1]
        assert store.begin_delivery(journal.journal_id, now=gateway.clock(), lease_seconds=60)
        store.record_delivered(journal.journal_id, now=gateway.clock())

    _fires_once_then_resolves_once(gateway, webhook, mail, "delivery-failing", start=fail, resolve=deliver)


def test_little_free_space_fires_and_room_resolves_it(
    bench: Callable[..., AlarmBench], webhook: WebhookServer, mail: MailServer
) -> None:
    gateway = bench(more="min_free_mb = 2048\n")

    def fill() -> None:
        gateway.free = 2047 << 20

    def make_room() -> None:
        gateway.free = 2048 << 20

    _fires_once_then_resolves_once(gateway, webhook, mail, "disk-low", start=fill, resolve=make_room)
    assert webhook.changes()[0][1] == "node-1"


@pytest.mark.parametrize(
    ("scope", "alarm", "minutes"),
    [("intake", "intake-paused", 10), ("source:erp-sftp", "source-unreachable", 15)],
)
def test_a_pause_fires_after_its_minutes_and_its_end_resolves_it(
    bench: Callable[..., AlarmBench],
    webhook: WebhookServer,
    mail: MailServer,
    scope: str,
    alarm: str,
    minutes: int,
) -> None:
    gateway = bench()

    def pause() -> None:
        gateway.pauses.failed(scope, "/srv/outbox: no space left on device", waits_for="free space")
        gateway.clock.advance(minutes=minutes - 1)
        gateway.pauses.failed(scope, "/srv/outbox: no space left on device", waits_for="free space")
        gateway.turn()
        assert webhook.posts == []
        gateway.clock.advance(minutes=1)

    _fires_once_then_resolves_once(
        gateway, webhook, mail, alarm, start=pause, resolve=lambda: gateway.pauses.succeeded(scope)
    )
    assert webhook.changes()[0][1] == ("node-1" if scope == "intake" else "erp-sftp@node-1")


# -- [[expect]] over the changes of daylight saving time -------------------------------------------------


def test_deadlines_are_the_schedules_times_in_its_zone_plus_the_grace_as_elapsed_time() -> None:
    weekdays = Deadlines("0 22 * * mon-fri", STOCKHOLM, timedelta(minutes=30))
    # Friday 22:00 CET, then Monday 22:00 CEST: the week end the clocks went forward.
    assert weekdays.last_two(datetime(2026, 3, 30, 20, 31, tzinfo=UTC)) == (
        datetime(2026, 3, 27, 21, 30, tzinfo=UTC),
        datetime(2026, 3, 30, 20, 30, tzinfo=UTC),
    )
    # A time in the hour that is skipped, plus 30 minutes of grace across the jump.
    night = Deadlines("45 1 * * *", STOCKHOLM, timedelta(minutes=30))
    assert night.last_two(datetime(2026, 3, 29, 2, 0, tzinfo=UTC))[1] == datetime(
        2026, 3, 29, 1, 15, tzinfo=UTC
    )
    # The hour that comes twice in October: 02:30 is one time, the first.
    repeated = Deadlines("30 2 * * *", STOCKHOLM, timedelta(minutes=30))
    assert repeated.last_two(datetime(2026, 10, 25, 2, 5, tzinfo=UTC)) == (
        datetime(2026, 10, 24, 1, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
    )
    assert repeated.last_two(datetime(2026, 10, 26, 2, 1, tzinfo=UTC))[1] == datetime(
        2026, 10, 26, 2, 0, tzinfo=UTC
    )
    assert Deadlines("0 3 1 1 *", STOCKHOLM, timedelta(0)).last_two(datetime(2026, 6, 1, tzinfo=UTC)) == (
        datetime(2025, 1, 1, 2, 0, tzinfo=UTC),
        datetime(2026, 1, 1, 2, 0, tzinfo=UTC),
    )


def test_an_expected_file_missing_at_the_spring_deadline_fires_and_a_file_resolves_it(
    bench: Callable[..., AlarmBench], webhook: WebhookServer, mail: MailServer
) -> None:
    gateway = bench(more="", start=datetime(2026, 3, 27, 12, 0, tzinfo=UTC))  # Friday; [[expect]] below
    gateway.config = load_with(
        gateway, '[[expect]]\nsource = "erp"\nschedule = "0 22 * * mon-fri"\ngrace = "30m"\n'
    )
    gateway.restart()
    judge(gateway.store, "friday.xml", now=gateway.clock())
    gateway.clock.now = datetime(2026, 3, 27, 21, 31, tzinfo=UTC)  # Friday's deadline: one file came
    gateway.turn()
    gateway.clock.now = datetime(2026, 3, 30, 20, 29, tzinfo=UTC)  # Monday 22:29 CEST: not yet
    gateway.turn()
    assert webhook.posts == []

    def deadline_passes() -> None:
        gateway.clock.now = datetime(2026, 3, 30, 20, 31, tzinfo=UTC)  # 22:31 CEST, 21:31 CET

    def a_file_comes() -> None:
        judge(gateway.store, "late.xml", now=gateway.clock())

    _fires_once_then_resolves_once(
        gateway, webhook, mail, "expected-file-missing", start=deadline_passes, resolve=a_file_comes
    )
    (firing, _) = webhook.answered()
    assert firing.body["subject"] == "erp" and firing.body["since"] == "2026-03-30T20:30:00+00:00"
    assert "2026-03-30 22:30 CEST" in firing.body["message_sv"]


def test_the_repeated_autumn_hour_is_one_deadline_and_the_next_night_fires(
    bench: Callable[..., AlarmBench], webhook: WebhookServer, mail: MailServer
) -> None:
    gateway = bench(start=datetime(2026, 10, 25, 0, 10, tzinfo=UTC))  # 02:10 CEST, Sunday
    gateway.config = load_with(
        gateway, '[[expect]]\nsource = "erp"\nclient = "lst"\nschedule = "30 2 * * *"\ngrace = "30m"\n'
    )
    gateway.restart()
    judge(gateway.store, "night.xml", now=gateway.clock(), client="lst")
    gateway.clock.now = datetime(2026, 10, 25, 2, 5, tzinfo=UTC)  # past a second 02:30 + 30 m
    gateway.turn()
    assert webhook.posts == []
    gateway.clock.now = datetime(2026, 10, 26, 2, 1, tzinfo=UTC)  # Monday 03:01 CET: none came
    gateway.turn()
    assert webhook.changes() == [("expected-file-missing", "erp/lst", "firing")]


def load_with(gateway: AlarmBench, toml: str) -> GatewayConfig:
    path = gateway.config.path
    path.write_text(path.read_text(encoding="utf-8") + "\n" + toml, encoding="utf-8")
    return load(path)


# -- the channels --------------------------------------------------------------------------------------------


def test_a_webhook_that_answers_500_is_told_again_with_the_same_idempotency_key(
    bench: Callable[..., AlarmBench], webhook: WebhookServer, mail: MailServer
) -> None:
    gateway = bench(more="min_free_mb = 2048\n")
    webhook.failures = 2
    gateway.free = 1 << 20
    gateway.turn()
    gateway.sender.send_due()
    gateway.sender.send_due()
    posts = webhook.posts
    assert [post.answered for post in posts] == [500, 500, 200]
    assert len({post.headers["Idempotency-Key"] for post in posts}) == 1
    assert len({str(post.body) for post in posts}) == 1
    assert mail.changes() == [("disk-low", "firing")]  # the mail server was not held up


def test_the_alarm_configuration_is_checked(tmp_path: Path) -> None:
    (tmp_path / "gateway.toml").write_text(
        '[[sources]]\nname = "erp"\npath = "inbox"\n\n'
        '[[expect]]\nsource = "nope"\nclient = "x"\nschedule = "0 25 * * *"\ngrace = "soon"\nmin_files = 0\ncolour = 1\n\n'
        '[alarms]\nwebhook = "ftp://x"\nmin_free_mb = -1\nloud = true\n\n'
        '[alarms.smtp]\nhost = "mail"\npassword = "secret"\nfrom = "nobody"\nto = []\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as refused:
        load(tmp_path / "gateway.toml")
    keys = {problem.split(":")[0] for problem in refused.value.problems}
    assert {
        "expect[0].source", "expect[0].client", "expect[0].schedule", "expect[0].grace", "expect[0].min_files",
        "expect[0].colour", "alarms.webhook", "alarms.min_free_mb", "alarms.loud", "alarms.smtp.password",
        "alarms.smtp.from", "alarms.smtp.to",
    } <= keys  # fmt: skip
    assert "secret" not in str(refused.value)


# -- the running daemon ------------------------------------------------------------------------------


def _scraped_alarms(base: str) -> dict[frozenset[tuple[str, str]], float]:
    answer = get(base + "/metrics")
    assert answer is not None and answer.status == 200
    return series(samples(answer.body), "inkasso_gateway_alarm")


@pytest.mark.process
def test_the_daemon_fires_a_quarantined_files_alarm_once_across_a_restart_and_resolves_it_once(
    tmp_path: Path, webhook: WebhookServer, mail: MailServer
) -> None:
    webhook.failures = 1  # the first POST is answered 500: told again, with the same key
    gateway, base = monitored_gateway(
        tmp_path, extra_config=alarms_config(webhook, mail, more="min_free_mb = 1\n")
    )
    fault = {FAULT_ENV: "raise:poison"}
    daemon = gateway.start(env=fault)
    try:
        name = f"{EXAMPLE_PERSONNUMMER[0]}-poison.xml"
        drop(gateway.inbox, name, case_file("ALARM-1", cases("ALA", 2)))
        wait_for(lambda: webhook.changes(), timeout=60, what="the alarm told to the webhook", daemon=daemon)
        ((alarm, subject, state),) = webhook.changes()
        assert (alarm, state) == ("file-quarantined", "firing")
        failed, taken = webhook.posts
        assert (failed.answered, taken.answered) == (500, 200)
        assert failed.headers["Idempotency-Key"] == taken.headers["Idempotency-Key"]
        wait_for(lambda: mail.changes(), timeout=30, what="the alarm e-mailed", daemon=daemon)
        status = gateway.status()
        assert [(a["alarm"], a["subject"]) for a in status["alarms"]] == [(alarm, subject)]
        assert status["exit_code"] == 1
        assert _scraped_alarms(base) == {labels(alarm=alarm, subject=subject): 1}

        # A restart: the alarm is known, not raised again.
        assert daemon.terminate() == 0
        daemon = gateway.start(env=fault)
        wait_for(
            lambda: gateway.status()["daemon"]["running"], timeout=30, what="the daemon again", daemon=daemon
        )
        file_id = subject.removeprefix("file-")
        gateway.cli("quarantine", "resolve", file_id, "--by", "Karin", "--note", "sent back to the ERP")
        wait_for(lambda: len(webhook.changes()) == 2, timeout=60, what="the resolution told", daemon=daemon)
        wait_for(lambda: len(mail.changes()) == 2, timeout=30, what="the resolution e-mailed", daemon=daemon)
        assert webhook.changes() == [(alarm, subject, "firing"), (alarm, subject, "resolved")]
        assert mail.changes() == [(alarm, "firing"), (alarm, "resolved")]
        assert _scraped_alarms(base) == {labels(alarm=alarm, subject=subject): 0}
        status = gateway.status()
        assert (status["alarms"], status["exit_code"]) == ([], 0)
        told = "".join(str(p.body) for p in webhook.posts) + "".join(m.as_string() for m in mail.messages)
        assert full_identities_in(told + json.dumps(status), EXAMPLE_PERSONNUMMER) == []
    finally:
        gateway.stop_all()


@pytest.mark.process
def test_the_daemon_fires_disk_low_and_a_restart_with_a_lower_limit_resolves_it(
    tmp_path: Path, webhook: WebhookServer, mail: MailServer
) -> None:
    gateway = Gateway(tmp_path, extra_config=alarms_config(webhook, mail, more=f"min_free_mb = {1 << 30}\n"))
    daemon = gateway.start()
    try:
        wait_for(lambda: webhook.changes(), timeout=60, what="disk-low told", daemon=daemon)
        status = gateway.status()
        assert [a["alarm"] for a in status["alarms"]] == ["disk-low"]
        assert status["exit_code"] == 1
        assert any(item["kind"] == "alarm:disk-low" for item in status["attention"])
        assert daemon.terminate() == 0
        gateway.extra_config = alarms_config(webhook, mail, more="min_free_mb = 1\n")
        gateway.write_config()
        daemon = gateway.start()
        wait_for(lambda: len(webhook.changes()) == 2, timeout=60, what="disk-low resolved", daemon=daemon)
        ((_, node, _), _) = webhook.changes()
        assert webhook.changes() == [("disk-low", node, "firing"), ("disk-low", node, "resolved")]
        wait_for(lambda: len(mail.changes()) == 2, timeout=30, what="the resolution e-mailed", daemon=daemon)
        assert gateway.status()["exit_code"] == 0
    finally:
        gateway.stop_all()
