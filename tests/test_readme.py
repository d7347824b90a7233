"""The README's session table says what `nox -l` says: every session, its docstring, its tags."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runs import DOCS_SUBSET_EXAMPLE, NO_PYTHON_312

REPO = Path(__file__).resolve().parent.parent
# The docs_check session: a docs edit re-runs these, never noxlib_test or the journeys.
pytestmark = pytest.mark.docs
ROW = re.compile(r"^\| `(?P<name>[^`]+)` \| (?P<description>.*?) \| (?P<tags>[^|]*)\|$")


def listed_sessions() -> dict[str, tuple[str, str]]:
    result = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(REPO / "noxfile.py"), "-k", "not __no_such_session__", "-l", "--json"],
        cwd=REPO, capture_output=True, text=True, check=True,
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


# ----- every `nox -s …` example the docs show --------------------------------------------------
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# `nox -s NAME` or `nox -s "NAME(param)"`, then optionally `-- ARGS` up to the end of the code span,
# a shell comment or a table cell.
# A comma ends the arguments too: bench output quotes commands as "nox -s docs -- build, warm".
EXAMPLE = re.compile(r"""\bnox (?:-R )?-s (?P<name>"[^"]+"|[\w.\-]+)(?: -- (?P<args>[^`#|,\n]*))?""")
INNER_ENVDIR = Path(os.environ.get("FR_SUITE_NOX_ENVDIR", str(REPO / ".nox" / "suite-envs")))


def documented_examples() -> list[tuple[str, str, list[str]]]:
    """(document, session, its arguments) for every `nox -s` command in README.md and docs/."""
    found = []
    for document in DOCUMENTS:
        for match in EXAMPLE.finditer(document.read_text()):
            name = match["name"].strip('"')
            args = (match["args"] or "").split()
            found.append((document.name, name, args))
    return found


@functools.cache
def listed_names() -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(REPO / "noxfile.py"), "-k", "not __no_such_session__", "-l", "--json"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    entries = json.loads(result.stdout)
    return {entry["session"] for entry in entries} | {entry["name"] for entry in entries}


@functools.cache
def pytest_help() -> str:
    """`pytest --help` of the backend's test venv: pytest with every plugin `nox -s test` has."""
    pytest_bin = INNER_ENVDIR / "test" / "bin" / "pytest"
    if not pytest_bin.exists():
        pytest.skip(f"{pytest_bin} is prepared by `nox -s noxlib_test`; run the suite through it")
    return subprocess.run(
        [str(pytest_bin), "--help"], cwd="/", capture_output=True, text=True, check=True
    ).stdout  # fmt: skip


def check_pytest_args(args: list[str]) -> None:
    """Every option is one the test venv's pytest knows; every -k selects a recorded test."""
    from noxlib.sessions.backend_tests import DURATIONS_FILE

    recorded = [node.lower() for node in json.loads(DURATIONS_FILE.read_text())]
    for position, arg in enumerate(args):
        if arg.startswith("-"):
            assert re.search(rf"(^|[ ,]){re.escape(arg.split('=', 1)[0])}([ =,]|$)", pytest_help(), re.M), arg
        if arg == "-k":
            expression = args[position + 1]
            assert re.fullmatch(r"\w+", expression), f"-k {expression}: keep the docs' example a single word"
            assert any(expression.lower() in node for node in recorded), f"-k {expression} selects no test"


def check_session_args(name: str, args: list[str]) -> None:
    """The session's own parser (the one its `@session(options=...)` declares) accepts what the example passes."""
    from noxlib import env_keys
    from noxlib.ci import audit
    from noxlib.ci import runner as ci
    from noxlib.ci.arguments import parser_for
    from noxlib.sessions import api_contract, docs, infra, perf, stack
    from noxlib.sessions.bench import add_options as bench_options
    from noxlib.smoke import cli as smoke

    declared = {
        "dev": stack.dev_options, "boot": stack.boot_options, "down": infra.down_options,
        "api_types": api_contract.add_options, "docs": docs.add_options, "bench": bench_options,
        "ci": ci.add_options, "audit_inputs": audit.add_options, "perf": perf.add_options,
    }  # fmt: skip
    base = name.split("(")[0]
    if base in ("test", "noxlib_test") or base.startswith("test-"):
        check_pytest_args(args)  # the suite's pytest has the same plugins for what the docs show
    elif base == "smoke":
        smoke.parse_arguments([arg.replace("https://…", "https://report.example.com") for arg in args])
    elif base == "env_keys":
        env_keys.build_parser().parse_args(args)
    elif base in declared:
        # `-j N` stands for a number; `--before REF` for a commit.
        parser_for(base, "", declared[base]).parse_args(["2" if arg == "N" else arg for arg in args])
    elif base == "typecheck":
        # mypy's own arguments: the files or directories to check.
        assert all((REPO / arg).exists() for arg in args), args
    else:
        assert args == [], f"nox -s {name} takes no arguments in the docs' examples, got {args}"


def test_the_docs_show_examples_for_the_everyday_sessions():
    names = {name for _, name, _ in documented_examples()}
    assert {"dev", "test", "ci", "smoke", "docs", "down", "boot", "env_keys"} <= names


# On one xdist worker: each worker would otherwise start its own `nox -l` and `pytest --help`
# (cached per process), which cost more than all the examples' checks together.
@pytest.mark.xdist_group("documented_commands")
@pytest.mark.parametrize(
    ("document", "name", "args"),
    [pytest.param(*example, id=f"{example[0]}: nox -s {example[1]} {' '.join(example[2])}".strip())
     for example in dict.fromkeys(map(lambda e: (e[0], e[1], tuple(e[2])), documented_examples()))],
)  # fmt: skip
def test_every_documented_nox_command_names_a_session_and_passes_accepted_arguments(document, name, args):
    if "<" in name:
        pytest.skip(f"{name} is a placeholder")
    assert name in listed_names(), f"{document}: `nox -s {name}` names no session of `nox -l`"
    check_session_args(name, list(args))


# ----- facts the journeys prove of the tool, found in the docs ------------------------------------
def test_the_subset_example_the_journey_runs_is_the_one_the_docs_show():
    """tests/test_journeys.py runs `nox -s test -- DOCS_SUBSET_EXAMPLE`; the docs must show exactly that."""
    command = f"`nox -s test -- {' '.join(DOCS_SUBSET_EXAMPLE)}`"
    assert command in (REPO / "docs" / "development.md").read_text(), command


def test_the_line_of_a_missing_python_312_has_its_fix_in_the_docs_and_readme():
    """The journey with only Python 3.11 around proves `uvx nox` ends with this line; a reader finds the fix."""
    rows = [row for row in (REPO / "docs" / "development.md").read_text().splitlines() if row.startswith("| `")]
    troubleshooting = [row for row in rows if row.startswith(f"| `{NO_PYTHON_312}`")]
    assert len(troubleshooting) == 1, f"docs/development.md has no troubleshooting row for {NO_PYTHON_312!r}"
    assert "`uv python install 3.12`" in troubleshooting[0]
    readme = (REPO / "README.md").read_text()
    assert 'No Python satisfies "requires-python"' in readme
    assert "`uv python install 3.12`" in readme
