"""Installed as the README says, used as an operator, an ERP and an auditor would: deploy/install.sh
run for real (the service user, /opt, /etc, the data folder), the daemon started with the unit's own
commands as the unit's user, an ERP account writing into the group inbox, `status` before and after
a stop, a backup restored in place and audited elsewhere by a user who may only read it.

This changes the machine (users, /opt/inkasso-gateway, /etc/inkasso-gateway, /var/lib/inkasso-gateway),
so it runs only in CI (a fresh machine, as root) or when INKASSO_INSTALL_TEST is set, and it refuses
to touch an installation it did not make. systemd is not running in CI: the test does what the unit
asks of systemd (the user, the umask, the working and state directory) and runs its ExecStartPre and
ExecStart lines as written.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.system import IN_CI, IS_ROOT

PREFIX = Path("/opt/inkasso-gateway")
CONFIG_DIR = Path("/etc/inkasso-gateway")
DATA_DIR = Path("/var/lib/inkasso-gateway")
UNIT = Path("/etc/systemd/system/inkasso-gateway.service")
COMMAND = str(PREFIX / "bin" / "inkasso-gateway")
SERVICE_USER = "inkasso"
ERP_ACCOUNT = "inkassotest-transfer"
AUDITOR = "inkassotest-auditor"
AUDITORS = "inkassotest-auditors"
SHIPPED_CHECK = PREFIX / "share" / "doc" / "inkasso-gateway" / "verify_receipts.py"
EXAMPLE = REPO / "examples" / "lst-exempel-2026-11-24.xml"
#: The ERP's export, where its account can read it.
EXPORT = Path("/tmp/inkasso-install-test.xml")

pytestmark = [
    pytest.mark.root,
    pytest.mark.process,
    pytest.mark.skipif(
        not (IN_CI or os.environ.get("INKASSO_INSTALL_TEST")),
        reason="installs the gateway into /opt, /etc and /var/lib: runs in CI or with INKASSO_INSTALL_TEST=1",
    ),
]


def _run(*command: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def _as(user: str, *command: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """A command as ``user``, from a folder every user may enter."""
    return _run("runuser", "-u", user, "--", *command, check=check, cwd=Path("/"))


def _user(name: str, *, groups: tuple[str, ...] = ()) -> None:
    for group in groups:
        _run("groupadd", "-f", "--system", group)
    try:
        pwd.getpwnam(name)
    except KeyError:
        extra = ["--groups", ",".join(groups)] if groups else []
        _run("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", *extra, name)  # fmt: skip


class Unit:
    """What systemd does with the installed unit, done by hand: StateDirectory= (owned by User=,
    StateDirectoryMode=), then ExecStartPre= and ExecStart= as User= with UMask= in
    WorkingDirectory=."""

    def __init__(self, path: Path) -> None:
        self.settings: dict[str, list[str]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                self.settings.setdefault(key.strip(), []).append(value.strip())
        self.process: subprocess.Popen[str] | None = None
        self.log = Path("/tmp/inkasso-gateway-install-test.log")

    def _one(self, key: str) -> str:
        (value,) = self.settings[key]
        return value

    def _shell(self, command: str) -> list[str]:
        return [
            "runuser", "-u", self._one("User"), "--", "sh", "-c",
            f"umask {self._one('UMask')}; cd {self._one('WorkingDirectory')} && exec {command}",
        ]  # fmt: skip

    def start(self) -> None:
        state = Path("/var/lib") / self._one("StateDirectory")
        state.mkdir(exist_ok=True)
        account = pwd.getpwnam(self._one("User"))
        os.chown(state, account.pw_uid, account.pw_gid)
        state.chmod(int(self._one("StateDirectoryMode"), 8))
        for command in self.settings["ExecStartPre"]:
            _run(*self._shell(command))
        with self.log.open("a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                self._shell(self._one("ExecStart")), stdout=log, stderr=subprocess.STDOUT, text=True
            )
        deadline = time.monotonic() + 30
        while _as(SERVICE_USER, COMMAND, "status").returncode != 0:
            assert self.process.poll() is None, self.log.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, "the daemon did not come up"
            time.sleep(0.3)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # systemd sends KillSignal= to the daemon (status names its pid); runuser then ends with it.
            facts = json.loads(_as(SERVICE_USER, COMMAND, "status", "--format", "json").stdout)
            assert self._one("KillSignal") == "SIGTERM"
            os.kill(facts["daemon"]["pid"], signal.SIGTERM)
            assert self.process.wait(timeout=int(self._one("TimeoutStopSec"))) == 0
        self.process = None


def _wait_for(predicate: object, what: str, timeout: float = 30.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _receipts(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "outbox" / "receipts").rglob("*.kvittens.xml"))


def _remove_installation() -> None:
    for path in (PREFIX, CONFIG_DIR, DATA_DIR, Path("/var/lib/inkasso-gateway.before-restore")):
        shutil.rmtree(path, ignore_errors=True)
    UNIT.unlink(missing_ok=True)


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[Unit]:
    assert IS_ROOT, "the install test runs as root (CI does)"
    for path in (PREFIX, CONFIG_DIR, DATA_DIR, UNIT):
        assert not path.exists(), f"{path} exists: this test installs only where nothing was installed"
    # From a copy of the checkout, so that pip's build leaves nothing in the repository.
    checkout = tmp_path / "checkout"
    files = _run("git", "-C", str(REPO), "ls-files", "-z").stdout.split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name)
    try:
        _run("sh", "deploy/install.sh", cwd=checkout)
        unit = Unit(UNIT)
        yield unit
        unit.stop()
    finally:
        _remove_installation()


def test_installed_as_a_service_used_by_an_erp_backed_up_restored_and_audited(installed: Unit) -> None:
    # The install created the service user, who can run the installed command, and a
    # configuration the service user reads without --config.
    assert _as(SERVICE_USER, COMMAND, "--version").returncode == 0
    checked = _as(SERVICE_USER, COMMAND, "config", "check")
    assert checked.returncode == 0, checked.stderr
    assert str(CONFIG_DIR / "gateway.toml") in checked.stdout
    # Before the first start there is no store, and a looking command does not make one.
    assert _as(SERVICE_USER, COMMAND, "status").returncode == 2
    assert not (DATA_DIR / "var" / "gateway.db").exists()

    installed.start()
    assert _as(SERVICE_USER, COMMAND, "status").returncode == 0

    # The ERP's transfer account, in the group the sysusers file made, writes into the inbox as
    # the README says (a temporary name, renamed when complete), with its own umask.
    _user(ERP_ACCOUNT, groups=("inkasso-erp",))
    inbox = DATA_DIR / "inbox"
    assert inbox.stat().st_gid == grp.getgrnam("inkasso-erp").gr_gid
    assert inbox.stat().st_mode & 0o7777 == 0o2770
    shutil.copy(EXAMPLE, EXPORT)
    EXPORT.chmod(0o644)
    written = _as(
        ERP_ACCOUNT, "sh", "-c",
        f"umask 027; cp {EXPORT} {inbox}/.export.part && mv {inbox}/.export.part {inbox}/export.xml",
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    _wait_for(lambda: len(_receipts(DATA_DIR)) == 1, "the export's receipt")
    assert "<Status>Godkand</Status>" in _receipts(DATA_DIR)[0].read_text(encoding="utf-8")
    assert _as(ERP_ACCOUNT, "ls", "-A", str(inbox)).stdout.strip() == ""  # taken, nothing left

    assert _as(SERVICE_USER, COMMAND, "journal", "seal", "lst-exempel").returncode == 0
    assert _as(SERVICE_USER, COMMAND, "journal", "send").returncode == 0
    assert len(list((DATA_DIR / "outbox" / "journals").rglob("*.xml"))) == 1

    # A stopped daemon is not "all is well": LSB's 3.
    installed.stop()
    assert _as(SERVICE_USER, COMMAND, "status").returncode == 3

    # A backup by the service user into a folder of its own, audited by the command itself.
    backups = Path("/var/backups/inkasso-test")
    backups.mkdir(parents=True, exist_ok=True)
    os.chown(backups, pwd.getpwnam(SERVICE_USER).pw_uid, -1)
    try:
        backup = backups / "monday"
        made = _as(SERVICE_USER, COMMAND, "backup", str(backup))
        assert made.returncode == 0, made.stdout + made.stderr
        assert all(path.stat().st_mode & 0o077 == 0 for path in [backup, *backup.rglob("*")]), (
            "a backup is owner-only"
        )

        # An auditor, who may only read a copy handed to them, checks it there.
        _user(AUDITOR, groups=(AUDITORS,))
        copy = Path("/srv/inkasso-test-audit")
        shutil.rmtree(copy, ignore_errors=True)
        _run("cp", "-a", str(backup), str(copy))
        _run("chgrp", "-R", AUDITORS, str(copy))
        _run("chmod", "-R", "g+rX,g-w", str(copy))
        try:
            audit = [COMMAND, "audit", "verify", "--config", f"{copy}/gateway.toml", "--data-dir", str(copy)]
            verified = _as(AUDITOR, *audit)
            assert verified.returncode == 0, verified.stdout + verified.stderr
            report = _as(AUDITOR, COMMAND, "report", "--no-write", "--config", f"{copy}/gateway.toml",
                         "--data-dir", str(copy))  # fmt: skip
            assert report.returncode == 0, report.stdout + report.stderr
            assert "Everything accounted for" in report.stdout
            chain = _as(AUDITOR, "/usr/bin/python3", str(SHIPPED_CHECK), f"{copy}/outbox/receipts")
            assert chain.returncode == 0, chain.stdout + chain.stderr
            original = next((copy / "var" / "archive").rglob("*-export.xml"))
            with original.open("r+b") as handle:
                handle.seek(100)
                handle.write(b"X")
            broken = _as(AUDITOR, *audit)
            assert broken.returncode == 1
            assert "original-altered" in broken.stdout and original.name in broken.stdout
        finally:
            shutil.rmtree(copy, ignore_errors=True)

        # Restore, as the README says: the data folder moved aside, the backup in its place.
        DATA_DIR.rename("/var/lib/inkasso-gateway.before-restore")
        _run("cp", "-a", str(backup), str(DATA_DIR))
        installed.start()
        assert inbox.stat().st_mode & 0o7777 == 0o2770  # the group inbox is made again
        again = _as(
            ERP_ACCOUNT, "sh", "-c",
            f"sed s/LST-EXEMPEL-20261124-01/LST-EXEMPEL-20261124-02/ {EXPORT}"
            f" > {inbox}/.next.part && mv {inbox}/.next.part {inbox}/next.xml",
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        _wait_for(lambda: len(_receipts(DATA_DIR)) == 2, "the receipt of a file after the restore")
        # The chain goes on from the restored one (the audit counts a file once it is done).
        _wait_for(
            lambda: (
                "2 receipt(s) in an unbroken chain" in _as(SERVICE_USER, COMMAND, "audit", "verify").stdout
            ),
            "the audit to pass over both receipts",
        )
    finally:
        shutil.rmtree(backups, ignore_errors=True)
        EXPORT.unlink(missing_ok=True)
