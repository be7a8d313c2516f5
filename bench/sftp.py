"""SFTP benchmark: the gateway's adapters against OpenSSH's own `sftp -b` on the same server.

Starts a real sshd on 127.0.0.1 (tests/sshd_server.py; needs root and openssh-server), then, in the
same run, downloads and uploads one 50 MB file and 500 small files (a) with the gateway's SFTP
code (paramiko with TCP_NODELAY and prefetch) and (b) with `sftp -b`; prints medians and ratios
(target: at most 1.5 for the large file). A benchmark, never a test.

    .venv/bin/python bench/sftp.py [--size-mb 50] [--files 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gateway.adapters.sftp import Endpoint, connect  # noqa: E402
from tests.sshd_server import SshServer, start_sshd  # noqa: E402


def timed(action: Callable[[], None], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def openssh(server: SshServer, batch: str, workdir: Path) -> None:
    script = workdir / "batch.txt"
    script.write_text(batch, encoding="utf-8")
    subprocess.run(
        [
            "sftp", "-q", "-b", str(script), "-i", str(server.key_file), "-P", str(server.port),
            "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", f"{server.username}@{server.host}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="inkasso-sftp-bench-"))
    server = start_sshd(workdir)
    try:
        endpoint = Endpoint(
            server.host, server.port, server.username, server.key_file, server.known_hosts, str(server.root)
        )
        remote = server.mkdir("bench")
        big = workdir / "big.bin"
        big.write_bytes(os.urandom(args.size_mb * 1024 * 1024))
        small = workdir / "small"
        small.mkdir()
        for number in range(args.files):
            (small / f"f{number:04d}.xml").write_bytes(os.urandom(3000))
        down = workdir / "down"
        down.mkdir()

        def gateway_upload_big() -> None:
            with connect(endpoint) as sftp:
                sftp.put(str(big), f"{remote}/big.bin", confirm=True)

        def gateway_download_big() -> None:
            with connect(endpoint) as sftp, sftp.open(f"{remote}/big.bin", "rb") as source:
                source.prefetch(big.stat().st_size)
                with (down / "big.bin").open("wb") as out:
                    while chunk := source.read(1024 * 1024):
                        out.write(chunk)

        def gateway_upload_small() -> None:
            with connect(endpoint) as sftp:
                for path in sorted(small.iterdir()):
                    sftp.put(str(path), f"{remote}/{path.name}", confirm=True)

        def gateway_download_small() -> None:
            with connect(endpoint) as sftp:
                for path in sorted(small.iterdir()):
                    sftp.get(f"{remote}/{path.name}", str(down / path.name))

        rows = [
            (f"upload 1 x {args.size_mb} MB", gateway_upload_big, f"put {big} {remote}/big.bin\n"),
            (
                f"download 1 x {args.size_mb} MB",
                gateway_download_big,
                f"get {remote}/big.bin {down}/big.bin\n",
            ),
            (f"upload {args.files} small", gateway_upload_small, f"put {small}/* {remote}/\n"),
            (f"download {args.files} small", gateway_download_small, f"get {remote}/f*.xml {down}/\n"),
        ]
        print(f"sftp benchmark: sshd on {server.host}:{server.port}, {args.repeat} rounds, medians")
        print(f"{'':24} {'gateway s':>10} {'sftp -b s':>10} {'ratio':>7}")
        for label, ours, batch in rows:
            mine = timed(ours, args.repeat)
            theirs = timed(lambda batch=batch: openssh(server, batch, workdir), args.repeat)  # type: ignore[misc]
            print(f"{label:24} {mine:10.2f} {theirs:10.2f} {mine / theirs:7.2f}")
        print("target: ratio at most 1.5 for the large file")
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
