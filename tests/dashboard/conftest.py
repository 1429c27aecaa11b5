"""Starts `iocwatch up` (manager, API, dashboard and a local agent in one process) on a free
loopback port, and a headless Chromium driven through Debian's chromedriver, so that no
browser or driver is downloaded."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from iocwatch_server import ROOT, iocwatch_binary  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def output_dir() -> Path:
    """Folder for screenshots: $DASHBOARD_TEST_OUTPUT or test-output/dashboard."""
    folder = Path(os.environ.get("DASHBOARD_TEST_OUTPUT", ROOT / "test-output" / "dashboard"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"dashboard screenshots: {output_dir()}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    binary = iocwatch_binary()
    if not binary.exists():
        pytest.fail(f"{binary} is missing; build it with `cargo build -p iocwatch` or set IOCWATCH_BIN")
    root = tmp_path_factory.mktemp("iocwatch-up")
    watched = root / "watched"
    watched.mkdir()
    proc = subprocess.Popen(
        [str(binary), "--data-dir", str(root / "data"), "up",
         "--watch", str(watched), "--listen", "127.0.0.1:0", "--quarantine"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on "), f"unexpected first line: {first!r}"
        url = first.removeprefix("listening on ")
        key = None
        for _ in range(20):
            line = proc.stdout.readline()
            if line.startswith("api key: "):
                key = line.split()[2]
            if not line or line.startswith("ready in"):
                break
        assert key and len(key) == 40, "`up` printed no admin key on its first start"
        yield {"url": url, "key": key, "watched": watched, "root": root}
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture(scope="session")
def browser():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Debian's chromium and chromium-driver are missing; install them with apt-get")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="iocwatch-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--window-size=1280,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
