"""NginxProxyFix changes the WSGI environ exactly as werkzeug's ProxyFix does, for any header value.

Its shortcut only takes single values; the comparison runs both middlewares on the same headers,
the ones Nginx sends and the awkward ones a client can slip into X-Forwarded-For.
"""

from typing import Any

import pytest
from barestack_common.proxy_fix import NginxProxyFix
from werkzeug.middleware.proxy_fix import ProxyFix

VALUES = [
    "203.0.113.7",
    " 203.0.113.7\t",
    "198.51.100.1, 203.0.113.7",
    "198.51.100.1,203.0.113.7,",
    ",203.0.113.7",
    '"203.0.113.7"',
    '"unclosed',
    '"a\\"b"',
    "a\\b",
    "",
    " ",
    "\t",
    "[2001:db8::1]:8443",
    "stack.example.test:8443",
    "/api",
    "https",
]
HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
)


def environ_seen(middleware: type[ProxyFix], headers: dict[str, str], trusted: int) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return []

    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "127.0.0.1:5000",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000",
        "SCRIPT_NAME": "",
        **headers,
    }
    fix = middleware(app, x_for=trusted, x_proto=trusted, x_host=trusted, x_port=trusted, x_prefix=trusted)
    fix(environ, lambda *args: None)
    return seen


@pytest.mark.parametrize("trusted", [1, 2])
@pytest.mark.parametrize("value", VALUES)
def test_every_header_value_is_read_as_werkzeug_reads_it(value: str, trusted: int) -> None:
    headers = dict.fromkeys(HEADERS, value)
    assert environ_seen(NginxProxyFix, headers, trusted) == environ_seen(ProxyFix, headers, trusted)


def test_the_address_nginx_appended_is_the_client() -> None:
    headers = {"HTTP_X_FORWARDED_FOR": "198.51.100.1, 203.0.113.7", "HTTP_X_FORWARDED_PREFIX": "/api"}
    seen = environ_seen(NginxProxyFix, headers, 1)
    assert (seen["REMOTE_ADDR"], seen["SCRIPT_NAME"]) == ("203.0.113.7", "/api")
    assert seen["werkzeug.proxy_fix.orig"]["REMOTE_ADDR"] == "127.0.0.1"
