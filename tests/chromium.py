"""Screenshots of a local HTML file with Debian's headless Chromium, for tests (and README images).

``screenshot(html, png)`` renders ``file://<html>`` at a fixed window size and writes a PNG. It runs
as root here and in CI, where Chromium's sandbox cannot start: hence ``--no-sandbox``. Chromium
prints harmless noise on stderr (D-Bus, GPU, fonts); only the exit code and the PNG count.

``make test`` installs Chromium when missing (``make chromium``); without it :func:`screenshot`
raises, so the screenshot tests fail rather than skip.

Also runnable: ``python -m tests.chromium page.html page.png [width height]``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: Names the browser goes by (Debian: chromium; others: chromium-browser, google-chrome).
BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT = 120.0


def find_chromium() -> str:
    """The path of the Chromium (or Chrome) binary; ``FileNotFoundError`` with the fix when none."""
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("no chromium on PATH: run `make chromium` (apt-get install chromium)")


def screenshot(html: Path, png: Path, *, width: int = 1280, height: int = 2400) -> None:
    """Render ``html`` in headless Chromium at ``width`` x ``height`` CSS pixels into ``png``."""
    png.unlink(missing_ok=True)
    # A profile of its own each time: two runs at once (pytest -n, a developer's browser) would
    # otherwise fight over the profile lock.
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            find_chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
            "--hide-scrollbars",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            # Exact colours and pixels: the tests count pixels of the chart palette.
            "--force-color-profile=srgb",
            "--force-device-scale-factor=1",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png.resolve()}",
            html.resolve().as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if result.returncode != 0 or not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(
            f"chromium exited {result.returncode} without a screenshot:\n{result.stderr[-4000:]}"
        )


if __name__ == "__main__":
    size = [int(n) for n in sys.argv[3:5]] or [1280, 2400]
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]), width=size[0], height=size[1])
