"""Make docs/report.png, the README's picture of a report: a week of traffic through the real
intake and journal code (in-process, with a clock that walks through the week), the report of that
week, and a headless-Chromium screenshot of its top. Run from the repository: `make screenshot`.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from intake import unique_example  # noqa: E402
from PIL import Image  # noqa: E402

from gateway.accounting.reports.build import build_report, write_report  # noqa: E402
from tests.chromium import screenshot  # noqa: E402
from tests.test_reports import MIXED, NOT_XML, UNKNOWN_CLIENT, Day  # noqa: E402

WEEK = [date(2026, 11, 23) + timedelta(days=n) for n in range(5)]
VALID_PER_DAY = (4, 7, 3, 6, 5)
CROP_HEIGHT = 1750


def main() -> None:
    target = REPO / "docs" / "report.png"
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "gw").mkdir()
        day = Day(work / "gw")
        for number, today in enumerate(WEEK):
            day.moment = datetime.combine(today, datetime.min.time(), tzinfo=UTC) + timedelta(hours=5)
            files = []
            for index in range(VALID_PER_DAY[number]):
                path = work / f"export-{today}-{index}.xml"
                path.write_text(unique_example(f"{number}{index}"), encoding="utf-8")
                files.append(path)
            if number in (0, 2):  # the same mixed file twice: partly accepted, then a duplicate
                files.append(MIXED)
            if number in (1, 3):
                files += [UNKNOWN_CLIENT, NOT_XML]
            day.drop_and_process(*files)
            day.moment += timedelta(hours=9)
            if today == WEEK[-1]:
                day.store.seal_journals(now=day.clock(), client_ids=None, manual_review=True)
            else:
                day.seal_and_deliver()
        now = datetime.combine(WEEK[-1], datetime.min.time(), tzinfo=UTC) + timedelta(hours=17)
        report = build_report(
            day.store, day.config, period_from=WEEK[0], period_to=WEEK[-1], client=None, now=now
        )
        html = write_report(report, day.folders.reports)[0]
        shutil.copyfile(html, work / "report.html")
        png = work / "report.png"
        screenshot(work / "report.html", png, width=1280, height=CROP_HEIGHT)
        with Image.open(png) as image:
            image.convert("P", palette=Image.Palette.ADAPTIVE, colors=128).save(target, optimize=True)
    print(f"{target}: {target.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
