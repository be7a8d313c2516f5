"""The real daemon as a process: `inkasso-gateway run` started, stopped and killed -9 by the tests.

Each test writes its own gateway.toml into tmp_path (tests/daemon_harness.py), starts the daemon and
the command line as child processes, and checks what an operator and an auditor would check, through
what they see: one receipt per file, originals in their place, each accepted case in exactly one
delivered journal, the receipt chain unbroken, nothing half-written left behind, no personnummer in
the log, and the command line's own account (`status`, `journal list`, `trace`, `audit verify`).
No test reads the store's tables or the wording of the log. Every wait polls a condition with a
timeout; the only sleeps are a slow producer's pace and the random moments at which a process is
killed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.daemon_harness import (
    EXAMPLE_PERSONNUMMER,
    MAIN_CLIENT,
    Gateway,
    Receipt,
    agency_orgnr,
    case_file,
    cases,
    check_receipt_chain,
    drop,
    full_identities_in,
    parse_journal,
    parse_journal_receipt,
    tail,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.process]

MakeGateway = Callable[..., Gateway]


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[MakeGateway]:
    made: list[Gateway] = []

    def make(**settings: object) -> Gateway:
        gateway = Gateway(tmp_path / f"gw{len(made)}", **settings)  # type: ignore[arg-type]
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.stop_all()


def _seed() -> int:
    seed = int(os.environ.get("DAEMON_TEST_SEED", str(time.time_ns() % 2**32)))
    print(f"random seed {seed} (set DAEMON_TEST_SEED={seed} to repeat)")
    return seed


def _placements(gw: Gateway) -> dict[str, list[Path]]:
    """Original file name -> every place it is in (archive/, rejected/, quarantine/)."""
    places: dict[str, list[Path]] = {}
    for folder in (gw.archive, gw.rejected, gw.quarantine):
        for path in gw.placed(folder):
            _, _, name = path.name.partition("-")  # "<file row id>-<original name>"
            places.setdefault(name, []).append(path)
    return places


def _assert_placed_by_status(gw: Gateway, receipts: dict[str, Receipt]) -> None:
    places = _placements(gw)
    for name, receipt in receipts.items():
        where = places.get(name, [])
        assert len(where) == 1, f"{name} ({receipt.status}) is in {len(where)} places: {where}"
        if "F08" in receipt.file_codes:
            expected = gw.quarantine
        elif receipt.status in ("Godkand", "DelvisGodkand"):
            expected = gw.archive
        else:
            expected = gw.rejected
        assert expected in where[0].parents, f"{name} ({receipt.status}) is in {where[0]}, not {expected}"
    assert set(places) == set(receipts), f"originals without a receipt: {set(places) - set(receipts)}"


def _assert_no_full_identities(text: str, identities: tuple[str, ...] = EXAMPLE_PERSONNUMMER) -> None:
    leaked = full_identities_in(text, identities)
    lines = [line for line in text.splitlines() if full_identities_in(line, identities)]
    assert not leaked, f"personnummer {leaked} in full in the log:\n" + "\n".join(lines[:5])


# -- 1. a burst --------------------------------------------------------------------------------------


def test_a_burst_of_25_files_gets_25_receipts_and_a_journal_of_exactly_the_accepted_cases(
    make_gateway: MakeGateway,
) -> None:
    gw = make_gateway()
    daemon = gw.start()
    expected: dict[str, tuple[str, str | None]] = {}  # name -> (status, a code the receipt must have)
    for i in range(25):
        name = f"burst-{i:02d}.xml"
        kind = i % 5
        if kind in (0, 1, 2):
            data, want = case_file(f"BURST-{i}", cases(f"B{i:02d}", 2 + i % 3)), ("Godkand", None)
        elif kind == 3:
            specs = cases(f"B{i:02d}", 4, bad_identity=[1], fordranstyp=[3])
            data, want = case_file(f"BURST-{i}", specs), ("DelvisGodkand", "M02")
        elif i % 2:
            data, want = (
                case_file(f"BURST-{i}", cases(f"B{i:02d}", 3), wrong_totals=True),
                ("Underkand", "F06"),
            )
        else:
            specs = cases(f"B{i:02d}", 2, bad_identity=[0, 1])
            data, want = case_file(f"BURST-{i}", specs), ("Underkand", "M02")
        drop(gw.inbox, name, data)
        expected[name] = want

    wait_for(
        lambda: len(gw.receipt_paths()) >= 25 and not gw.inbox_names(),
        timeout=60,
        what="25 receipts and an empty inbox",
        daemon=daemon,
    )
    receipts = gw.receipts_by_name()
    assert sorted(receipts) == sorted(expected)
    assert len(gw.receipt_paths()) == 25
    for name, (status, code) in expected.items():
        receipt = receipts[name]
        assert receipt.status == status, f"{name}: {receipt.status}, expected {status}"
        if code is not None:
            codes = receipt.file_codes + [c for case in receipt.cases for c in case.codes]
            assert code in codes, f"{name}: {code} missing from {codes}"
    _assert_placed_by_status(gw, receipts)
    check_receipt_chain(list(receipts.values()))

    accepted = [ref for receipt in receipts.values() for ref in receipt.accepted_references]
    capital = sum((receipt.accepted_capital for receipt in receipts.values()), Decimal(0))
    assert len(accepted) == sum(receipt.accepted for receipt in receipts.values())

    sealed = gw.cli("journal", "seal")  # separate processes, while the daemon runs
    assert "sealed lst-exempel-j" in sealed.stdout, sealed.stdout
    # Sent now by this command, or by the daemon meanwhile: either way the answer is what became
    # of it, never "not now".
    sent = gw.cli("journal", "send", "lst-exempel-j1")
    assert sent.stdout.startswith("lst-exempel-j1 lst-exempel-000001.xml: delivered"), sent.stdout
    journal_file = gw.journals / "lst-exempel-000001.xml"
    wait_for(
        lambda: (gw.journal_receipts / "lst-exempel-000001.xml.kvittens.xml").exists(),
        timeout=20,
        what="the journal and its receipt",
        daemon=daemon,
    )
    journal = parse_journal(journal_file)
    assert journal.case_count == len(accepted)
    assert journal.capital == capital
    assert sorted(journal.references) == sorted(accepted)
    assert journal.sequence == 1
    journal_receipt = parse_journal_receipt(gw.journal_receipts / "lst-exempel-000001.xml.kvittens.xml")
    assert sorted(journal_receipt["references"]) == sorted(accepted)
    assert gw.journal_files() == [journal_file]

    (listed,) = gw.journals_listed()
    assert (listed["state"], listed["cases"], listed["sequence"]) == ("delivered", len(accepted), 1)
    overview = gw.status()
    assert overview["delivered_journals"] == 1
    assert sum(overview["files"].values()) == 25 and all(k.startswith("done") for k in overview["files"])
    assert daemon.terminate() == 0


# -- 2. finished files only --------------------------------------------------------------------------


def test_a_slow_writer_and_temporary_names_are_never_taken_early(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    daemon = gw.start()
    data = case_file("SLOW-1", cases("SLOW", 40))
    path = gw.inbox / "slow.xml"
    step = len(data) // 20 + 1
    for offset in range(0, len(data), step):  # 20 chunks, 0.1 s apart, each closed (a watchdog event)
        with path.open("ab") as out:
            out.write(data[offset : offset + step])
        time.sleep(0.1)  # the producer's pace, shorter than stable_seconds (0.3)
    receipt = wait_for(
        lambda: gw.receipt_for("slow.xml"), timeout=20, what="slow.xml's receipt", daemon=daemon
    )
    assert receipt.status == "Godkand", receipt.cases
    assert receipt.accepted == 40
    assert receipt.file_sha256 == hashlib.sha256(data).hexdigest()
    # Taken once, whole: a file taken while still being written would have been taken again.
    assert gw.traced_files("slow.xml") == [f"File slow.xml (sha256 {receipt.file_sha256[:12]})"]

    # Names a producer is still writing: never taken, however long they sit there.
    temporary = {"late.xml.part": "late.xml", ".later.xml": "later.xml", "latest.xml.tmp": "latest.xml"}
    for n, name in enumerate(temporary):
        (gw.inbox / name).write_bytes(case_file(f"LATE-{n}", cases(f"LATE{n}", 2)))
    drop(gw.inbox, "marker.xml", case_file("MARKER-1", cases("MARK", 1)))
    # The temporaries are older than marker.xml: had they been takeable, they would have gone first.
    wait_for(lambda: gw.receipt_for("marker.xml"), timeout=20, what="marker.xml's receipt", daemon=daemon)
    wait_for(lambda: "marker.xml" not in gw.inbox_names(), timeout=10, what="marker.xml moved away")
    assert sorted(gw.inbox_names()) == sorted(temporary)
    assert len(gw.receipt_paths()) == 2
    status = gw.status()
    assert sum(status["files"].values()) == 2, status["files"]
    (source,) = status["sources"]
    assert (source["files_waiting"], source["files_being_written"]) == (0, 3), source
    for name in temporary:
        assert gw.traced_files(name) == [], f"{name} was taken"

    for name, final in temporary.items():
        (gw.inbox / name).rename(gw.inbox / final)
    wait_for(
        lambda: len(gw.receipt_paths()) == 5 and not gw.inbox_names(),
        timeout=20,
        what="receipts for the renamed files",
        daemon=daemon,
    )
    receipts = gw.receipts_by_name()
    assert {receipts[final].status for final in temporary.values()} == {"Godkand"}
    assert daemon.terminate() == 0


# -- 3. duplicates and conflicts ---------------------------------------------------------------------


def test_the_same_bytes_again_are_a_duplicate_and_a_changed_case_is_a_conflict(
    make_gateway: MakeGateway,
) -> None:
    gw = make_gateway()
    daemon = gw.start()
    original = cases("DUP", 3)
    data = case_file("DUP-FILE-1", original)
    drop(gw.inbox, "a.xml", data)
    first = wait_for(lambda: gw.receipt_for("a.xml"), timeout=20, what="a.xml's receipt", daemon=daemon)
    assert first.status == "Godkand"
    wait_for(lambda: not gw.inbox_names(), timeout=10, what="a.xml moved away")
    assert gw.cases_in_journals() == 3

    drop(gw.inbox, "a-again.xml", data)  # the same bytes under a new name
    again = wait_for(lambda: gw.receipt_for("a-again.xml"), timeout=20, what="the duplicate's receipt")
    assert again.status == "Dubblett"
    assert again.earlier == first.path.name, (again.earlier, first.path.name)
    assert again.accepted == 0
    wait_for(lambda: not gw.inbox_names(), timeout=10, what="a-again.xml moved away")
    assert gw.cases_in_journals() == 3, "a duplicate adds no case"
    assert any(p.name.endswith("-a-again.xml") for p in gw.placed(gw.rejected))

    # The same FilId from the same client with other content: a duplicate file too (F04).
    drop(gw.inbox, "same-filid.xml", case_file("DUP-FILE-1", cases("OTHER", 1)))
    same_id = wait_for(lambda: gw.receipt_for("same-filid.xml"), timeout=20, what="same-filid.xml's receipt")
    assert same_id.status == "Dubblett", (same_id.status, same_id.file_codes)
    assert same_id.earlier == first.path.name

    # The same ArendeReferens with other content in a new file: that case is a conflict (A05).
    changed = dataclasses.replace(original[0], invoice="FDUP-CHANGED-1", amount=original[0].amount + 1)
    drop(gw.inbox, "b.xml", case_file("DUP-FILE-2", [changed, *cases("NEW", 1)]))
    conflict = wait_for(lambda: gw.receipt_for("b.xml"), timeout=20, what="b.xml's receipt", daemon=daemon)
    assert conflict.status == "DelvisGodkand"
    by_ref = {case.reference: case for case in conflict.cases}
    assert by_ref[changed.reference].status == "Underkand"
    assert "A05" in by_ref[changed.reference].codes, by_ref[changed.reference].codes
    assert by_ref["NEW-000000"].status == "Godkand"
    assert gw.cases_in_journals() == 4, "only the new case of b.xml joins"
    check_receipt_chain(list(gw.receipts_by_name().values()))

    # Delivered, the journal holds each case once, and the conflicting one as first accepted.
    gw.cli("journal", "seal")
    sent = gw.cli("journal", "send", "lst-exempel-j1")
    assert sent.stdout.startswith("lst-exempel-j1 lst-exempel-000001.xml: delivered"), sent.stdout
    journal = parse_journal(gw.journals / "lst-exempel-000001.xml")
    assert sorted(journal.references) == sorted([*(spec.reference for spec in original), "NEW-000000"])
    assert journal.capital == sum((spec.amount for spec in original), cases("NEW", 1)[0].amount)
    assert daemon.terminate() == 0


# -- 4. kill -9 during intake ------------------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_at_random_moments_during_intake_ends_as_if_nothing_happened(
    make_gateway: MakeGateway,
) -> None:
    rng = random.Random(_seed())
    gw = make_gateway()
    names, first = [], b""
    for i in range(60):  # accepted, partially accepted, rejected (F06), and the last a duplicate
        name = f"kill-{i:02d}.xml"
        bad = [1] if i % 7 == 3 else []
        specs = cases(f"K{i:02d}", 200, bad_identity=bad)
        data = case_file(f"KILL-{i}", specs, wrong_totals=i % 13 == 5) if i < 59 else first
        first = first or data
        drop(gw.inbox, name, data)
        names.append(name)

    def finished() -> bool:
        return len(gw.receipt_paths()) >= 60 and not gw.inbox_names()

    kills = rng.randint(6, 10)
    killed = 0
    for _ in range(kills):
        if finished():
            break
        started = time.time_ns()
        daemon = gw.start()
        # Kill once it is at work: a random moment after it took its first file of this run.
        wait_for(
            lambda since=started: gw.in_hand_since(since) or finished(),
            timeout=30,
            what="the daemon to take a file in hand",
            daemon=daemon,
        )
        time.sleep(rng.uniform(0.05, 0.6))  # the random moment of the crash
        daemon.kill()
        killed += 1
    print(f"killed the daemon {killed} times; {len(gw.receipt_paths())} receipts before the last start")

    daemon = gw.start()
    wait_for(finished, timeout=90, what="60 receipts and an empty inbox", daemon=daemon)
    assert daemon.terminate() == 0

    paths = gw.receipt_paths()
    assert len(paths) == 60, f"{len(paths)} receipts for 60 files"
    receipts = gw.receipts_by_name()  # every receipt validates; no file has two
    assert sorted(receipts) == names
    assert gw.inbox_names() == []
    _assert_placed_by_status(gw, receipts)
    check_receipt_chain(list(receipts.values()), head=gw.receipt_chain_head())
    status = gw.status()
    assert (
        status["files"].keys()
        - {"done:accepted", "done:partially-accepted", "done:rejected", "done:duplicate"}
    ) == set(), status["files"]
    assert sum(status["files"].values()) == 60 and status["in_progress"] == [], status
    quarantined = [name for name, receipt in receipts.items() if "F08" in receipt.file_codes]
    for name in quarantined:  # a file killed 3 times may end there, with its one receipt
        assert receipts[name].status == "Underkand"
    print(f"quarantined: {quarantined}")
    assert gw.hidden_files(gw.receipts) == [], "temporary receipts left behind"

    # Every accepted case exactly once in what is delivered, and nothing else.
    gw.cli("journal", "seal")
    gw.cli("journal", "send")
    (journal_file,) = gw.journal_files()
    accepted = Counter(ref for receipt in receipts.values() for ref in receipt.accepted_references)
    delivered = Counter(parse_journal(journal_file).references)
    assert delivered == accepted
    assert max(delivered.values()) == 1
    audit = gw.audit()  # every receipt, original and the sent journal where the store says
    assert audit.returncode == 0, audit.stdout + audit.stderr


# -- 5. kill -9 during delivery ----------------------------------------------------------------------

SECOND_CLIENT = ("lst-andra", agency_orgnr(2), "Länsstyrelsen i Andra län")


def _sealed_journals(gw: Gateway, rounds: int, per_file: int) -> None:
    """``rounds`` sealed journals for each client: a file each, `run --once`, `journal seal`."""
    for round_ in range(rounds):
        for c, (client_id, orgnr, _) in enumerate(gw.clients):
            specs = cases(f"D{round_}{c}", per_file)
            drop(gw.inbox, f"{client_id}-{round_}.xml", case_file(f"DEL-{round_}-{c}", specs, orgnr=orgnr))
        once = gw.start(once=True)
        assert once.proc.wait(timeout=60) == 0, tail(once.stderr())
        assert gw.inbox_names() == []
        gw.cli("journal", "seal")


def _assert_delivered_exactly_once(gw: Gateway, expected_journals: int) -> None:
    listed = gw.journals_listed()
    assert [j["state"] for j in listed] == ["delivered"] * expected_journals, listed
    for client_id, _, _ in gw.clients:
        numbers = sorted(int(j["sequence"]) for j in listed if j["client"] == client_id)
        assert numbers == list(range(1, len(numbers) + 1)), f"{client_id}: numbers {numbers}"
    names = sorted(str(j["file_name"]) for j in listed)
    assert [p.name for p in gw.journal_files()] == names, "one file per journal in outbox/journals"
    assert gw.hidden_files(gw.journals, gw.sent, gw.journal_receipts) == [], "temporary files left behind"
    receipts = gw.receipts_by_name().values()
    accepted = Counter(ref for receipt in receipts for ref in receipt.accepted_references)
    delivered: Counter[str] = Counter()
    for entry in listed:
        name = str(entry["file_name"])
        path = gw.journals / name
        assert path.read_bytes() == (gw.sent / name).read_bytes(), f"{name} differs from var/sent/"
        journal = parse_journal(path)
        assert journal.sequence == entry["sequence"]
        delivered.update(journal.references)
        receipt = parse_journal_receipt(gw.journal_receipts / f"{name}.kvittens.xml")
        assert receipt["sha256"] == entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert receipt["references"] == journal.references
    assert sorted(p.name for p in gw.journal_receipts.iterdir()) == [f"{n}.kvittens.xml" for n in names]
    assert delivered == accepted, "every accepted case in exactly one delivered journal"


@pytest.mark.slow
def test_kill_9_at_random_moments_during_delivery_delivers_each_journal_once(
    make_gateway: MakeGateway,
) -> None:
    rng = random.Random(_seed())
    gw = make_gateway(review="manual", clients=(MAIN_CLIENT, SECOND_CLIENT))
    _sealed_journals(gw, rounds=2, per_file=2000)
    for journal in gw.journals_listed():
        assert journal["state"] == "sealed"
        gw.cli("journal", "approve", str(journal["journal_id"]), "--by", "Testa Granskare")

    delivered = 0
    for round_ in range(rng.randint(6, 9)):
        if delivered == 4:
            break
        kind = "journal send" if round_ % 2 == 0 else "daemon"
        process = gw.start_command("journal", "send") if kind == "journal send" else gw.start()
        delay = rng.uniform(0.2, 0.8)  # start-up takes ~0.25 s, each journal ~0.15 s
        time.sleep(delay)  # the random moment of the crash
        process.kill()
        delivered = gw.delivered_journals()
        print(
            f"killed {kind} after {delay:.2f} s: {delivered} delivered, {len(gw.hidden_files(gw.journals))} temp"
        )
    print(f"{delivered} of 4 journals delivered before the last start")

    stuck = _restart_and_deliver(gw, journals=4)
    _assert_delivered_exactly_once(gw, expected_journals=4)
    assert not stuck, (
        f"journals {stuck} were not delivered within 10 s of a restart after a crash mid-delivery "
        "(their delivery lease outlives the killed process)"
    )


def _journal_receipt_count(gw: Gateway) -> int:
    folder = gw.journal_receipts
    return sum(1 for p in folder.iterdir() if p.name.endswith(".kvittens.xml")) if folder.exists() else 0


def _restart_and_deliver(gw: Gateway, *, journals: int) -> list[str]:
    """Restart the daemon ("a crash repeats from step 1 at the next start") and let it deliver.

    Returns the journals it did not deliver within 10 s, after sending those with `journal send ID`
    (the operator's way out, which releases the lease) so that the rest can still be checked.
    """
    daemon = gw.start()
    with contextlib.suppress(AssertionError):  # a timeout is reported by the caller, after the checks
        # A journal receipt is written just before its journal counts as delivered: only once
        # every one is there is it worth asking the command line.
        wait_for(
            lambda: _journal_receipt_count(gw) >= journals and gw.delivered_journals() == journals,
            timeout=10,
            what="every journal delivered after a restart",
            daemon=daemon,
        )
    assert daemon.terminate() == 0
    stuck = [str(j["journal_id"]) for j in gw.journals_listed() if j["state"] != "delivered"]
    for journal_id in stuck:
        gw.cli("journal", "send", journal_id)
    return stuck


@pytest.mark.slow
@pytest.mark.parametrize(
    "folder", ["sent", "journals"], ids=["while-building-in-var-sent", "while-copying-to-the-destination"]
)
def test_a_journal_whose_delivery_was_killed_is_delivered_once_at_the_next_start(
    make_gateway: MakeGateway, folder: str
) -> None:
    gw = make_gateway()
    _sealed_journals(gw, rounds=1, per_file=4000)
    watched = gw.sent if folder == "sent" else gw.journals
    sender = gw.start_command("journal", "send")
    # Kill -9 the moment a temporary file appears: in var/sent/ (the journal being built) or in
    # outbox/journals/ (the copy to the destination). Either way the delivery lease is taken.
    wait_for(
        lambda: watched.exists() and any(p.name.startswith(".") for p in watched.iterdir()),
        timeout=20,
        what=f"a temporary file in {watched}",
        interval=0,
    )
    sender.kill()
    assert [p.name for p in gw.journal_files()] == []
    plain_send = gw.cli("journal", "send", check=False)

    stuck = _restart_and_deliver(gw, journals=1)
    _assert_delivered_exactly_once(gw, expected_journals=1)
    assert not stuck, (
        f"{stuck} was not delivered within 10 s of a restart after `journal send` was killed "
        f"mid-delivery; a plain `journal send` after the crash said {plain_send.stdout.strip()!r}"
    )


# -- 6. poison files ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_file_that_kills_the_daemon_is_quarantined_at_the_fourth_start(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    for n in range(3):
        drop(gw.inbox, f"good-{n}.xml", case_file(f"GOOD-{n}", cases(f"G{n}", 2)))
    drop(gw.inbox, "poison.xml", case_file("POISON-1", cases("P", 2)))
    fault = {"GATEWAY_TEST_FAULT": "exit:poison"}

    deaths = 0
    for _ in range(4):
        daemon = gw.start(env=fault)
        wait_for(
            lambda d=daemon: not d.alive() or any(gw.quarantine.glob("*-poison.xml")),
            timeout=30,
            what="the daemon to die on the poison file or quarantine it",
        )
        if not daemon.alive():
            assert daemon.proc.returncode == 70, tail(daemon.stderr())
            deaths += 1
            continue
        break
    assert deaths == 3, f"the daemon died {deaths} times; it should die 3 times, then quarantine"
    assert daemon.alive(), "the fourth start should survive"
    wait_for(
        lambda: len(gw.receipt_paths()) == 4 and not gw.inbox_names(),
        timeout=20,
        what="every receipt",
        daemon=daemon,
    )
    assert daemon.terminate() == 0
    _assert_poison_quarantined(gw, reason="stopped")


@pytest.mark.slow
def test_a_file_that_raises_is_quarantined_after_3_attempts_without_a_restart(
    make_gateway: MakeGateway,
) -> None:
    gw = make_gateway()
    for n in range(3):
        drop(gw.inbox, f"good-{n}.xml", case_file(f"GOOD-{n}", cases(f"G{n}", 2)))
    drop(gw.inbox, "poison.xml", case_file("POISON-1", cases("P", 2)))
    daemon = gw.start(env={"GATEWAY_TEST_FAULT": "raise:poison"})
    wait_for(
        lambda: len(gw.receipt_paths()) == 4 and not gw.inbox_names(),
        timeout=30,
        what="every receipt",
        daemon=daemon,
    )
    assert daemon.alive()
    failures = [line for line in gw.trace("poison.xml").splitlines() if "file-failed: " in line]
    assert len(failures) == 3, "three attempts, each a failure in the file's history"
    assert daemon.terminate() == 0
    _assert_poison_quarantined(gw, reason="RuntimeError: injected fault for poison.xml")


def _assert_poison_quarantined(gw: Gateway, *, reason: str) -> None:
    (quarantined,) = gw.placed(gw.quarantine)
    assert re.fullmatch(r"\d+-poison\.xml", quarantined.name), quarantined.name
    reason_file = quarantined.with_name(quarantined.name + ".reason.txt")
    assert reason_file.exists()
    assert reason in reason_file.read_text(encoding="utf-8")
    receipts = gw.receipts_by_name()
    assert receipts["poison.xml"].status == "Underkand"
    assert receipts["poison.xml"].file_codes == ["F08"]
    assert {receipts[f"good-{n}.xml"].status for n in range(3)} == {"Godkand"}
    _assert_placed_by_status(gw, receipts)
    check_receipt_chain(list(receipts.values()))
    assert gw.cases_in_journals() == 6, "the good files' cases, none of the poison's"


# -- 7. manual review --------------------------------------------------------------------------------


def test_a_journal_under_manual_review_is_sent_only_once_approved(make_gateway: MakeGateway) -> None:
    gw = make_gateway(review="manual")
    daemon = gw.start()
    drop(gw.inbox, "review.xml", case_file("REVIEW-1", cases("REV", 3)))
    wait_for(lambda: gw.receipt_for("review.xml"), timeout=20, what="the receipt", daemon=daemon)

    sealed = gw.cli("journal", "seal")
    assert "waits for approval" in sealed.stdout, sealed.stdout
    (journal,) = gw.journals_listed()
    assert journal["state"] == "sealed"
    sent = gw.cli("journal", "send")
    assert "nothing to send" in sent.stdout, sent.stdout
    # One more file through the daemon proves it has been round its loop (and its delivery step).
    drop(gw.inbox, "later.xml", case_file("REVIEW-2", cases("REVLATER", 1)))
    wait_for(lambda: gw.receipt_for("later.xml"), timeout=20, what="the second receipt", daemon=daemon)
    assert gw.journal_files() == []
    assert gw.journals_listed()[0]["state"] == "sealed"

    approved = gw.cli("journal", "approve", str(journal["journal_id"]), "--by", "Karin Granskare")
    assert "approved" in approved.stdout
    # Right after the approval the daemon may be delivering this very journal: `send` waits for
    # it and tells the outcome (exit 0), never "not now" (exit 1).
    sent = gw.cli("journal", "send", str(journal["journal_id"]))
    assert sent.stdout.startswith(f"{journal['journal_id']} lst-exempel-000001.xml: delivered"), sent.stdout
    path = gw.journals / "lst-exempel-000001.xml"
    wait_for(path.exists, timeout=20, what="the approved journal delivered", daemon=daemon)
    delivered = parse_journal(path)
    assert delivered.approved_by == "Karin Granskare"
    assert sorted(delivered.references) == ["REV-000000", "REV-000001", "REV-000002"]
    assert gw.journal_files() == [path]
    assert daemon.terminate() == 0


# -- 8. SIGTERM mid-file, and privacy of the log -----------------------------------------------------


@pytest.mark.slow
def test_sigterm_during_a_big_file_finishes_it_and_exits_0(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    started = time.time_ns()
    daemon = gw.start()
    big = cases("BIG", 20_000, identities=EXAMPLE_PERSONNUMMER)
    drop(gw.inbox, "big.xml", case_file("BIG-1", big))
    wait_for(
        lambda: gw.in_hand_since(started),
        timeout=30,
        what="big.xml taken in hand",
        daemon=daemon,
        interval=0.01,
    )
    daemon.send_sigterm()
    # No receipt yet once the signal is sent: it came while big.xml was in hand.
    assert gw.receipt_for("big.xml") is None, "big.xml was finished before SIGTERM: nothing was tested"
    code = daemon.wait(timeout=90)
    log = daemon.stderr()
    assert code == 0, tail(log)
    receipt = gw.receipt_for("big.xml")
    assert receipt is not None, tail(log)
    assert (receipt.status, receipt.accepted) == ("Godkand", 20_000)
    assert gw.inbox_names() == []
    assert [p.name.partition("-")[2] for p in gw.placed(gw.archive)] == ["big.xml"]
    assert gw.cases_in_journals() == 20_000
    _assert_no_full_identities(log)


def test_a_personnummer_in_a_file_name_is_masked_in_the_log(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    daemon = gw.start()
    names = ["850315-9819.xml", "kund-880921-9853.xml", "faktura-198211099869.xml"]
    for n, name in enumerate(names):
        drop(gw.inbox, name, case_file(f"NAMED-{n}", cases(f"NM{n}", 1)))
    wait_for(lambda: len(gw.receipt_paths()) == 3, timeout=20, what="the receipts", daemon=daemon)
    assert daemon.terminate() == 0
    log = daemon.stderr()
    _assert_no_full_identities(log)
    # Each file is named in the log all the same: its birth date kept, the last four digits hidden.
    for identity in EXAMPLE_PERSONNUMMER:
        assert f"{identity[:6]}-XXXX" in log, f"{identity[:6]}-XXXX is not in the log"
    # Masking must not eat other numbers: each file's SHA-256 prefix is logged as it is.
    for receipt in gw.receipts_by_name().values():
        assert receipt.file_sha256[:12] in log, (receipt.name, receipt.file_sha256[:12])


# -- 9. withdrawal -----------------------------------------------------------------------------------


def test_a_withdrawn_case_is_left_out_of_the_delivered_journal(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    daemon = gw.start()
    drop(gw.inbox, "w.xml", case_file("WITHDRAW-1", cases("WD", 3)))
    receipt = wait_for(lambda: gw.receipt_for("w.xml"), timeout=20, what="the receipt", daemon=daemon)
    assert receipt.accepted == 3
    (before,) = gw.journals_listed()

    withdrawn = gw.cli(
        "journal",
        "withdraw",
        "WD-000001",
        "--reason",
        "Betald direkt till myndigheten",
        "--by",
        "Olle Handläggare",
    )
    assert "withdrew case WD-000001" in withdrawn.stdout, withdrawn.stdout
    (after,) = gw.journals_listed()
    assert (before["cases"], after["cases"]) == (3, 2)
    assert Decimal(str(after["capital"])) == Decimal(str(before["capital"])) - cases("WD", 3)[1].amount
    # Who withdrew it and why stay in the case's history.
    history = gw.trace("WD-000001")
    assert "Olle Handläggare" in history and "Betald direkt till myndigheten" in history, history

    gw.cli("journal", "seal")
    sent = gw.cli("journal", "send", str(before["journal_id"]))
    assert sent.stdout.startswith(f"{before['journal_id']} lst-exempel-000001.xml: delivered"), sent.stdout
    path = gw.journals / "lst-exempel-000001.xml"
    wait_for(path.exists, timeout=20, what="the journal delivered", daemon=daemon)
    journal = parse_journal(path)
    assert journal.references == ["WD-000000", "WD-000002"]
    assert journal.case_count == 2
    specs = cases("WD", 3)
    assert journal.capital == specs[0].amount + specs[2].amount
    receipt_of_journal = parse_journal_receipt(gw.journal_receipts / "lst-exempel-000001.xml.kvittens.xml")
    assert receipt_of_journal["references"] == ["WD-000000", "WD-000002"]
    (listed,) = gw.journals_listed()
    assert (listed["state"], listed["cases"]) == ("delivered", 2)
    assert daemon.terminate() == 0
