from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .render import ROLES, render

DEFAULTS = yaml.safe_load((ROLES / "nginx" / "defaults" / "main.yml").read_text())


HOSTVARS = {
    "web1": {"barestack_host_address": "10.0.0.2"},
    "app1": {"barestack_host_address": "10.0.0.5"},
    "app2": {"barestack_host_address": "10.0.0.6"},
}


def site(**overrides: object) -> str:
    variables: dict[str, object] = {
        **DEFAULTS,
        "inventory_hostname": "web1",
        "hostvars": HOSTVARS,
        "nginx_app_hosts": [],
        "nginx_tls_common_name": "web1",
        "nginx_snippets": {},  # the site task's vars read files/nginx/*.conf
        "nginx_app_tls_ca_file": "/etc/ssl/barestack/ca.crt",
        "nginx_app_tls_name": "app.barestack.internal",
    }
    return render("nginx", "barestack-site.conf.j2", **{**variables, **overrides})


def test_without_app_hosts_it_serves_the_placeholder() -> None:
    text = site()
    assert "upstream" not in text
    assert "try_files $uri $uri/ =404;" in text


def test_app_on_this_host_goes_through_the_live_colours_socket() -> None:
    # Each upstream names the symlink the app role's blue/green deploy swaps on a switch.
    text = site(inventory_hostname="app1", nginx_app_hosts=["app1"])
    assert "server unix:/etc/nginx/barestack-upstreams/backend.sock;" in text
    assert "server unix:/etc/nginx/barestack-upstreams/frontend.sock;" in text
    assert "include" not in text.split("server {")[0].split("upstream barestack_backend")[1]
    assert "gunicorn.sock" not in text
    assert "10.0.0." not in text


def test_app_on_other_hosts_goes_over_tcp_to_each() -> None:
    text = site(nginx_app_hosts=["app1", "app2"])
    assert "server 10.0.0.5:8001;" in text and "server 10.0.0.6:8001;" in text
    assert "server 10.0.0.5:8003;" in text
    assert "unix:" not in text
    # Over TLS, checked against the project CA and the app hosts' shared name.
    assert "http://" not in text
    assert "proxy_pass https://barestack_backend/;" in text
    assert "proxy_ssl_verify on;" in text
    assert "proxy_ssl_trusted_certificate /etc/ssl/barestack/ca.crt;" in text
    assert "proxy_ssl_name app.barestack.internal;" in text


def test_app_on_this_host_needs_no_tls() -> None:
    text = site(inventory_hostname="app1", nginx_app_hosts=["app1"])
    assert "proxy_pass http://barestack_backend/;" in text
    assert "proxy_ssl" not in text


def test_routes_strip_their_prefix_and_say_it() -> None:
    text = site(nginx_app_hosts=["app1"])
    api = text[text.index("location /api/ {") :]
    api = api[: api.index("}")]
    assert "proxy_pass https://barestack_backend/;" in api
    assert 'proxy_set_header X-Forwarded-Prefix "/api";' in api
    # A location with its own proxy_set_header must repeat the forwarding headers.
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in api
    assert "location = /infra {" in text


def test_site_listens_where_told_and_adds_security_headers() -> None:
    text = site(nginx_listen_port=8080)
    assert "listen 0.0.0.0:8080 default_server;" in text
    assert 'add_header X-Content-Type-Options "nosniff" always;' in text


def test_empty_header_value_drops_the_header() -> None:
    text = site(nginx_security_headers={"X-Frame-Options": "", "X-Test": "1"})
    assert "X-Frame-Options" not in text
    assert 'add_header X-Test "1" always;' in text


def test_gzip_follows_the_variable() -> None:
    assert "gzip on;" in site(nginx_gzip=True)
    off = site(nginx_gzip=False)
    assert "gzip off;" in off
    assert "gzip_types" not in off


def test_access_log_is_buffered_unless_told_not_to() -> None:
    app = {"nginx_app_hosts": ["web1"]}
    assert "access_log /var/log/nginx/access.log barestack_upstream buffer=64k flush=1s;" in site(**app)
    unbuffered = site(**app, nginx_access_log_buffer="")
    assert "access_log /var/log/nginx/access.log barestack_upstream;" in unbuffered


def test_answers_are_buffered_in_memory_up_to_the_variable() -> None:
    app = {"nginx_app_hosts": ["web1"]}
    text = site(**app)
    assert "proxy_buffer_size 16k;" in text and "proxy_buffers 32 16k;" in text
    text = site(**app, nginx_proxy_buffers="8 64k")
    assert "proxy_buffer_size 64k;" in text and "proxy_buffers 8 64k;" in text


def test_site_hides_the_version_and_caps_bodies() -> None:
    text = site(nginx_client_max_body_size="3m")
    assert "server_tokens off;" in text
    assert "client_max_body_size 3m;" in text


@pytest.mark.skipif(shutil.which("nginx") is None, reason="Debian's nginx is not installed")
def test_rendered_config_passes_nginx_t(tmp_path: Path) -> None:
    # App hosts elsewhere: the TLS upstream directives too, with a real CA certificate to load.
    ca = tmp_path / "ca.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(tmp_path / "ca.key"), "-out", str(ca), "-subj", "/CN=test CA", "-days", "2"],
        capture_output=True, check=True,
    )  # fmt: skip
    (tmp_path / "site.conf").write_text(
        site(nginx_placeholder_root=str(tmp_path), nginx_app_hosts=["app1"], nginx_app_tls_ca_file=str(ca))
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  gzip on;\n"
        f"  include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_writes_and_logins_are_rate_limited_but_not_the_app_hosts_own_calls() -> None:
    text = site(inventory_hostname="web1", nginx_app_hosts=["app1", "app2"])
    assert "limit_req_zone $barestack_write_key zone=barestack_writes:10m rate=5r/s;" in text
    assert "limit_req_zone $barestack_write_key zone=barestack_login:10m rate=10r/m;" in text
    assert "10.0.0.5 1;" in text  # an app host's address is exempt
    login = text[text.index("location = /login {") :]
    login = login[: login.index("}")]
    assert "limit_req zone=barestack_login" in login
    # An exact location must pass /login on unchanged, not the "/" a URI part would make of it.
    assert "proxy_pass https://barestack_frontend;" in login
    assert text.count("limit_req zone=barestack_writes") == 3


def test_snippet_files_go_into_the_server_block_in_name_order() -> None:
    snippets = {"20-b.conf": "add_header X-B b;\n", "10-a.conf": "location = /a {\n    return 204;\n}\n"}
    text = site(nginx_snippets=snippets)
    server = text[text.index("server {") :]
    assert server.index("# 10-a.conf") < server.index("# 20-b.conf")
    assert "    location = /a {\n        return 204;\n    }\n" in server
    assert "    add_header X-B b;\n" in server
