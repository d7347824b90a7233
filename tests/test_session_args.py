"""Every session reads its arguments one way: an unknown one is refused in one line, `--help` starts nothing."""

from __future__ import annotations

import pytest

from noxlib import infra
from noxlib.errors import UserError
from noxlib.session_args import check, parser_for
from tests.runs import run_nox

TRACEBACK = "Traceback (most recent call last)"


def test_an_unknown_or_abbreviated_option_is_one_line_naming_the_session():
    parser = parser_for("down", "Stop the services.", infra.down_options)
    assert parser.parse_args(["--force"]).force
    for wrong in (["--forse"], ["--forc"], ["extra"]):
        with pytest.raises(UserError) as refused:
            parser.parse_args(wrong)
        assert str(refused.value).startswith("nox -s down --: ")
        assert "\n" not in str(refused.value)


def test_a_session_that_takes_nothing_refuses_anything_and_help_only_prints(capsys):
    with pytest.raises(UserError, match=r"nox -s lint_shell --: unrecognized arguments: --fix"):
        check("lint_shell", "Lint the shell scripts with shellcheck.", None, ["--fix"])
    assert check("lint_shell", "Lint the shell scripts with shellcheck.", None, []) is True
    assert check("lint_shell", "Lint the shell scripts with shellcheck.", None, ["--help"]) is False
    printed = capsys.readouterr().out
    assert printed.startswith("usage: nox -s lint_shell --")
    assert "Lint the shell scripts with shellcheck." in printed


@pytest.mark.parametrize("session", ["down", "infra", "ci", "lint_shell"])
def test_a_mistyped_option_stops_the_real_session_in_one_line_before_it_starts_anything(session, tmp_path):
    """`nox -s down -- --forse` used to stop the services as if nothing had been typed."""
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    result = run_nox("-s", session, "--", "--forse", FR_CACHE_DIR=str(state))
    assert result.returncode != 0, result.stdout
    said = [line for line in result.stdout.splitlines() if "unrecognized arguments: --forse" in line]
    assert len(said) == 1, result.stdout
    assert f"nox -s {session} --: unrecognized arguments: --forse" in said[0]
    assert TRACEBACK not in result.stdout
    assert list(state.iterdir()) == [], "nothing may start before the arguments are checked"


@pytest.mark.parametrize(("session", "expected"), [("down", "--prune-foreign"), ("infra", "usage: nox -s infra --"),
                                                   ("test", "--cov"), ("boot", "dry-run")])  # fmt: skip
def test_help_prints_what_the_session_takes_and_starts_nothing(session, expected, tmp_path):
    """`test -- --help` created three databases to print pytest's help; `down -- --help` ran down."""
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    result = run_nox("-s", session, "--", "--help", FR_CACHE_DIR=str(state))
    assert result.returncode == 0, result.stdout
    assert expected in result.stdout
    assert TRACEBACK not in result.stdout
    assert list(state.iterdir()) == [], "no service, lease or database for --help"
