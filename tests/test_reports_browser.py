"""The HTML report in a real browser: Debian's Chromium, headless, its own --dump-dom and --screenshot modes.

Checked: the page renders (the screenshot is a real image, its path lands in this test's ``metrics`` in
the fmspec results file), the script ran under the page's Content-Security-Policy (tables are made
sortable), the matrix and the plots are in the rendered DOM, and no request leaves the page: Chromium's
network log of the report holds no request of the page's (the browser's own background requests to
its vendor's services are told apart by host), and the same page with an external image and stylesheet
injected shows the CSP stopping them, while a control copy without the CSP shows the log would see them.

Needs ``chromium`` (``apt-get install -y chromium``); skipped, saying so, where it is not installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

from fmspec.reports import html

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "results"
INPUTS = ["mutants.json", "bench_h200.json"]  # failures, a matrix, plots: enough to render, quick to build
CHROMIUM = shutil.which("chromium")
# hosts Chromium itself calls (time, accounts, suggestions) whatever page it shows
BROWSER_HOSTS = re.compile(r"(^|\.)(google\.com|googleapis\.com|gstatic\.com|gvt1\.com|googleusercontent\.com)$")
PROBE = "127.0.0.1:9"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


def chromium(tmp_path: Path, page: Path, *mode: str, name: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run headless Chromium on ``page``; its output and every URL in its network log."""
    netlog = tmp_path / f"{name}.netlog.json"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / (name + '.profile')}",
           f"--log-net-log={netlog}", "--net-log-capture-mode=Everything", *mode, page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    urls = re.findall(r'"url":"([^"]*)"', netlog.read_text(errors="replace")) if netlog.exists() else []
    return proc, urls


def page_requests(urls: list[str]) -> list[str]:
    """URLs the page could have caused: not file:, data: or blob:, not the browser's own services."""
    out = []
    for url in urls:
        u = urlparse(url)
        if u.scheme in ("file", "data", "blob", "chrome", "about", "") or BROWSER_HOSTS.search(u.hostname or ""):
            continue
        out.append(url)
    return sorted(set(out))


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("browser") / "report.html"
    path.write_text(html.build([DATA / n for n in INPUTS]), encoding="utf-8")
    return path


def test_report_renders_in_chromium_with_matrix_plots_and_script(report_file, tmp_path):
    proc, urls = chromium(tmp_path, report_file, "--dump-dom", name="dom")
    dom = proc.stdout
    assert proc.returncode == 0 and "<table" in dom, proc.stderr[-2000:]
    assert 'id="matrix-table"' in dom and dom.count('data-sortable="ready"') == dom.count('class="sortable"') > 0, \
        "the page's script did not run (blocked by its own CSP?)"
    assert dom.count("<svg") >= 2 and "Device: NVIDIA H200" in dom
    assert not page_requests(urls), f"requests left the page: {page_requests(urls)}"
    assert not re.search(r'(src|href)="(https?:)?//', dom)


def test_csp_stops_injected_external_loads(report_file, tmp_path):
    text = report_file.read_text(encoding="utf-8")
    inject = (f'<img src="http://{PROBE}/probe.png"><link rel="stylesheet" href="http://{PROBE}/probe.css">'
              f'<script src="http://{PROBE}/probe.js"></script>')
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("<main>", "<main>" + inject, 1), encoding="utf-8")
    _, urls = chromium(tmp_path, probe, "--dump-dom", name="probe")
    assert not [u for u in urls if PROBE in u], "the CSP let an injected external load through"
    control = tmp_path / "control.html"  # the same without the CSP: the network log does see such loads
    control.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", probe.read_text()), encoding="utf-8")
    _, urls = chromium(tmp_path, control, "--dump-dom", name="control")
    assert [u for u in urls if PROBE in u], "control: the network log did not show the injected request"


def test_screenshot(report_file, tmp_path, fmspec_metrics):
    shot = tmp_path / "report.png"
    proc, urls = chromium(tmp_path, report_file, f"--screenshot={shot}", "--window-size=1280,2000",
                          "--hide-scrollbars", name="shot")
    fmspec_metrics["screenshot"] = str(shot)
    assert shot.exists(), f"no screenshot at {shot}: {proc.stderr[-2000:]}"
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, f"{shot}: {len(data)} bytes, not a rendered page"
    assert not page_requests(urls), f"requests left the page: {page_requests(urls)} (screenshot: {shot})"
    print(f"screenshot: {shot}")
