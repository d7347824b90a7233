"""The README's session table says what `nox -l` says: every session, its docstring, its tags."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| `(?P<name>[^`]+)` \| (?P<description>.*?) \| (?P<tags>[^|]*)\|$")


def listed_sessions() -> dict[str, tuple[str, str]]:
    result = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(REPO / "noxfile.py"), "-k", "not __no_such_session__", "-l", "--json"],
        cwd=REPO, env=dict(os.environ, NOX_SCRIPT_MODE="none"), capture_output=True, text=True, check=True,
    )  # fmt: skip
    sessions: dict[str, tuple[str, str]] = {}
    for entry in json.loads(result.stdout):
        sessions.setdefault(entry["name"], (entry["description"], ", ".join(entry["tags"])))
    return sessions


def readme_sessions() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in (REPO / "README.md").read_text().splitlines():
        if match := ROW.match(line):
            rows[match["name"]] = (match["description"], match["tags"].strip())
    return rows


def test_readme_table_matches_nox_list():
    assert readme_sessions() == listed_sessions()


def test_readme_quick_start_is_the_two_commands_and_ci_runs_the_test_command():
    readme = (REPO / "README.md").read_text()
    assert "uvx nox -s dev" in readme
    assert "uvx nox -s ci" in readme
    # .ci/run calls uvx by its resolved path ("$uvx"), with exactly the README's arguments.
    assert re.search(r'^"\$uvx" nox -s ci$', (REPO / ".ci" / "run").read_text(), re.MULTILINE)
