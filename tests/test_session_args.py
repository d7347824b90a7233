"""Every session reads its arguments one way: an unknown one is refused in one line, `--help` starts nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from noxlib.ci.arguments import check, parser_for
from noxlib.core.errors import UserError
from noxlib.sessions import infra
from tests.runs import REPO, run_nox

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


@pytest.mark.parametrize(
    ("session", "expected"),
    [("down", "--prune-foreign"), ("infra", "usage: nox -s infra --"), ("test", "--cov"), ("boot", "dry-run"),
     ("dev", "usage: nox -s dev -- [-h] [--frontend]"), ("smoke", "usage: nox -s smoke --"),
     ("frontend_dev", "usage: nox -s frontend_dev --")],
)  # fmt: skip
def test_help_prints_what_the_session_takes_and_starts_nothing(session, expected, tmp_path):
    """`test -- --help` created three databases to print pytest's help; `down -- --help` ran down."""
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    result = run_nox("-s", session, "--", "--help", FR_CACHE_DIR=str(state))
    assert result.returncode == 0, result.stdout
    assert expected in result.stdout
    assert TRACEBACK not in result.stdout
    assert list(state.iterdir()) == [], "no service, lease or database for --help"


# ----- every session `nox -l` lists --------------------------------------------------------------
# The sessions whose body hands `--help` to a tool of their own (pytest, mypy, the smoke and env-key
# command lines) rather than to the parser `@session(options=...)` declares; each prints that
# tool's usage and returns before its first service (the real runs above and below).
TOOL_HELP = {
    "test": "forwarded", "test-3.12": "forwarded", "test-3.13": "forwarded", "typecheck": "forwarded",
    "noxlib_test": "forwarded", "noxlib_test_shard": "forwarded", "journeys": "forwarded",
    "journeys_backend": "forwarded", "journeys_selection": "forwarded", "compose_test": "forwarded",
    "docs_check": "forwarded", "smoke": "own", "env_keys": "own",
}  # fmt: skip
HELP_OF_EVERY_SESSION = """
import contextlib, io, json, runpy, sys
runpy.run_path("noxfile.py")
from noxlib.ci.arguments import DECLARED, check
found = {}
for name, (description, options) in DECLARED.items():
    if options in ("forwarded", "own"):
        found[name] = {"kind": options}
        continue
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        goes_on = check(name, description, options, ["--help"])
    found[name] = {"kind": "parsed", "goes_on": goes_on, "printed": printed.getvalue()}
print(json.dumps(found))
"""


def test_every_session_nox_lists_declares_what_it_takes_and_help_stops_before_its_body():
    """`dev -- --help` started the app (13 minutes until interrupted): no session may run its body for --help."""
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-k", "not __no_such_session__", "-l", "--json"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    names = {entry["name"] for entry in json.loads(listed.stdout)}
    result = subprocess.run(
        [sys.executable, "-c", HELP_OF_EVERY_SESSION], cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    declared = json.loads(result.stdout.splitlines()[-1])
    assert set(declared) == names, "every listed session is declared through noxlib's @session"
    assert {name: entry["kind"] for name, entry in declared.items() if entry["kind"] != "parsed"} == TOOL_HELP
    for name, entry in declared.items():
        if entry["kind"] == "parsed":
            assert entry["goes_on"] is False, f"{name}: --help went on into the session's body"
            assert entry["printed"].startswith(f"usage: nox -s {name} --"), entry["printed"]
