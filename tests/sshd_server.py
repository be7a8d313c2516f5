"""A real OpenSSH sshd on 127.0.0.1 for tests of the SFTP client.

:func:`start_sshd` generates a host key and a client key (ed25519, no passphrase) in a work folder,
writes an ``sshd_config`` and starts Debian's ``/usr/sbin/sshd -D -e -f CONFIG`` on a free port.
The client logs in as a dedicated local user (:data:`USERNAME`, created with ``useradd`` when
missing) whose home directory, outside /tmp, is what the client sees as its login directory.
There is no ChrootDirectory: sshd refuses a chroot under a world-writable parent such as /tmp.

sshd needs root, so these tests need root (as here and in CI); without it :func:`start_sshd` raises.

Use the :func:`sshd` fixture: ``from tests.sshd_server import sshd  # noqa: F401``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"
USERNAME = "inkassotest"
#: The test user's home directory = the client's login directory. Not under /tmp (see module doc).
HOME = Path("/var/lib/inkassotest-sftp")
#: Root-owned folder for the authorized_keys files: the user must be able to read them, and the
#: pytest work folders (mode 0700, root) are not readable by the user.
AUTH_DIR = Path("/var/lib/inkassotest-sftp-auth")
START_TIMEOUT = 10.0


def _require_root() -> None:
    if os.geteuid() != 0:
        raise RuntimeError(
            "tests/sshd_server.py starts a real sshd and creates a local user: it must run as root"
        )


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")


def _ensure_user() -> pwd.struct_passwd:
    """Create the test user when missing, unlock it, and make sure its home exists and is its own."""
    try:
        entry = pwd.getpwnam(USERNAME)
    except KeyError:
        _run(
            "useradd",
            "--system",
            "--no-create-home",
            "--home-dir",
            str(HOME),
            "--shell",
            "/usr/sbin/nologin",
            USERNAME,
        )
        entry = pwd.getpwnam(USERNAME)
    # A freshly added user is locked ("!" in /etc/shadow) and sshd refuses it even with a key.
    _run("usermod", "-p", "*", USERNAME)
    home = Path(entry.pw_dir)
    if home == Path("/tmp") or Path("/tmp") in home.parents:
        raise RuntimeError(f"the home of {USERNAME} is {home}; it must not be under /tmp")
    home.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    home.chmod(0o755)
    return entry


def _keygen(path: Path, comment: str) -> None:
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    _run(SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path))
    path.chmod(0o600)


def _public_key(private: Path) -> str:
    """'keytype base64' of a key pair's public half, without the comment."""
    keytype, blob = private.with_name(private.name + ".pub").read_text().split()[:2]
    return f"{keytype} {blob}"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (sshd's per-connection processes and theirs), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ..." where comm may hold spaces and parentheses.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class SshServer:
    host: str
    port: int
    username: str
    key_file: Path
    known_hosts: Path
    root: Path
    workdir: Path
    config: Path
    log_file: Path
    authorized_keys: Path
    uid: int
    gid: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host_key(self) -> Path:
        return self.workdir / "ssh_host_ed25519_key"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start sshd (again) on the same port with the same host key; wait until it accepts."""
        if self.running:
            return
        _require_root()
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        stderr_path = self.workdir / "sshd.stderr"
        with stderr_path.open("ab") as stderr:
            self.process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.config), "-E", str(self.log_file)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise RuntimeError(
                    f"sshd exited with {code} at start-up on port {self.port}:\n{self.log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"sshd did not accept connections on {self.host}:{self.port} within "
                        f"{START_TIMEOUT} s:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.02)

    def stop(self, *, drop_sessions: bool = True) -> None:
        """SIGTERM the listening sshd and wait for it; idempotent.

        SIGTERM alone leaves open connections alive (their processes outlive the listener, as on a
        real server), so by default their processes are killed first: the client sees its
        connection drop, as if the server went down. ``drop_sessions=False`` keeps them.
        """
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            if drop_sessions:
                # Deepest first, each waited for, so that its parent (still alive) reaps it and no
                # zombie is left to init.
                for pid in reversed(_descendants(process.pid)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    deadline = time.monotonic() + 2
                    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                        time.sleep(0.005)
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.process = None

    def wrong_known_hosts(self, path: Path) -> Path:
        """Write a known_hosts at ``path`` with a DIFFERENT host key for the same [host]:port."""
        other = self.workdir / "other_host_key"
        _keygen(other, "not-the-server")
        path.write_text(f"[{self.host}]:{self.port} {_public_key(other)}\n")
        return path

    def mkdir(self, relative: str) -> Path:
        """Create ``root/relative`` (with parents), every created folder owned by the user."""
        target = self.root / relative
        if self.root.resolve() not in target.resolve().parents:
            raise ValueError(f"{relative!r} is not below {self.root}")
        missing = [p for p in [target, *target.parents] if not p.exists()]
        for folder in reversed(missing):
            folder.mkdir(mode=0o755)
            os.chown(folder, self.uid, self.gid)
        return target

    def chown(self, path: Path) -> Path:
        """Give ``path`` (a file or folder a test made under root) to the user."""
        os.chown(path, self.uid, self.gid)
        return path

    def clean(self) -> None:
        """Remove everything under root (root itself stays)."""
        for entry in self.root.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def log_tail(self, lines: int = 40) -> str:
        texts = []
        for path in (self.log_file, self.workdir / "sshd.stderr"):
            if path.exists():
                texts.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(texts)

    def close(self) -> None:
        """stop(), and remove the authorized_keys file kept outside the work folder and the
        server's own folder under the user's home."""
        self.stop()
        self.authorized_keys.unlink(missing_ok=True)
        shutil.rmtree(self.root, ignore_errors=True)


def start_sshd(workdir: Path) -> SshServer:
    """Generate keys, write sshd_config in ``workdir``, start sshd on 127.0.0.1 and a free port."""
    _require_root()
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o700)
    entry = _ensure_user()
    host = "127.0.0.1"
    port = _free_port(host)

    host_key = workdir / "ssh_host_ed25519_key"
    key_file = workdir / "client_ed25519"
    _keygen(host_key, "inkassotest-sshd-host")
    _keygen(key_file, "inkassotest-client")

    AUTH_DIR.mkdir(mode=0o755, exist_ok=True)
    os.chown(AUTH_DIR, 0, 0)
    AUTH_DIR.chmod(0o755)
    authorized_keys = AUTH_DIR / f"authorized_keys-{uuid.uuid4().hex}"
    authorized_keys.write_text(_public_key(key_file) + "\n")
    os.chown(authorized_keys, 0, 0)
    authorized_keys.chmod(0o644)

    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[{host}]:{port} {_public_key(host_key)}\n")

    config = workdir / "sshd_config"
    log_file = workdir / "sshd.log"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress {host}",
                f"Port {port}",
                f"HostKey {host_key}",
                f"PidFile {workdir / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized_keys}",
                "StrictModes no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "PermitRootLogin no",
                f"AllowUsers {USERNAME}",
                "UseDNS no",
                "PrintMotd no",
                "X11Forwarding no",
                "AllowTcpForwarding no",
                "AllowAgentForwarding no",
                "PermitTTY no",
                "Subsystem sftp internal-sftp",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )

    # A folder of its own under the user's home: test runs side by side on one machine (two
    # checkouts, CI beside a developer) never see, take or clean each other's files.
    root = Path(entry.pw_dir) / f"run-{uuid.uuid4().hex[:12]}"
    root.mkdir(mode=0o755)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    server = SshServer(
        host=host,
        port=port,
        username=USERNAME,
        key_file=key_file,
        known_hosts=known_hosts,
        root=root,
        workdir=workdir,
        config=config,
        log_file=log_file,
        authorized_keys=authorized_keys,
        uid=entry.pw_uid,
        gid=entry.pw_gid,
    )
    server.clean()
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server


@pytest.fixture
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A running sshd for one test; stopped and its folder under the user's home removed afterwards."""
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.close()
