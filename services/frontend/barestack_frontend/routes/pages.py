"""The HTML pages: module list, one module, starting a run, one run."""

import hashlib
import shlex
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from barestack_common import auth, replay
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from barestack_frontend.backend_client import BackendClient, BackendNotFound, BackendRejected
from barestack_frontend.routes.login import ask_for_login, login_required, protect_form_post

blueprint = Blueprint("pages", __name__)
UNFINISHED = frozenset({"queued", "running"})
REFRESH_SECONDS = 2


def backend() -> BackendClient:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return app.extensions["barestack_frontend.backend"]  # type: ignore[no-any-return]


def user_name() -> str | None:
    """The logged-in person, whose name goes to the backend with every call made for them."""
    account = auth.current_user()
    return account.name if account else None


def _matches(module: dict[str, Any], query: str) -> bool:
    return query in f"{module['service']}/{module['module']}".lower()


class AnonymousPages:
    """The front page as rendered for visitors who are not logged in, kept per catalogue listing.

    Such a page depends only on the listing, the proxy's prefix and the path with its query (the
    filter, the login link's ``next``): nothing personal, no CSRF token. While the backend client
    hands out the same listing object (its catalogue TTL), the same request gets the same HTML,
    so 400 rows are rendered once per listing instead of once per view. The pages of the last
    ``LISTINGS`` listings are kept (views answered from the expired listing while a new one is
    fetched must not drop the new one's pages, nor the other way round); at most ``MAX_PAGES``
    (distinct filters) per listing.
    """

    MAX_PAGES = 64
    LISTINGS = 2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # id(listing) -> (the listing itself, its pages), oldest first
        self._by_listing: dict[int, tuple[dict[str, Any], dict[tuple[str, str], EncodedPage]]] = {}
        self.renders = 0

    def get(self, listing: dict[str, Any], key: tuple[str, str]) -> "EncodedPage | None":
        with self._lock:
            kept = self._by_listing.get(id(listing))
            return kept[1].get(key) if kept is not None and kept[0] is listing else None

    def put(self, listing: dict[str, Any], key: tuple[str, str], page: "EncodedPage") -> None:
        with self._lock:
            self.renders += 1
            kept = self._by_listing.get(id(listing))
            if kept is None or kept[0] is not listing:
                kept = (listing, {})
                self._by_listing.pop(id(listing), None)
                self._by_listing[id(listing)] = kept
                while len(self._by_listing) > self.LISTINGS:
                    del self._by_listing[next(iter(self._by_listing))]
            if len(kept[1]) >= self.MAX_PAGES:
                kept[1].clear()
            kept[1][key] = page


@dataclass(frozen=True)
class EncodedPage:
    """A kept page as sent: its UTF-8 bytes (a 400-row page is ~60 KB to encode per view) and ETag."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, html: str) -> "EncodedPage":
        body = html.encode("utf-8")
        return cls(body, hashlib.blake2b(body, digest_size=16).hexdigest())


ANONYMOUS_PAGES_KEY = "barestack_frontend.anonymous_pages"


def anonymous_pages() -> AnonymousPages:
    # setdefault is atomic: concurrent first calls all end up with the one stored instance.
    extensions = current_app._get_current_object().extensions  # type: ignore[attr-defined]
    return extensions.setdefault(ANONYMOUS_PAGES_KEY, AnonymousPages())  # type: ignore[no-any-return]


def _render_index(listing: dict[str, Any]) -> str:
    query = request.args.get("q", "").strip().lower()
    modules = [m for m in listing["modules"] if _matches(m, query)] if query else listing["modules"]
    return render_template(
        "index.html",
        modules=modules,
        total=listing["count"],
        query=query,
        runs_available=listing.get("runs_available", True),
    )


@blueprint.get("/")
def index() -> str | Response:
    # Public: anyone may see the catalogue; run buttons and last runs are for logged-in people.
    user = user_name()
    listing = backend().modules(user=user)
    if user is not None:
        return _render_index(listing)
    # The most viewed page: the request and app objects are looked up once, not through their
    # proxies on each attribute read (~0.9 us each).
    current_request = request._get_current_object()  # type: ignore[attr-defined]
    key = (current_request.script_root, current_request.full_path)
    pages = anonymous_pages()
    page = pages.get(listing, key)
    if page is None:
        page = EncodedPage.of(_render_index(listing))
        pages.put(listing, key, page)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    response = app.response_class(page.body, mimetype="text/html")
    response.set_etag(page.etag)
    # The same request (same path, query and cookie) gets this page again without Flask until the
    # listing expires (the client fetches no other before then); a session cookie set meanwhile,
    # or a login, makes it another request.
    replay.offer(current_request.environ, backend().catalogue_fresh_until(listing))
    if "HTTP_IF_NONE_MATCH" in current_request.environ:  # "If-None-Match" in request.headers
        return response.make_conditional(current_request)  # 304 to a browser that has this page already
    return response


def _render_module(service: str, module: str, args_text: str = "", error: str | None = None) -> str:
    try:
        document = backend().module(service, module, user=user_name())
    except BackendNotFound:
        abort(404, description=f"There is no module {service}/{module}.")
    return render_template(
        "module.html",
        module=document["module"],
        runs=document["runs"],
        runs_available=document.get("runs_available", True),
        args_text=args_text,
        error=error,
    )


@blueprint.get("/modules/<service>/<module>")
def module_page(service: str, module: str) -> str:
    return _render_module(service, module)


@blueprint.post("/modules/<service>/<module>/run")
def start_run(service: str, module: str) -> Response | tuple[str, int]:
    user = user_name()
    if user is None:
        return ask_for_login(url_for("pages.module_page", service=service, module=module))
    protect_form_post()
    args_text = request.form.get("args", "")
    try:
        # Arguments are typed like on a shell command line; quotes group words.
        args = shlex.split(args_text)
    except ValueError as error:
        return _render_module(service, module, args_text, f"The arguments cannot be read: {error}."), 400
    try:
        run = backend().start_run(service, module, args, user=user)
    except BackendNotFound:
        abort(404, description=f"There is no module {service}/{module}.")
    except BackendRejected as error:
        # 429: the person has too many runs queued or running (the backend's quota); else 400.
        status = 429 if error.status == 429 else 400
        return _render_module(service, module, args_text, f"The run was refused: {error}"), status
    # 303: the browser follows with a GET, and reloading the run page does not start another run.
    return redirect(url_for("pages.run_page", run_id=run["id"]), code=303)


@blueprint.get("/runs/<uuid:run_id>")
@login_required
def run_page(run_id: uuid.UUID) -> str:
    try:
        run = backend().run(str(run_id), user=user_name())
    except BackendNotFound:
        abort(404, description=f"There is no run {run_id}.")
    return render_template(
        "run.html",
        run=run,
        refresh_seconds=REFRESH_SECONDS if run["status"] in UNFINISHED else None,
    )
