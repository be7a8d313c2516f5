"""A throwaway PostgreSQL cluster for tests: Debian's server binaries, `initdb` and `pg_ctl` run as
the `postgres` user when the tests run as root (both refuse root), on a free TCP port on 127.0.0.1
and a Unix socket in a temporary folder. Stopped (and its folder removed) by the test that started it.

`make test` installs Debian's postgresql package when it is missing; outside CI a test that needs
it is skipped with the reason, in CI it fails instead.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system import IN_CI

#: The password of the test cluster's superuser over TCP (the socket trusts local users).
PASSWORD = "gateway-test-password"


def server_binaries() -> Path | None:
    """The folder of initdb and pg_ctl: Debian keeps them out of PATH, per major version."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


needs_postgres = pytest.mark.skipif(
    server_binaries() is None and not IN_CI,
    reason="PostgreSQL's server is missing (make test installs Debian's postgresql package)",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One cluster. ``url(database)`` is a libpq URL over TCP with the password in ``PGPASSWORD``
    style left out: the caller passes it the way the gateway's users do (environment or pgpass)."""

    def __init__(self) -> None:
        binaries = server_binaries()
        if binaries is None:
            raise RuntimeError("PostgreSQL's initdb is missing (make test installs Debian's postgresql)")
        self._bin = binaries
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="gw-postgres-"))
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "socket"
        self._as_root = os.geteuid() == 0
        self.user = "postgres"

    # -- running the server's tools as the right user ---------------------------------------------

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self._bin / command[0]), *command[1:]]
        if self._as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def start(self) -> PostgresServer:
        self.socket_dir.mkdir(parents=True)
        password_file = self.folder / "password"
        password_file.write_text(PASSWORD + "\n", encoding="utf-8")
        if self._as_root:
            account = pwd.getpwnam("postgres")
            for path in (self.folder, self.socket_dir, password_file):
                os.chown(path, account.pw_uid, account.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", self.user, "--pwfile", str(password_file),
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--encoding=UTF8",
            "--locale=C.UTF-8",
        )  # fmt: skip
        password_file.unlink()
        self.resume()
        return self

    def resume(self) -> None:
        """Start (or start again after :meth:`pause`) on the same port."""
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "start",
        )

    def pause(self) -> None:
        """Stop the server (every connection is cut), keeping its data for :meth:`resume`."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- using it -------------------------------------------------------------------------------------

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        result = self._run(
            "psql", "-X", "-q", "-A", "-t", "-h", str(self.socket_dir), "-p", str(self.port),
            "-U", self.user, "-d", database, "-v", "ON_ERROR_STOP=1", "-c", sql,
        )  # fmt: skip
        return result.stdout.strip()

    def new_database(self) -> str:
        """A new, empty database with a name of its own; its URL."""
        return self.create_database(f"gateway_{os.getpid()}_{next(_numbers)}")

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL (the password is not in it)."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / "server.log").read_text(encoding="utf-8", errors="replace")
        return ""


_numbers = itertools.count(1)


@contextlib.contextmanager
def password_in_environment() -> Iterator[None]:
    """The cluster's password where libpq looks for it (``PGPASSWORD``), for this process and
    the commands it starts, as the gateway's users give it."""
    previous = os.environ.get("PGPASSWORD")
    os.environ["PGPASSWORD"] = PASSWORD
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = previous


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One cluster for the session (each test makes its own database: ``new_database()``), its
    password in the environment while it runs."""
    with postgres_server() as server, password_in_environment():
        yield server


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


def wait_until_accepting(server: PostgresServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(RuntimeError):
            server.psql("SELECT 1")
            return
        time.sleep(0.2)
    raise RuntimeError("PostgreSQL did not accept connections")
