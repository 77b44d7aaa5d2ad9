"""The backend API as the frontend uses it; every call goes through BACKEND_API_URL."""

import threading
import time
from typing import Any
from urllib.parse import quote

from barestack_common import http_client


class BackendUnavailable(Exception):
    """The backend did not answer, or answered with a server error."""


class BackendNotFound(Exception):
    pass


class BackendRejected(Exception):
    """The backend refused the request (4xx); the message is its explanation, ``status`` its code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class BackendUnauthorized(BackendUnavailable):
    """The backend refused the frontend's own credentials (401/403): a deployment problem, not the user's."""


def _detail(response: http_client.HttpResponse) -> str:
    try:
        document = response.json()
    except ValueError:
        return f"HTTP {response.status}"
    if isinstance(document, dict):
        return str(document.get("detail") or document.get("error") or f"HTTP {response.status}")
    return f"HTTP {response.status}"


USER_HEADER = "X-Barestack-User"


class BackendClient:
    """Calls keep their connection to the backend (one per thread), over TCP or a unix socket.

    Calls carry the frontend's token, and the logged-in person's name when there is one. The
    backend trusts ``X-Barestack-User`` only from a token allowed to act for users (the
    frontend's), and records it as the run's ``requested_by``. Anonymous calls never send it.

    ``timeout_s`` bounds a whole call, connecting and reading included, so a slow backend holds
    a page for at most that long before the page shows that the backend does not answer.

    The catalogue as shown to people who are not logged in (no user: the same for all of them)
    is kept ``catalogue_ttl_s`` seconds per process: a busy front page asks the backend once per
    interval, not once per view. One caller fetches it; while it does, the others get the expired
    listing (at most two intervals old), or wait for that answer when there is none that recent. A
    failed call is not kept, and a logged-in person's listing (their runs) is always fresh.
    """

    def __init__(
        self, base_url: str, timeout_s: float, token: str | None = None, catalogue_ttl_s: float = 0.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._token = token
        self.http = http_client.KeepAliveClient()
        self.catalogue_ttl_s = catalogue_ttl_s
        self._catalogue_lock = threading.Lock()  # guards the kept listing and its time
        self._fetch_lock = threading.Lock()  # held by the one caller asking the backend for it
        self._catalogue: dict[str, Any] | None = None
        self._catalogue_at = 0.0

    def _send(
        self, method: str, path: str, payload: Any = None, user: str | None = None
    ) -> http_client.HttpResponse:
        return self.http.request(
            method, self.base_url + path, self.timeout_s, payload, headers=self._headers(user)
        )

    def _headers(self, user: str | None) -> dict[str, str]:
        headers = {}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if user:
            headers[USER_HEADER] = user
        return headers

    def _call(self, method: str, path: str, payload: Any = None, user: str | None = None) -> Any:
        try:
            response = self._send(method, path, payload, user)
        except http_client.HttpUnavailable as error:
            raise BackendUnavailable(f"the backend API does not answer ({error})") from None
        if response.status in (401, 403):
            raise BackendUnauthorized(
                f"the backend API refused the frontend's credentials (HTTP {response.status}): "
                "check BARESTACK_FRONTEND_TOKEN"
            )
        if response.status == 404:
            raise BackendNotFound(_detail(response))
        if 400 <= response.status < 500:
            raise BackendRejected(_detail(response), response.status)
        if response.status >= 500:
            raise BackendUnavailable(f"the backend API answered HTTP {response.status}: {_detail(response)}")
        try:
            return response.json()
        except ValueError:
            raise BackendUnavailable("the backend API answered with something that is not JSON") from None

    @staticmethod
    def _module_path(service: str, module: str) -> str:
        return f"/modules/{quote(service, safe='')}/{quote(module, safe='')}"

    def modules(self, user: str | None = None) -> dict[str, Any]:
        """The catalogue; without ``user``, possibly shared with other callers: never modify it."""
        if user is not None or self.catalogue_ttl_s <= 0:
            return self._call("GET", "/modules", user=user)
        with self._catalogue_lock:
            kept, age = self._catalogue, time.monotonic() - self._catalogue_at
        if kept is not None and age < self.catalogue_ttl_s:
            return kept
        # Expired: one caller asks the backend. While it does, the others are answered from the
        # expired listing for up to another interval instead of all waiting for that one call.
        if kept is not None and age < 2 * self.catalogue_ttl_s:
            if not self._fetch_lock.acquire(blocking=False):
                return kept
        else:
            self._fetch_lock.acquire()
        try:
            with self._catalogue_lock:
                kept, age = self._catalogue, time.monotonic() - self._catalogue_at
            if kept is not None and age < self.catalogue_ttl_s:
                return kept  # fetched by the caller this one waited for
            try:
                fetched = self._call("GET", "/modules")
            except Exception:
                with self._catalogue_lock:
                    self._catalogue = None  # a failure leaves nothing stale behind
                raise
            with self._catalogue_lock:
                if fetched == self._catalogue:
                    # Unchanged: hand out the same object, so what was rendered from it stays valid.
                    fetched = self._catalogue
                self._catalogue, self._catalogue_at = fetched, time.monotonic()
            return fetched
        finally:
            self._fetch_lock.release()

    def catalogue_fresh_until(self, listing: dict[str, Any]) -> float:
        """When (``time.monotonic()``) ``listing``, as handed out by modules(), stops being fresh;
        0 for a listing that is not the kept one (an expired or personal one)."""
        with self._catalogue_lock:
            if listing is not self._catalogue or self.catalogue_ttl_s <= 0:
                return 0.0
            return self._catalogue_at + self.catalogue_ttl_s

    def module(self, service: str, module: str, user: str | None = None) -> dict[str, Any]:
        return self._call("GET", self._module_path(service, module), user=user)

    def start_run(self, service: str, module: str, args: list[str], user: str) -> dict[str, Any]:
        return self._call("POST", self._module_path(service, module) + "/runs", {"args": args}, user=user)

    def run(self, run_id: str, user: str | None) -> dict[str, Any]:
        return self._call("GET", f"/runs/{quote(run_id, safe='')}", user=user)

    def health(self) -> dict[str, Any]:
        """The backend's own health document; a 503 from it still counts as an answer."""
        try:
            response = self._send("GET", "/health")
        except http_client.HttpUnavailable as error:
            raise BackendUnavailable(f"the backend API does not answer ({error})") from None
        try:
            document = response.json()
        except ValueError:
            document = {}
        return {"http_status": response.status, "status": document.get("status", "unknown")}
