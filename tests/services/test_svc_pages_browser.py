"""The pages as a person sees them: headless chromium against the services served for real.

Backend, frontend and dashboard run on loopback (werkzeug's server in threads) over the
throwaway PostgreSQL and Redis, with a real worker thread executing modules, behind a real nginx
routed like the deployment's (frontend at /, dashboard at /infra/): the person logs in on the
frontend and the same cookie opens the dashboard. One screenshot of each page goes to
/tmp/barestack-screens/ for a human look.
"""

import dataclasses
import threading
from collections.abc import Iterator

import pytest
from barestack_backend.worker import build_worker
from barestack_backend.worker_settings import WorkerSettings
from barestack_frontend.app import create_app as create_frontend
from barestack_frontend.settings import Settings as FrontendSettings
from barestack_infrastructure.app import create_app as create_dashboard
from barestack_infrastructure.settings import DEFAULT_UNITS
from barestack_infrastructure.settings import Settings as DashboardSettings
from barestack_infrastructure.systemd_units import SystemdReader
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from svc_testkit.accounts import OPERATOR, PERSON, User
from svc_testkit.browser import SCREENS
from svc_testkit.live_server import serve
from svc_testkit.nginx_server import missing_binary as missing_nginx
from svc_testkit.nginx_site import NginxSite
from svc_testkit.ports import free_port

# The dashboard asks the controller's own systemd: with systemd as PID 1 the barestack units are
# "not installed" there; without systemd (a container) they are unknown.
UNIT_SUMMARY = "not installed" if SystemdReader(1.0).available() else "unknown: systemd not available"


@pytest.fixture
def running_worker(backend_env: dict[str, str]) -> Iterator[None]:
    # No systemd as PID 1 here: runs go unsandboxed, as in the worker's own tests.
    env = {**backend_env, "BARESTACK_WORKER_NAME": "browser-test-worker", "BARESTACK_RUN_SANDBOX": "none"}
    settings = WorkerSettings.from_env(env)
    stop = threading.Event()
    worker = build_worker(dataclasses.replace(settings, block_ms=200), stop)
    thread = threading.Thread(target=worker.serve, name="worker", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)
    worker.database.close()


@pytest.fixture
def site(live_backend: str, live_frontend: str, infra_env: dict[str, str]) -> Iterator[str]:
    """One origin, as nginx serves it: the frontend at /, the dashboard at /infra/, the API at /api/."""
    missing = missing_nginx()
    if missing:
        pytest.skip(missing)
    dashboard = serve(create_dashboard(DashboardSettings.from_env(infra_env)))
    proxy = NginxSite.over_tcp(live_backend, live_frontend, dashboard.url)
    yield proxy.url
    proxy.stop()
    dashboard.stop()


@pytest.fixture
def fresh(browser: WebDriver) -> WebDriver:
    """The browser with no cookies left from another test: every test logs in for itself."""
    browser.delete_all_cookies()
    return browser


def visible_text(driver: WebDriver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def fill_login_form(driver: WebDriver, user: User) -> None:
    assert driver.find_element(By.TAG_NAME, "h1").text == "Log in"
    driver.find_element(By.ID, "username").send_keys(user.name)
    driver.find_element(By.ID, "password").send_keys(user.password)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()


def log_in(driver: WebDriver, site_url: str, user: User) -> None:
    driver.get(site_url + "/login")
    fill_login_form(driver, user)
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "logged-in-as"))


def test_modules_page_run_button_and_run_page(fresh: WebDriver, site: str, running_worker: None) -> None:
    browser = fresh
    browser.get(site + "/")
    assert browser.title == "Modules · barestack"
    # Anonymous: the catalogue, no run buttons, a way to log in that comes back here.
    assert not browser.find_elements(By.CSS_SELECTOR, 'button[aria-label^="Run "]')
    browser.find_element(By.CSS_SELECTOR, "#login-to-run a").click()
    fill_login_form(browser, PERSON)
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "logged-in-as"))
    assert browser.current_url == site + "/"
    assert browser.find_element(By.ID, "logged-in-as").text == f"Logged in as {PERSON.name}"
    cookie = browser.get_cookie("barestack_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert "barestack_session" not in browser.execute_script("return document.cookie")
    table = browser.find_element(By.CSS_SELECTOR, "table.modules").text
    for name in ("backend/echo-001", "backend/fail-002", "backend/noisy-005", "frontend/page-001"):
        assert name in table
    assert "never run" in table
    browser.save_screenshot(str(SCREENS / "frontend-modules.png"))

    browser.find_element(By.CSS_SELECTOR, 'button[aria-label="Run backend/echo-001"]').click()
    WebDriverWait(browser, 10).until(lambda d: "/runs/" in d.current_url)
    # The page refreshes itself while the run is queued or running.
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.ID, "run-status").text in ("succeeded", "failed", "timeout")
    )
    assert browser.find_element(By.ID, "run-status").text == "succeeded"
    assert browser.find_element(By.ID, "exit-code").text == "0"
    assert browser.find_element(By.ID, "requested-by").text == PERSON.name
    assert "hello from echo-001" in browser.find_element(By.ID, "stdout").text
    assert "a warning on stderr" in browser.find_element(By.ID, "stderr").text
    assert "refreshes every" not in visible_text(browser)
    browser.save_screenshot(str(SCREENS / "frontend-run.png"))

    browser.find_element(By.LINK_TEXT, "Modules").click()
    row = browser.find_element(By.XPATH, "//tr[th/a[text()='backend/echo-001']]")
    assert "succeeded" in row.text

    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    WebDriverWait(browser, 10).until(lambda d: not d.find_elements(By.ID, "logged-in-as"))
    assert not browser.find_elements(By.CSS_SELECTOR, 'button[aria-label^="Run "]')


def test_module_page_runs_with_arguments(fresh: WebDriver, site: str, running_worker: None) -> None:
    browser = fresh
    log_in(browser, site, PERSON)
    browser.get(site + "/modules/backend/echo-001")
    browser.find_element(By.ID, "args").send_keys("--who 'the tester'")
    browser.find_element(By.CSS_SELECTOR, "form.run button").click()
    # The run page reloads itself until the run ends: an element read during a reload goes stale.
    WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_element(By.ID, "run-status").text == "succeeded"
    )
    assert "args: --who the tester" in browser.find_element(By.ID, "stdout").text


def test_backend_down_page(browser: WebDriver) -> None:
    server = serve(
        create_frontend(FrontendSettings.from_env({"BACKEND_API_URL": f"http://127.0.0.1:{free_port()}"}))
    )
    try:
        browser.get(server.url + "/")
        assert browser.find_element(By.TAG_NAME, "h1").text == "The backend is not available"
        assert "Traceback" not in visible_text(browser)
        browser.save_screenshot(str(SCREENS / "frontend-backend-down.png"))
    finally:
        server.stop()


def test_dashboard_is_for_operators(fresh: WebDriver, site: str) -> None:
    browser = fresh
    browser.get(site + "/infra/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Log in required"
    log_in(browser, site, PERSON)
    browser.get(site + "/infra/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Operators only"
    assert not browser.find_elements(By.ID, "overall")


def test_dashboard_page(fresh: WebDriver, site: str) -> None:
    browser = fresh
    browser.get(site + "/infra/")
    # The login link goes to the frontend's /login and back to /infra/ afterwards.
    browser.find_element(By.ID, "login-link").click()
    fill_login_form(browser, OPERATOR)
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "overall"))
    assert browser.current_url == site + "/infra/"
    assert browser.find_element(By.ID, "logged-in-as").text == f"Logged in as {OPERATOR.name}"
    assert browser.find_element(By.ID, "overall").text.startswith("All critical components are up.")
    for component in ("backend", "frontend", "postgresql", "redis", "nginx"):
        badge = browser.find_element(By.CSS_SELECTOR, f"#component-{component} .badge")
        assert badge.text == "up", component
    for unit in DEFAULT_UNITS:
        row = browser.find_element(By.ID, f"unit-{unit}")
        assert UNIT_SUMMARY in row.text
    browser.set_window_size(1280, 1300)  # the whole page, units table included
    browser.save_screenshot(str(SCREENS / "dashboard.png"))
    browser.set_window_size(1280, 900)
    # Logging out on the dashboard ends the session for the whole site.
    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    WebDriverWait(browser, 10).until(lambda d: "/infra/" not in d.current_url)
    browser.get(site + "/infra/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Log in required"
