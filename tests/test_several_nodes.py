"""Several gateway nodes on one data folder and one PostgreSQL store, as processes, killed -9.

Three daemons (`[gateway] node = "n1"`, "n2", "n3") share a data folder and a throwaway
PostgreSQL cluster (tests/postgres_server.py). Files are dropped while random nodes are killed
with SIGKILL and started again; then the journals are sealed and delivered. What the users see
must be as if one daemon had never failed: every file one receipt and one final place, every
accepted case in exactly one delivered journal, journal numbers without gaps, each journal
delivered once, one unbroken receipt chain, `audit verify` OK, the report balanced. A second
test stops PostgreSQL for 20 s in the middle of intake.

Observed as the users observe it: receipts, files, journals, `status`, `journal list`, `audit
verify`, `report`; never the store's tables or the log's wording.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import (
    MAIN_CLIENT,
    DaemonProcess,
    Gateway,
    _command,
    agency_orgnr,
    case_file,
    cases,
    check_receipt_chain,
    drop,
    parse_journal,
    wait_for,
)
from tests.postgres_server import PostgresServer

pytestmark = [pytest.mark.process, pytest.mark.postgres, pytest.mark.slow]

OTHER_CLIENT = ("skv-exempel", agency_orgnr(2), "Skolverket i Exempelstad")
NODES = ("n1", "n2", "n3")


class Cluster:
    """A shared data folder, a PostgreSQL store and one config per node (differing only in
    `[gateway] node`). The harness's gateway.toml (no node named) is what a person's commands use."""

    def __init__(self, root: Path, url: str) -> None:
        self.gw = Gateway(root, clients=(MAIN_CLIENT, OTHER_CLIENT), scan_seconds=0.3, stable_seconds=0.3)
        shared = self.gw.config.read_text(encoding="utf-8").replace(
            'url = "sqlite:///var/gateway.db"', f'url = "{url}"'
        )
        assert url in shared
        self.gw.config.write_text(shared, encoding="utf-8")
        self.configs = {}
        for node in NODES:
            path = root / f"{node}.toml"
            path.write_text(
                shared.replace("[gateway]\n", f'[gateway]\nnode = "{node}"\n', 1), encoding="utf-8"
            )
            self.configs[node] = path
        self.running: dict[str, DaemonProcess] = {}
        self.starts = 0

    def start(self, node: str) -> DaemonProcess:
        self.starts += 1
        log = self.gw.logs / f"{node}-{self.starts:03d}.log"
        with log.open("wb") as stderr:
            proc = subprocess.Popen(
                [*_command(), "run", "--config", str(self.configs[node])], cwd=self.gw.root, env=self.gw.env(),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip
        daemon = DaemonProcess(proc, log, ready=" started: ")
        self.gw.processes.append(daemon)
        self.running[node] = daemon
        return daemon

    def kill(self, node: str) -> None:
        self.running.pop(node).kill()

    def stop_all(self) -> None:
        for node in list(self.running):
            assert self.running.pop(node).terminate(timeout=30) == 0, f"node {node} did not stop cleanly"


@pytest.fixture
def cluster(tmp_path: Path, postgres: PostgresServer) -> Iterator[Cluster]:
    made = Cluster(tmp_path / "shared", postgres.new_database())
    yield made
    made.gw.stop_all()


def _file(i: int) -> tuple[str, bytes]:
    """File i: ten cases of one of two clients; every 9th has a case with a wrong identity."""
    client = MAIN_CLIENT if i % 2 == 0 else OTHER_CLIENT
    specs = cases(f"N{i:03d}", 10, bad_identity=[4] if i % 9 == 0 else [])
    return f"nod-{i:03d}.xml", case_file(f"NODES-{i}", specs, orgnr=client[1])


def _assert_all_accounted_for(gw: Gateway, names: list[str]) -> None:
    receipts = gw.receipts_by_name()  # every receipt validates; a file with two fails here
    assert sorted(receipts) == sorted(names)
    assert gw.inbox_names() == []
    placed = [p.name for folder in (gw.archive, gw.rejected, gw.quarantine) for p in gw.placed(folder)]
    assert len(placed) == len(names), f"{len(placed)} originals placed for {len(names)} files"
    check_receipt_chain(list(receipts.values()), head=gw.receipt_chain_head())
    assert gw.hidden_files(gw.receipts) == [], "temporary receipts left behind"

    journals = gw.journals_listed()
    assert journals and all(j["state"] == "delivered" for j in journals), journals
    for client in (MAIN_CLIENT[0], OTHER_CLIENT[0]):
        numbers = sorted(j["sequence"] for j in journals if j["client"] == client)
        assert numbers == list(range(1, len(numbers) + 1)), f"{client}'s journal numbers: {numbers}"
    files = gw.journal_files()
    assert len(files) == len(journals), f"{len(files)} journal files for {len(journals)} journals"
    accepted = Counter(ref for receipt in receipts.values() for ref in receipt.accepted_references)
    delivered = Counter(ref for path in files for ref in parse_journal(path).references)
    assert delivered == accepted and max(delivered.values()) == 1
    journal_receipts = sorted(p.name for p in gw.journal_receipts.iterdir() if not p.name.startswith("."))
    assert journal_receipts == sorted(f"{p.name}.kvittens.xml" for p in files)

    audit = gw.audit()
    assert audit.returncode == 0, audit.stdout + audit.stderr
    report = json.loads(gw.cli("report", "--no-write", "--format", "json").stdout)
    assert report["balanced"] is True, report


def test_three_nodes_killed_at_random_lose_nothing_and_do_nothing_twice(cluster: Cluster) -> None:
    rng = random.Random(int(time.time()))
    gw = cluster.gw
    for node in NODES:
        cluster.start(node)
    names: list[str] = []
    kills = 0
    deadline = time.monotonic() + 240
    next_kill = time.monotonic() + rng.uniform(0.5, 2.0)
    while time.monotonic() < deadline:
        if len(names) < 300:
            for _ in range(4):  # 300 files over about 40 s, kills all the while
                name, data = _file(len(names))
                drop(gw.inbox, name, data)
                names.append(name)
        if time.monotonic() >= next_kill and len(gw.receipt_paths()) < 300:
            victim = rng.choice(sorted(cluster.running))
            cluster.kill(victim)
            kills += 1
            time.sleep(rng.uniform(0.2, 1.5))
            cluster.start(victim)
            next_kill = time.monotonic() + rng.uniform(0.5, 2.0)
        if len(names) == 300 and len(gw.receipt_paths()) >= 300 and not gw.inbox_names():
            break
        time.sleep(0.2)
    print(f"{kills} kills; {len(gw.receipt_paths())} receipts")
    assert kills >= 8, "the nodes were not killed often enough to prove anything"
    wait_for(
        lambda: len(gw.receipt_paths()) >= 300 and not gw.inbox_names(),
        timeout=120,
        what="300 receipts and an empty inbox",
    )
    status = gw.status()
    assert {node["name"] for node in status["nodes"] if node["alive"]} == set(NODES), status["nodes"]

    # A person seals; any node delivers each journal, once. Meanwhile one more node dies.
    gw.cli("journal", "seal")
    cluster.kill(rng.choice(NODES))
    wait_for(
        lambda: all(j["state"] == "delivered" for j in gw.journals_listed()),
        timeout=120,
        what="every journal delivered",
    )
    cluster.stop_all()
    _assert_all_accounted_for(gw, names)


def test_postgresql_stopped_for_20_seconds_in_the_middle_of_intake(
    cluster: Cluster, postgres: PostgresServer
) -> None:
    gw = cluster.gw
    for node in NODES[:2]:
        cluster.start(node)
    names = []
    for i in range(80):
        name, data = _file(i)
        drop(gw.inbox, name, data)
        names.append(name)
    wait_for(lambda: len(gw.receipt_paths()) >= 10, timeout=60, what="intake under way")
    postgres.pause()
    try:
        before = len(gw.receipt_paths())
        time.sleep(20)
        # Without the store nothing is judged: no receipt can be chained (at most those whose
        # commit came before the stop are published now).
        assert all(daemon.alive() for daemon in cluster.running.values()), "a node died without its store"
        assert len(gw.receipt_paths()) <= before + 2
        status = gw.status()
        assert status["store_error"], status
    finally:
        postgres.resume()
    wait_for(
        lambda: len(gw.receipt_paths()) >= 80 and not gw.inbox_names(),
        timeout=120,
        what="80 receipts and an empty inbox after the store came back",
    )
    gw.cli("journal", "seal")
    wait_for(
        lambda: all(j["state"] == "delivered" for j in gw.journals_listed()),
        timeout=60,
        what="every journal delivered",
    )
    cluster.stop_all()
    _assert_all_accounted_for(gw, names)
