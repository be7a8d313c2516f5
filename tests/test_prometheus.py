"""A real Prometheus (Debian's) scrapes a running gateway, and the figures it stores are the
receipts' figures; the shipped alert rules pass `promtool check rules` and their unit tests.

The prometheus tier: outside CI it is skipped where Prometheus is missing (`make prometheus`
installs it); in CI it must run.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.daemon_harness import MAIN_CLIENT, case_file, cases, drop, tail, wait_for
from tests.monitoring_harness import OTHER_CLIENT, free_port, get, monitored_gateway, receipt_figures

RULES = REPO / "deploy" / "prometheus-rules.yml"
RULES_TEST = REPO / "tests" / "data" / "prometheus" / "rules-test.yml"
CLIENTS = {MAIN_CLIENT[1].replace("-", ""): MAIN_CLIENT[0], OTHER_CLIENT[1].replace("-", ""): OTHER_CLIENT[0]}

pytestmark = pytest.mark.prometheus


class Prometheus:
    """A Prometheus server of its own: a temporary configuration and database, a free port."""

    def __init__(self, folder: Path, target: str) -> None:
        folder.mkdir(parents=True)
        self.config = folder / "prometheus.yml"
        self.config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {RULES}\n"
            "scrape_configs:\n"
            f"  - job_name: inkasso-gateway\n    static_configs:\n      - targets: ['{target}']\n",
            encoding="utf-8",
        )
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = folder / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address={self.url.removeprefix('http://')}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> bool:
        assert self.process.poll() is None, f"prometheus exited\n{tail(self.log.read_text(errors='replace'))}"
        answer = get(self.url + "/-/ready")
        return answer is not None and answer.status == 200

    def query(self, expression: str) -> list[dict[str, object]]:
        """An instant query through the HTTP API: its result vector."""
        answer = get(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expression})}")
        assert answer is not None and answer.status == 200, answer
        document = json.loads(answer.body)
        assert document["status"] == "success", document
        result: list[dict[str, object]] = document["data"]["result"]
        return result

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[list[Prometheus]]:
    started: list[Prometheus] = []
    yield started
    for server in started:
        server.stop()


@pytest.mark.process
def test_prometheus_scrapes_the_daemon_and_stores_what_the_receipts_say(
    tmp_path: Path, prometheus_for: list[Prometheus]
) -> None:
    gateway, base = monitored_gateway(tmp_path / "gw")
    daemon = gateway.start()
    try:
        server = Prometheus(tmp_path / "prometheus", base.removeprefix("http://"))
        prometheus_for.append(server)
        wait_for(server.ready, timeout=60, what="Prometheus to be ready")
        # Scraped before any file: every source's series is there, at zero.
        before = wait_for(
            lambda: server.query('inkasso_gateway_files_total{job="inkasso-gateway"}'),
            timeout=60,
            what="a first scrape",
            daemon=daemon,
        )
        assert {float(str(item["value"][1])) for item in before} == {0.0}  # type: ignore[index]
        assert {item["metric"]["source"] for item in before} == {"erp", "erp2"}  # type: ignore[index]

        accepted = case_file("PROM-1", cases("PROMA", 3))
        drop(gateway.inbox, "accepted.xml", accepted)
        drop(gateway.inbox, "partly.xml", case_file("PROM-2", cases("PROMB", 2, bad_identity=[0])))
        drop(gateway.root / "inbox2", "again.xml", accepted)
        wait_for(lambda: len(gateway.receipt_paths()) == 3, timeout=60, what="three receipts", daemon=daemon)
        expected = {key: float(value) for key, value in receipt_figures(gateway, CLIENTS).files.items()}

        def stored() -> bool:
            result = server.query('inkasso_gateway_files_total{job="inkasso-gateway"} > 0')
            found = {
                (item["metric"]["source"], item["metric"]["status"]): float(item["value"][1])  # type: ignore[index]
                for item in result
            }
            return found == expected

        wait_for(stored, timeout=60, what="Prometheus to hold the receipts' figures", daemon=daemon)
        (up,) = server.query('up{job="inkasso-gateway"}')
        assert up["value"][1] == "1"  # type: ignore[index]
    finally:
        assert daemon.terminate() == 0


def test_the_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    checked = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        ["promtool", "test", "rules", str(RULES_TEST)], capture_output=True, text=True, check=False
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
