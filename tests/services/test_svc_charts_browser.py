"""The chart page as an operator sees it: headless chromium behind a real nginx, real traffic sampled.

On failure a screenshot goes to /tmp/barestack-screens/charts-failure.png (its path is in the
error); on success /tmp/barestack-screens/dashboard-charts.png is left for a human look.
"""

import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from barestack_infrastructure.app import create_app
from barestack_infrastructure.routes.charts import EXTENSION_KEY
from barestack_infrastructure.sampler import Sampler
from barestack_infrastructure.settings import Settings
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from svc_testkit.accounts import OPERATOR
from svc_testkit.browser import SCREENS
from svc_testkit.live_server import serve
from svc_testkit.nginx_site import NginxSite

CHARTS = ("chart-request-rate", "chart-latency-p95", "chart-runs", "chart-run-durations")


@pytest.fixture
def site(live_backend: str, live_frontend: str, infra_env: dict[str, str]) -> Iterator[tuple[str, Sampler]]:
    """nginx in front of the three services; the dashboard samples every second, as gunicorn's would."""
    env = {
        **infra_env,
        "BARESTACK_SAMPLE_INTERVAL": "1",
        "BARESTACK_METRICS_KEY": f"barestack:test-charts-browser:{uuid.uuid4().hex[:10]}",
    }
    app = create_app(Settings.from_env(env), start_sampler=True)
    dashboard = serve(app)
    proxy = NginxSite.over_tcp(live_backend, live_frontend, dashboard.url)
    yield proxy.url, app.extensions[EXTENSION_KEY]
    proxy.stop()
    dashboard.stop()
    app.extensions[EXTENSION_KEY].stop()


def log_in(driver: WebDriver, site_url: str) -> None:
    driver.get(site_url + "/login")
    driver.find_element(By.ID, "username").send_keys(OPERATOR.name)
    driver.find_element(By.ID, "password").send_keys(OPERATOR.password)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "logged-in-as"))


def drive_traffic(site_url: str) -> None:
    for path in ["/api/health"] * 15 + ["/"] * 5 + ["/infra/health"] * 5:
        with urllib.request.urlopen(site_url + path, timeout=10) as response:
            assert response.status == 200, path
    # Through nginx from its own host (as the deployed dashboard scrapes them): answered.
    for path in ("/api/metrics", "/metrics"):
        with urllib.request.urlopen(site_url + path, timeout=10) as response:
            assert b"# TYPE barestack_http_request_duration_seconds histogram" in response.read(), path


def check_chart_page(driver: WebDriver, site_url: str) -> None:
    driver.get(site_url + "/infra/charts")
    assert driver.title == "Last hour · barestack infrastructure"
    assert driver.find_element(By.ID, "data-age").text.startswith("Last sample ")
    for chart_id in CHARTS:
        svg = driver.find_element(By.ID, chart_id)
        assert svg.get_attribute("role") == "img"
        # The accessible name is the chart's <title>, and the description says what it shows.
        title, desc = driver.execute_script(
            "const s = arguments[0]; const ids = s.getAttribute('aria-labelledby').split(' ');"
            "return ids.map(id => document.getElementById(id).textContent);",
            svg,
        )
        assert title == driver.find_element(By.CSS_SELECTOR, f"#{chart_id}-figure h2").text
        assert desc, chart_id
        assert svg.size["width"] > 400 and svg.size["height"] > 100, (chart_id, svg.size)
    # A line of several samples per service, drawn inside the plot (a few seconds of an hour are a
    # sliver at the right edge: the time axis is always the whole last hour).
    plot = driver.execute_script(
        "return document.querySelector('#chart-request-rate rect.plot').getBoundingClientRect().toJSON()"
    )
    for service in ("backend", "frontend", "infrastructure"):
        line = driver.execute_script(
            "const line = document.querySelector("
            "  `#chart-request-rate g[data-series='${arguments[0]}'] polyline`);"
            "return line && {n: line.points.numberOfItems, box: line.getBoundingClientRect().toJSON()};",
            service,
        )
        assert line and line["n"] >= 3, f"no line of 3 samples for {service} on the request-rate chart"
        box = line["box"]
        assert box["height"] > 0 or box["width"] > 0, (service, box)
        assert plot["left"] <= box["left"] and box["right"] <= plot["right"] + 1, (service, box, plot)
        assert plot["top"] <= box["top"] and box["bottom"] <= plot["bottom"] + 1, (service, box, plot)
    assert "backend: latest" in driver.find_element(By.ID, "chart-latency-p95-desc").get_attribute(
        "textContent"
    )
    # No script on the page: the pictures are the server's SVG.
    assert driver.execute_script("return document.scripts.length") == 0


def test_the_chart_page_in_a_browser(browser: WebDriver, site: tuple[str, Sampler]) -> None:
    site_url, sampler = site
    try:
        log_in(browser, site_url)
        # Traffic through nginx over a few seconds, so each service has a line of several samples.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            drive_traffic(site_url)
            time.sleep(0.5)
            points, _ = sampler.current()
            with_traffic = [p for p in points if (p["services"].get("frontend") or {}).get("requests")]
            if len(with_traffic) >= 3:
                break
        time.sleep(1.1)  # one more sample, read back into the page's copy
        check_chart_page(browser, site_url)
        browser.set_window_size(1280, 1400)
        browser.save_screenshot(str(SCREENS / "dashboard-charts.png"))
        browser.set_window_size(1280, 900)
    except BaseException as error:
        shot = SCREENS / "charts-failure.png"
        browser.save_screenshot(str(shot))
        raise AssertionError(f"{error!r}; screenshot: {shot}") from error
