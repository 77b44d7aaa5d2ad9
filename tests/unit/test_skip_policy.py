"""tests/conftest.py's skip policy, run on small throwaway suites in a pytest of their own."""

from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
EXPLAINED = "cannot run here: needs root (make test runs as root)"


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    return pytester


def test_an_unexplained_skip_fails_the_run_after_every_test_ran(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_a="""
        import pytest

        def test_passes():
            pass

        def test_skips_unexplained():
            pytest.skip("PostgreSQL binaries not found")

        def test_passes_after():
            pass
        """
    )
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "skipped: 1 (0 explained, 1 unexplained)",
            "UNEXPLAINED SKIP test_a.py::test_skips_unexplained: PostgreSQL binaries not found",
            "FAILED: 1 unexplained skip(s)*",
        ]
    )


def test_explained_skips_are_counted_and_pass(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_b=f"""
        import pytest

        def test_passes():
            pass

        def test_skips_explained():
            pytest.skip("{EXPLAINED}: a detail")

        @pytest.mark.skipif(True, reason="{EXPLAINED}")
        def test_skipif_explained():
            pass

        @pytest.mark.xfail(reason="a known bug, not a skip")
        def test_xfail():
            assert False
        """
    )
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=2, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["skipped: 2 (2 explained, 0 unexplained)"])


def test_a_skip_at_collection_and_a_reason_that_only_mentions_the_marker_fail(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_c="""
        import pytest

        pytest.skip("no module for this", allow_module_level=True)
        """,
        test_d="""
        import pytest

        def test_vague():
            pytest.skip("cannot run here: for some reason")
        """,
    )
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["skipped: 2 (0 explained, 2 unexplained)"])
    result.stdout.fnmatch_lines(["UNEXPLAINED SKIP test_c.py: no module for this"])
    result.stdout.fnmatch_lines(["UNEXPLAINED SKIP test_d.py::test_vague: cannot run here: for some reason"])
