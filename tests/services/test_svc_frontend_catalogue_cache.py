"""The front page for visitors who are not logged in: one backend call and one render per interval.

The backend here is real (PostgreSQL, Redis, the venv mapping) and counts what it serves with its
own request metrics; the frontend calls it over HTTP as deployed.
"""

import time
from collections.abc import Iterator

import pytest
from barestack_backend.app import create_app as create_backend
from barestack_backend.settings import Settings as BackendSettings
from barestack_common import metrics, replay
from barestack_common.env import ConfigError
from barestack_frontend.app import create_app
from barestack_frontend.routes.pages import ANONYMOUS_PAGES_KEY
from barestack_frontend.settings import Settings
from flask import Flask
from svc_testkit.accounts import PERSON, login
from svc_testkit.live_server import LiveServer, serve

TTL_S = 1.0


@pytest.fixture
def backend(backend_env: dict[str, str]) -> Iterator[tuple[LiveServer, metrics.RequestMetrics]]:
    app = create_backend(BackendSettings.from_env(backend_env))
    server = serve(app)
    yield server, app.extensions[metrics.EXTENSION_KEY]
    server.stop()


def _frontend(url: str, auth_env: dict[str, str], ttl: str) -> Flask:
    env = {"BACKEND_API_URL": url, "BARESTACK_CATALOGUE_TTL": ttl, **auth_env}
    app = create_app(Settings.from_env(env))
    app.testing = True
    return app


def test_anonymous_views_within_the_ttl_call_the_backend_and_render_once(
    backend: tuple[LiveServer, metrics.RequestMetrics], auth_env: dict[str, str]
) -> None:
    server, counted = backend
    app = _frontend(server.url, auth_env, str(TTL_S))
    client = app.test_client()
    before = counted.own().count
    started = time.monotonic()
    pages = [client.get("/") for _ in range(10)]
    assert time.monotonic() - started < TTL_S, "too slow a machine for this test's interval"
    assert all(page.status_code == 200 for page in pages)
    assert len({page.get_data() for page in pages}) == 1
    assert "backend/echo-001" in pages[0].get_data(as_text=True)
    assert counted.own().count - before == 1
    assert app.extensions[ANONYMOUS_PAGES_KEY].renders == 1
    # A filter is another page (rendered once), from the same listing (no backend call).
    assert "1 of 6 modules" in client.get("/?q=echo").get_data(as_text=True)
    assert "1 of 6 modules" in client.get("/?q=echo").get_data(as_text=True)
    assert app.extensions[ANONYMOUS_PAGES_KEY].renders == 2
    assert counted.own().count - before == 1
    # Past the interval the backend is asked again.
    time.sleep(TTL_S + 0.1)
    assert client.get("/").status_code == 200
    assert counted.own().count - before == 2


def test_a_logged_in_person_always_gets_a_fresh_listing(
    backend: tuple[LiveServer, metrics.RequestMetrics], auth_env: dict[str, str]
) -> None:
    server, counted = backend
    client = _frontend(server.url, auth_env, "60").test_client()
    login(client, PERSON)
    before = counted.own().count
    for _ in range(3):
        page = client.get("/")
        assert page.status_code == 200 and "Logged in as" in page.get_data(as_text=True)
    assert counted.own().count - before == 3


def test_a_failed_call_is_not_kept(
    backend: tuple[LiveServer, metrics.RequestMetrics], auth_env: dict[str, str]
) -> None:
    server, _ = backend
    app = _frontend(server.url, auth_env, "60")
    client = app.test_client()
    assert client.get("/").status_code == 200
    server.stop()
    time.sleep(0.1)
    # Within the interval the kept listing still serves; once it is dropped, an error is not kept.
    assert client.get("/").status_code == 200
    app.extensions["barestack_frontend.backend"].catalogue_ttl_s = 0.001
    app.extensions[replay.EXTENSION_KEY].forget()  # its page's replay ends with the listing, too
    time.sleep(0.01)
    assert client.get("/").status_code == 503
    app.extensions["barestack_frontend.backend"].catalogue_ttl_s = 60
    assert client.get("/").status_code == 503


def test_the_ttl_setting_is_checked(auth_env: dict[str, str]) -> None:
    for bad in ("-1", "61", "soon"):
        with pytest.raises(ConfigError, match="BARESTACK_CATALOGUE_TTL"):
            _frontend("http://127.0.0.1:9", auth_env, bad)


def test_a_browser_with_the_current_anonymous_page_gets_304(
    backend: tuple[LiveServer, metrics.RequestMetrics], auth_env: dict[str, str]
) -> None:
    server, _ = backend
    client = _frontend(server.url, auth_env, "60").test_client()
    page = client.get("/")
    etag = page.headers["ETag"]
    assert page.status_code == 200 and "backend/echo-001" in page.get_data(as_text=True)
    again = client.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    # Another filter is another page, with its own tag: the browser's tag for / does not fit it.
    filtered = client.get("/?q=echo", headers={"If-None-Match": etag})
    assert filtered.status_code == 200 and "1 of 6 modules" in filtered.get_data(as_text=True)
    assert filtered.headers["ETag"] != etag
    # A logged-in person's page is rendered for them: never a 304 from the anonymous page's tag.
    login(client, PERSON)
    theirs = client.get("/", headers={"If-None-Match": etag})
    assert theirs.status_code == 200 and "Logged in as" in theirs.get_data(as_text=True)


def test_while_one_view_refreshes_the_listing_the_others_get_the_expired_one(
    backend: tuple[LiveServer, metrics.RequestMetrics], auth_env: dict[str, str]
) -> None:
    import threading

    server, counted = backend
    app = _frontend(server.url, auth_env, str(TTL_S))
    client = app.test_client()
    assert client.get("/").status_code == 200
    before = counted.own().count
    time.sleep(TTL_S + 0.1)  # expired, but within a second interval
    fetching = app.extensions["barestack_frontend.backend"]._fetch_lock
    pages: list[int] = []
    with fetching:  # as while another view's call to the backend is under way
        view = threading.Thread(target=lambda: pages.append(client.get("/").status_code))
        view.start()
        view.join(timeout=3)
        assert not view.is_alive(), "a view waited for another view's backend call"
    assert pages == [200] and counted.own().count == before  # the expired listing, no call
    assert client.get("/").status_code == 200  # nobody fetching: this view asks the backend
    assert counted.own().count == before + 1
    # The backend's answer did not change: the page rendered from the first one still serves.
    assert app.extensions[ANONYMOUS_PAGES_KEY].renders == 1


def test_pages_of_the_expired_listing_and_the_new_one_are_both_kept() -> None:
    """Views answered from the expired listing during a fetch must not drop the new listing's page
    (each would then render 400 rows again), and the newest two listings are all that is kept."""
    from barestack_frontend.routes.pages import AnonymousPages, EncodedPage

    pages = AnonymousPages()
    old, new, newer = {"count": 1}, {"count": 2}, {"count": 3}
    key = ("", "/?")
    pages.put(old, key, EncodedPage.of("old"))
    pages.put(new, key, EncodedPage.of("new"))
    old_page, new_page = pages.get(old, key), pages.get(new, key)
    assert old_page is not None and old_page.body == b"old"
    assert new_page is not None and new_page.body == b"new"
    pages.put(newer, key, EncodedPage.of("newer"))
    assert pages.get(old, key) is None and pages.get(new, key) is not None
    assert pages.get({"count": 2}, key) is None  # an equal listing is not the same listing
