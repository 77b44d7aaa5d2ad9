#!/usr/bin/env python3
"""A person's path through a converged host, in headless chromium (Debian's chromium + chromedriver).

    page_run.py --base http://HOST --user admin --password-file FILE --module backend/a-001 [--shots DIR]
                [--expect-warning UNIT=TEXT]

Logs in on the frontend, starts a run of the module from its page, waits on the run page until it
succeeded and checks it names the person who started it; then opens the dashboard /infra/ with the
same session cookie, sees the backend's unit up there, and (--expect-warning) waits until a unit's
row shows a line of its journal. Exit 1 with the reason (and a screenshot in --shots) when any step fails.
Run on the controller by the molecule verify (tests/integration/verify-access.yml).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)


def chromium(profile: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))


def walk(
    driver: webdriver.Chrome,
    base: str,
    user: str,
    password: str,
    module: str,
    expect_warning: tuple[str, str] | None = None,
) -> None:
    driver.get(f"{base}/login?next=/modules/{module}")
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    if "/modules/" not in driver.current_url:
        raise AssertionError(f"login did not lead to the module page: {driver.current_url}")
    driver.find_element(By.ID, "args").send_keys("1.10 1.9")
    driver.find_element(By.CSS_SELECTOR, "form.run button[type=submit]").click()
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        status = driver.find_element(By.ID, "run-status").text
        if status in ("succeeded", "failed", "timeout"):
            break
        time.sleep(1)
        driver.refresh()
    if status != "succeeded":
        raise AssertionError(f"the run from the page ended as {status!r}: {driver.current_url}")
    started_by = driver.find_element(By.ID, "requested-by").text
    if started_by != user:
        raise AssertionError(f"the run names {started_by!r} as who started it, not {user!r}")
    driver.get(f"{base}/infra/")
    if "barestack" not in driver.title.lower() or "log in" in driver.page_source.lower()[:2000]:
        raise AssertionError(f"the dashboard did not open for the operator: {driver.title!r}")
    # Blue/green: the dashboard lists both colours of the backend; the live one is up.
    backend_rows = driver.find_elements(By.CSS_SELECTOR, "tr[id^='unit-barestack-backend@']")
    if not any(row.find_elements(By.CSS_SELECTOR, ".badge.up") for row in backend_rows):
        texts = [row.text for row in backend_rows]
        raise AssertionError(f"the dashboard does not show a backend colour up: {texts!r}")
    if expect_warning:
        unit, text = expect_warning
        # The collector reads systemd and journald every few seconds: wait for the row to show it.
        deadline = time.monotonic() + 60
        row_text = ""
        while time.monotonic() < deadline:
            row_text = driver.find_element(By.ID, f"unit-{unit}").text
            if text in row_text:
                return
            time.sleep(2)
            driver.refresh()
        raise AssertionError(f"the dashboard row of {unit} never showed {text!r}: {row_text!r}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", required=True, type=Path)
    parser.add_argument("--module", default="backend/a-001")
    parser.add_argument("--shots", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument(
        "--expect-warning",
        metavar="UNIT=TEXT",
        help="wait until the dashboard's row of UNIT shows TEXT (read from the unit's journal)",
    )
    args = parser.parse_args()
    expect_warning = None
    if args.expect_warning:
        unit, _, text = args.expect_warning.partition("=")
        expect_warning = (unit, text)
    password = args.password_file.read_text().strip()
    profile = Path(tempfile.mkdtemp(prefix="barestack-verify-chromium-"))
    driver = chromium(profile)
    try:
        walk(driver, args.base.rstrip("/"), args.user, password, args.module, expect_warning)
    except (AssertionError, WebDriverException) as error:
        shot = args.shots / "barestack-page-run-failure.png"
        driver.save_screenshot(str(shot))
        print(f"FAILED: {error} (screenshot: {shot})", file=sys.stderr)
        return 1
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    print(
        f"logged in as {args.user}, ran {args.module} from its page "
        f"(succeeded, started by {args.user}), opened /infra/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
