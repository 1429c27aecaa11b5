"""The dashboard in a real browser against `iocwatch up`: log in, import an indicator by
upload, drop a matching file into the watched folder, see the alert arrive without a
reload, filter it, and open its detail with the MISP event."""

import hashlib
import os
import shutil
import time

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import ROOT, output_dir

WAIT_SECS = 30


def wait_for(driver, condition, description):
    return WebDriverWait(driver, WAIT_SECS, poll_frequency=0.2).until(
        lambda d: condition(d), message=f"timed out waiting for {description}")


def log_in(driver, stack):
    driver.get(stack["url"] + "/")
    assert "/login" in driver.current_url
    driver.find_element(By.ID, "name").send_keys("admin")
    driver.find_element(By.ID, "key").send_keys(stack["key"], Keys.ENTER)
    wait_for(driver, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Overview", "the overview")


def import_indicator(driver, stack, tmp_path, digest):
    iocs = tmp_path / "browser-test.sha256"
    iocs.write_text(digest + "\n")
    driver.get(stack["url"] + "/intel/import")
    driver.find_element(By.ID, "f-file").send_keys(str(iocs))
    driver.find_element(By.CSS_SELECTOR, "form[enctype] button[type=submit]").click()
    result = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "section.result"), "the import result")
    assert "1 hash detections" in result[0].text, result[0].text


def alert_rows(driver, digest):
    """Rows of intel-match alerts for `digest` (quarantine alerts name the digest too)."""
    rows = driver.find_elements(By.CSS_SELECTOR, "table.alerts tbody tr")
    return [row for row in rows if digest in row.text and "MISP event" in row.text]


def test_alert_arrives_live_and_shows_misp_event(stack, browser, tmp_path):
    driver = browser
    sample = f"iocwatch dashboard browser test {time.time_ns()} {os.getpid()}\n".encode()
    digest = hashlib.sha256(sample).hexdigest()

    log_in(driver, stack)
    import_indicator(driver, stack, tmp_path, digest)

    # The alerts page is open before the file lands; the row must appear without a reload.
    driver.get(stack["url"] + "/alerts")
    # A marker in the window object: it disappears if the page reloads.
    driver.execute_script("window.__loaded_once = true;")
    before = len(alert_rows(driver, digest))
    # The manager reloads its index shortly after the import. A copy under a new name is a
    # new file event, so copies are dropped until one matches.
    deadline = time.monotonic() + WAIT_SECS
    copy = 0
    while time.monotonic() < deadline and len(alert_rows(driver, digest)) == before:
        (stack["watched"] / f"sample-{copy}.bin").write_bytes(sample)
        copy += 1
        try:
            WebDriverWait(driver, 5, poll_frequency=0.2).until(
                lambda d: len(alert_rows(d, digest)) > before)
        except TimeoutException:
            continue
    rows = alert_rows(driver, digest)
    assert len(rows) > before, "no intel-match alert appeared on the alerts page"
    assert driver.execute_script("return window.__loaded_once === true;"), "the page was reloaded"
    status = driver.find_element(By.ID, "live-status").text
    assert "new alert" in status, status

    # Level and agent as shown in the new row: "12 critical", "001 name".
    cells = rows[0].find_elements(By.TAG_NAME, "td")
    level = cells[1].text.split()[0]
    agent_id = cells[4].text.split()[0]

    driver.get(stack["url"] + "/alerts")
    Select(driver.find_element(By.ID, "f-level")).select_by_value(level)
    driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    wait_for(driver, lambda d: f"level={level}" in d.current_url, "the level filter")
    assert alert_rows(driver, digest), "the alert is missing under its own level"

    Select(driver.find_element(By.ID, "f-agent")).select_by_value(agent_id)
    driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    wait_for(driver, lambda d: f"agent={agent_id}" in d.current_url, "the agent filter")
    rows = alert_rows(driver, digest)
    assert rows, "the alert is missing under its own agent"

    if int(level) < 16:
        driver.get(stack["url"] + f"/alerts?level={int(level) + 1}&agent={agent_id}")
        assert not alert_rows(driver, digest), "a higher minimum level still lists the alert"

    driver.get(stack["url"] + f"/alerts?level={level}&agent={agent_id}")
    alert_rows(driver, digest)[0].find_element(By.TAG_NAME, "a").click()
    wait_for(driver, lambda d: d.find_element(By.TAG_NAME, "h1").text.startswith("Alert "), "the detail page")
    misp = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=h-misp]").text
    assert digest in misp, misp
    assert "browser-test.sha256" in misp or "Event" in misp, misp
    assert driver.find_element(By.CSS_SELECTOR, "dl.misp-event"), "the matched event is shown"
    # `up --quarantine` moves the file; the agent's result arrives shortly after the alert.
    detail_url = driver.current_url
    for _ in range(WAIT_SECS):
        quarantine = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=h-quarantine]").text
        if "done" in quarantine:
            break
        time.sleep(1)
        driver.get(detail_url)
    assert "done" in quarantine, quarantine
    assert "moved to" in quarantine, quarantine
    detail_shot = output_dir() / "alert-detail.png"
    driver.save_screenshot(str(detail_shot))

    driver.get(stack["url"] + "/")
    wait_for(driver, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Overview", "the overview")
    overview_shot = output_dir() / "overview.png"
    driver.save_screenshot(str(overview_shot))
    print(f"screenshots: {overview_shot} {detail_shot}")
    if os.environ.get("DASHBOARD_UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(overview_shot, ROOT / "docs" / "dashboard.png")


def test_keyboard_reaches_skip_link_first(stack, browser):
    driver = browser
    driver.get(stack["url"] + "/agents")
    if "/login" in driver.current_url:
        log_in(driver, stack)
        driver.get(stack["url"] + "/agents")
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    focused = driver.switch_to.active_element
    assert focused.text == "Skip to content"
    assert "001" in driver.find_element(By.TAG_NAME, "main").text, "the local agent is listed"
