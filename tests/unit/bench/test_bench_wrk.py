"""wrk's summary parser (recorded outputs) and the load-target guard."""

from pathlib import Path

import pytest
from barestack_bench.wrk import (
    USER_AGENT,
    WrkError,
    WrkSettings,
    check_load_target,
    parse_wrk_output,
    wrk_argv,
)

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def test_interrupted_run_reports_what_it_did() -> None:
    result = parse_wrk_output(sample("wrk-interrupted.txt"))
    assert result.requests == 397
    assert result.duration_s == pytest.approx(4.12)
    assert result.requests_per_s == pytest.approx(96.46)
    assert result.percentile_ms(50) == pytest.approx(82.28)
    assert result.percentile_ms(99) == pytest.approx(122.91)
    assert result.failed == 0


def test_error_statuses_count_as_failed_and_microseconds_convert() -> None:
    result = parse_wrk_output(sample("wrk-non2xx.txt"))
    assert result.non_2xx_3xx == 1585 == result.failed
    assert result.percentile_ms(50) == pytest.approx(0.774)
    assert result.percentile_ms(99) == pytest.approx(6.74)


def test_timeouts_count_as_failed() -> None:
    result = parse_wrk_output(sample("wrk-timeouts.txt"))
    assert result.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 4}
    assert result.failed == 4


def test_no_summary_is_an_error() -> None:
    with pytest.raises(WrkError, match="no wrk summary"):
        parse_wrk_output(sample("wrk-connect-errors.txt"))


def test_missing_percentile_is_an_error() -> None:
    result = parse_wrk_output("  10 requests in 1.00s, 1KB read\nRequests/sec: 10.00\n")
    with pytest.raises(WrkError, match="99"):
        result.percentile_ms(99)


@pytest.mark.parametrize("url", ["http://10.213.0.7/api/health", "http://127.0.0.1:8100/", "http://[::1]/"])
def test_test_machines_and_loopback_may_be_loaded(url: str) -> None:
    check_load_target(url)


@pytest.mark.parametrize(
    "url",
    ["http://10.213.1.7/", "http://8.8.8.8/", "http://example.com/", "ftp://10.213.0.2/", "10.213.0.2"],
)
def test_anything_else_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"load target|refusing"):
        check_load_target(url)


def test_argv_is_bounded_and_tagged() -> None:
    argv = wrk_argv("http://10.213.0.2/", WrkSettings(threads=2, connections=32, timeout_s=5), 10)
    assert argv[1:] == [
        "--threads=2",
        "--connections=32",
        "--duration=10s",
        "--timeout=5s",
        f"--header=User-Agent: {USER_AGENT}",
        "--latency",
        "http://10.213.0.2/",
    ]


def test_settings_refuse_fewer_connections_than_threads() -> None:
    with pytest.raises(ValueError, match="threads"):
        WrkSettings(threads=4, connections=2)
