"""Normalising requirement files: equal sets hash equally, unsupported lines are refused clearly."""

from pathlib import Path

import pytest
from venvmgr.discovery import RequirementsError, canonical_name, parse_requirements, read_requirements


def test_order_comments_spacing_and_case_do_not_matter() -> None:
    messy = "# pinned for the report\n\nRedis == 8.1.0   # client\nPackaging==24.2\n\n"
    tidy = "packaging==24.2\nredis==8.1.0\n"
    assert (
        parse_requirements(messy, "a") == parse_requirements(tidy, "b") == ("packaging==24.2", "redis==8.1.0")
    )


def test_names_are_pep503_normalised_and_duplicates_merge() -> None:
    assert canonical_name("Typing_Extensions") == "typing-extensions"
    assert parse_requirements("typing_extensions==4.12.2\nTyping-Extensions==4.12.2\n", "x") == (
        "typing-extensions==4.12.2",
    )


def test_extras_specifier_clauses_and_markers_are_canonical() -> None:
    parsed = parse_requirements("Flask[Dotenv,async] >=3.0, <4 ; python_version  >= '3.11'\n", "x")
    assert parsed == ("flask[async,dotenv]<4,>=3.0; python_version >= '3.11'",)


def test_continuation_lines_are_joined() -> None:
    assert parse_requirements("packaging\\\n==24.2\n", "x") == ("packaging==24.2",)


def test_hash_sign_inside_a_token_is_not_a_comment() -> None:
    # pip only treats "#" as a comment at line start or after whitespace.
    with pytest.raises(RequirementsError, match="line 1"):
        parse_requirements("packaging==24.2#oops\n", "x")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--index-url https://example.org/simple", "option '--index-url' is not supported"),
        ("-r other.txt", "option '-r' is not supported"),
        ("-e ./local", "option '-e' is not supported"),
        ("pkg @ https://example.org/pkg.whl", "direct URL or path"),
        ("./wheels/pkg.whl", "direct URL or path"),
        ("packaging=24.2", "bad version specifier"),
        ("packaging==", "bad version specifier"),
        ("???", "cannot parse"),
    ],
)
def test_unsupported_lines_name_file_and_line(line: str, message: str) -> None:
    with pytest.raises(RequirementsError) as raised:
        parse_requirements(f"packaging==24.2\n{line}\n", "backend/a-009/requirements.txt")
    assert message in str(raised.value)
    assert str(raised.value).startswith("backend/a-009/requirements.txt line 2: ")


def test_missing_or_empty_file_means_no_requirements(tmp_path: Path) -> None:
    assert read_requirements(None) == ()
    assert read_requirements(tmp_path / "requirements.txt") == ()
    (tmp_path / "requirements.txt").write_text("# nothing needed\n")
    assert read_requirements(tmp_path / "requirements.txt") == ()


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(RequirementsError, match="cannot read"):
        read_requirements(tmp_path / "requirements.txt")
