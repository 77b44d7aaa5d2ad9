"""The requests part's bookkeeping: credentials for wrk, shares, sessions per 1,000, targets."""

import shlex
import stat
from pathlib import Path

import pytest
from barestack_bench.hello_world import GUNICORN_CONFIG, PYTHON, drop_in, nginx_conf, setup_script
from barestack_bench.parts.requests import ROUTES, Credentials, Measured, header_script, record
from barestack_bench.results import PartResult
from barestack_bench.wrk import WrkResult


def wrk(rps: float, p99: float, requests: int = 10_000) -> WrkResult:
    return WrkResult(requests, 10.0, rps, {50.0: p99 / 2, 99.0: p99}, 0)


def test_credentials_go_to_their_routes_only() -> None:
    credentials = Credentials(api_token="abc.DEF-123", infra_cookie="barestack_session=xyz")
    assert credentials.headers_for("/api/runs?limit=20") == {"Authorization": "Bearer abc.DEF-123"}
    assert credentials.headers_for("/infra/") == {"Cookie": "barestack_session=xyz"}
    assert credentials.headers_for("/") == {}
    assert Credentials().headers_for("/api/health") == {}
    with pytest.raises(ValueError, match="characters"):
        Credentials(api_token='x"; os.exit()')


def test_header_script_is_private_and_absent_without_headers(tmp_path: Path) -> None:
    assert header_script(tmp_path, "none", {}) is None
    script = header_script(tmp_path / "s", "api", {"Authorization": "Bearer t0k"})
    assert script is not None
    assert stat.S_IMODE(script.stat().st_mode) == 0o600
    assert 'wrk.headers["Authorization"] = "Bearer t0k"' in script.read_text()


def test_record_computes_shares_sessions_and_targets() -> None:
    samples = {("baseline", 8): [Measured(wrk(1000, 10), 0)], ("baseline", 32): [Measured(wrk(1200, 40), 0)]}
    for key in ROUTES:
        samples[(key, 8)] = [Measured(wrk(600, 20), 0)]
        samples[(key, 32)] = [Measured(wrk(600, 80), 3)]
    samples[("infra_page", 32)] = [Measured(wrk(200, 300), 0)]  # 17% and a p99 the goal exempts
    result = PartResult("requests", "t")
    record(result, samples, (8, 32))
    targets = {target.key: target for target in result.targets}
    assert targets["api_health_share"].met and targets["api_health_share"].measured == "60% / 50%"
    assert not targets["infra_page_share"].met
    assert "infra_page_p99" not in targets
    assert targets["api_modules_p99"].met
    # 3 sessions in 10,000 requests = 0.3 per 1,000
    assert targets["postgres_sessions"].met and targets["postgres_sessions"].measured.startswith("0.30")
    shares = {comparison.key: comparison.value for comparison in result.comparisons}
    assert shares["frontend_index_8_share"] == pytest.approx(60.0)


def test_baseline_runs_the_backend_unit_with_only_app_and_socket_swapped() -> None:
    script = setup_script(8100)
    # A verbatim copy of the template unit, started as the live colour; no sed of it.
    assert "install -m 0644 /etc/systemd/system/barestack-backend@.service" in script and "sed " not in script
    assert 'systemctl start "bench-hello@$colour.service"' in script
    # The drop-in replaces ExecStart only: the backend's gunicorn config, the hello app, its socket.
    override = drop_in()
    assert override.count("ExecStart=") == 2 and "ExecStart=\n" in override
    assert (
        "ExecStart=/srv/barestack/instances/backend@%i/venvs/backend/_service/bin/python -m gunicorn"
        " -c /etc/barestack/gunicorn-backend.conf.py --bind unix:/run/barestack/backend/bench-hello.sock"
        " --pythonpath /run/bench-hello bench_hello:app\n"
    ) in override
    assert shlex.quote(override) in script
    conf = nginx_conf(8100)
    assert "listen 8100;" in conf and "keepalive 16;" in conf and 'proxy_set_header Connection "";' in conf


def test_baseline_runs_what_the_role_s_unit_runs_but_the_app_and_socket() -> None:
    """The drop-in's ExecStart is the role's own (rendered with the role's default paths), the
    socket and app swapped: a change of the unit's command line shows here, not in a bench run."""
    from ..templates.render import render
    from ..templates.test_app_gunicorn import variables

    unit = render("app", "barestack-web@.service.j2", **variables())
    command = unit.split("\nExecStart=", 1)[1].split("\nKillMode", 1)[0].replace("\\\n", " ")
    role_argv = shlex.split(command)
    assert role_argv == [PYTHON, "-m", "gunicorn", "-c", GUNICORN_CONFIG, "barestack_backend.wsgi:app"]
    hello_argv = shlex.split(drop_in().rsplit("ExecStart=", 1)[1])
    options = ["--bind", "unix:/run/barestack/backend/bench-hello.sock", "--pythonpath", "/run/bench-hello"]
    assert hello_argv == [*role_argv[:-1], *options, "bench_hello:app"]
