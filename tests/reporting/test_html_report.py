"""The HTML report: its sections on any lakehouse, and the page checked in a real headless browser."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess

import pytest

from fraud_mlops.lifecycle.tracking import configure_mlflow
from fraud_mlops.platform import config as C
from fraud_mlops.reporting.html_report import REPORT_TABLES, build_report, report_summary, write_report

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
SECTIONS = ["Tables", "Daily volume and fraud rate", "Quarantine", "Model versions of c.s.fraud_detector",
            "Alerts per day against the budget", "Latest monitoring"]


@pytest.fixture()
def tables(lakehouse, spark):
    configure_mlflow(lakehouse.config)
    days = [dt.date(2018, 8, 1) + dt.timedelta(days=i) for i in range(5)]
    summary = [(d, 9_500 + i, 80 + i, (80 + i) / (9_500 + i)) for i, d in enumerate(days)]
    lakehouse.overwrite(C.GOLD_DAILY_SUMMARY, spark.createDataFrame(
        summary, "tx_date date, n_transactions bigint, n_frauds bigint, fraud_rate double"))
    return lakehouse


def test_every_section_renders_before_any_model_or_monitoring(tables):
    page = build_report(tables, "c.s.fraud_detector")
    summary = report_summary(page)
    assert summary["sections"] == SECTIONS and summary["charts"] == 5
    assert "the model is not registered yet" in page and "no monitoring run yet" in page
    assert page.count("not written") == len(REPORT_TABLES) - 1  # only the daily summary exists
    name = re.escape(tables.ref(C.GOLD_DAILY_SUMMARY).full_name)
    assert re.search(rf'<td>{name}</td><td class="n">5</td>', page)


def _browser(page_path, *extra):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", *extra,
                           page_path.as_uri()], capture_output=True, text=True, timeout=120, check=False)


def _check(page_path):
    done = _browser(page_path, "--dump-dom")
    loaded = re.search(r'data-charts-loaded="(\d+)"', done.stdout)
    expected = re.search(r'data-charts-expected="(\d+)"', done.stdout)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return (int(loaded.group(1)) if loaded else None), (int(expected.group(1)) if expected else None), console


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine: install Debian's package "
                    "(sudo apt-get install chromium) to check the HTML report in a headless browser; .ci/run does")
def test_report_in_a_headless_browser(tables, tmp_path):
    path = write_report(tables, "c.s.fraud_detector", tmp_path / "report.html")
    loaded, expected, console = _check(path)
    assert (loaded, expected, console) == (5, 5, []), console
    shot = tmp_path / "report.png"
    _browser(path, "--window-size=1200,2400", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    # the check fails on a page whose chart does not load, and on a script error
    broken = tmp_path / "broken.html"
    broken.write_text(path.read_text(encoding="utf-8").replace("base64,iVBOR", "base64,AAAA", 1)
                      .replace("</body>", "<script>undefined_function();</script></body>"), encoding="utf-8")
    loaded, expected, console = _check(broken)
    assert (loaded, expected) == (4, 5)
    assert any("chart did not load" in line for line in console) and any("undefined_function" in line for line in console)
