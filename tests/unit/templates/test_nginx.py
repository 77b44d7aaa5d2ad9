from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .render import ROLES, render

DEFAULTS = yaml.safe_load((ROLES / "nginx" / "defaults" / "main.yml").read_text())


def site(**overrides: object) -> str:
    return render("nginx", "barestack-site.conf.j2", **{**DEFAULTS, **overrides})


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


def test_http_context_hides_the_version() -> None:
    text = render("nginx", "barestack-http.conf.j2", **DEFAULTS)
    assert "server_tokens off;" in text


@pytest.mark.skipif(shutil.which("nginx") is None, reason="Debian's nginx is not installed")
def test_rendered_config_passes_nginx_t(tmp_path: Path) -> None:
    (tmp_path / "http.conf").write_text(render("nginx", "barestack-http.conf.j2", **DEFAULTS))
    (tmp_path / "site.conf").write_text(site(nginx_placeholder_root=str(tmp_path)))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  gzip on;\n"
        f"  include {tmp_path}/http.conf;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
