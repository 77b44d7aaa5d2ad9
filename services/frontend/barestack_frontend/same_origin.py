"""Refusing form posts that come from another site (cross-site request forgery).

Browsers say where a POST comes from (``Origin``, and ``Sec-Fetch-Site`` in current ones). This
check comes on top of the session's CSRF token (``barestack_common.auth.check_form_post``), which
stops the posts this one lets through (clients that send no Origin). The host is compared without
scheme and port because nginx may forward ``$host`` (no port) and terminate TLS; ProxyFix has
already applied X-Forwarded-Host.
"""

from urllib.parse import urlsplit

from flask import abort, request

REFUSED_FETCH_SITES = frozenset({"cross-site", "same-site"})


def _hostname(netloc: str) -> str:
    return (urlsplit(f"//{netloc}").hostname or "").lower()


def require_same_origin() -> None:
    if request.headers.get("Sec-Fetch-Site", "").lower() in REFUSED_FETCH_SITES:
        abort(403, description="This form can only be sent from this site's own pages.")
    origin = request.headers.get("Origin")
    if origin is None:
        return  # old browsers and non-browser clients send no Origin
    origin_host = urlsplit(origin).hostname if origin != "null" else None
    if origin_host is None or origin_host.lower() != _hostname(request.host):
        abort(403, description="This form can only be sent from this site's own pages.")
