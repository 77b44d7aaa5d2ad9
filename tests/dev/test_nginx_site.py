"""svc_testkit/nginx_site.py renders the nginx role's own site, and Debian's nginx serves it locally."""

import http.client
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "services"))

from svc_testkit import nginx_site  # noqa: E402


def test_the_site_has_the_roles_routes_and_headers(tmp_path: Path) -> None:
    site = nginx_site.render_site(nginx_site.site_variables(18080, tmp_path))
    defaults = nginx_site.role_defaults()
    for route in defaults["nginx_app_routes"]:
        assert f"location {route['path']} {{" in site
        assert f"server unix:{tmp_path}/live/{route['service']}.sock;" in site
        assert f'proxy_set_header X-Forwarded-Prefix "{route["prefix"]}";' in site
    for name in defaults["nginx_security_headers"]:
        assert f"add_header {name} " in site
    assert "listen 127.0.0.1:18080 default_server;" in site


def test_an_unresolved_ansible_expression_fails_loudly(tmp_path: Path) -> None:
    variables = nginx_site.site_variables(18080, tmp_path)
    del variables["nginx_app_hosts"]  # its default is an Ansible expression ({{ groups['app'] }})
    with pytest.raises(Exception, match="nginx_app_hosts"):
        nginx_site.render_site(variables)


@pytest.mark.skipif(nginx_site.missing_binary() is not None, reason=str(nginx_site.missing_binary()))
def test_nginx_serves_the_rendered_site(tmp_path: Path) -> None:
    server = nginx_site.NginxSite.start(tmp_path)  # no gunicorn behind it: 502 from the proxied routes
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/infra?x=1")
        response = connection.getresponse()
        response.read()
        assert response.status == 301
        assert response.getheader("Location", "").endswith(f":{server.port}/infra/?x=1")
        assert response.getheader("X-Frame-Options") == "DENY"
        connection.request("GET", "/api/health")
        response = connection.getresponse()
        response.read()
        assert response.status == 502
    finally:
        server.stop()
    assert not server.base.exists()
