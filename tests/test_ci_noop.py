"""`nox -s ci` when little or nothing changed: the work a cached run leaves out must not change its answer.

A run where every session is cached once cost a second nox to list the sessions, a dozen reads of
the same files and `node --version`s, and a nox started only to skip compose_test. These check
that what replaced them still sees every change: a session added to the noxfile, a session's own
skip, one tool version per run that is still part of each hash.
"""

from __future__ import annotations

import os
import textwrap

from noxlib.ci import cache
from noxlib.ci.cache import CiCache, input_hash
from noxlib.ci.listing import LISTING_NAME
from tests import test_ci as ci_tests
from tests.test_ci import run_ci, runs, summary_rows

# The small repository with its own noxfile, and the declarations of one test, as in test_ci.py.
repo = ci_tests.repo
declared = ci_tests.declared

ADDED_SESSION = """

@declared_session(python=False, tags=["ci"], inputs=["README.md"])
def added(session):
    count("added")
"""

ENGINE_SESSIONS = """

@declared_session(python=False, tags=["ci"], skip_reason=lambda: "no container engine answers here")
def engine(session):
    count("engine")


@declared_session(python=False, tags=["ci"], inputs=["README.md"], skip_reason=lambda: None)
def engine_here(session):
    count("engine_here")
"""


def test_a_session_added_to_the_noxfile_is_planned_at_once(repo):
    """The ci list is kept between runs: a change to the noxfile must list it afresh."""
    assert run_ci(repo).returncode == 0
    assert (repo / ".nox" / LISTING_NAME).is_file()
    assert sorted(runs(repo)) == ["docs", "env_keys", "lint"]
    noxfile = repo / "noxfile.py"
    noxfile.write_text(noxfile.read_text() + ADDED_SESSION)
    result = run_ci(repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "added" in runs(repo)  # (the noxfile is every session's input: they all run again)
    assert ("added", "passed") in summary_rows(result.stdout)


def test_a_session_s_own_skip_check_is_asked_without_starting_it_and_never_cached(repo):
    noxfile = repo / "noxfile.py"
    noxfile.write_text(noxfile.read_text() + ENGINE_SESSIONS)
    for _ in range(2):  # the second run must not take the skip from the cache
        result = run_ci(repo)
        assert result.returncode == 0, result.stdout + result.stderr
        assert ("engine", "skipped") in summary_rows(result.stdout)
        assert "no container engine answers here" in result.stdout
        assert "engine" not in runs(repo)  # its nox never started: it would have counted itself
    assert ("engine_here", "cached") in summary_rows(result.stdout)  # a check that says go: it ran, then cached
    assert result.stdout.splitlines()[-1] == "0 passed, 0 failed, 1 skipped"


def test_a_run_asks_each_tool_its_version_once_and_each_hash_is_the_one_alone(
    repo,
    declared,
    tmp_path,
    monkeypatch,
):
    """Shared reads in one run give every session the hash it would get on its own."""
    tools = tmp_path / "bin"
    tools.mkdir()
    asked = tmp_path / "asked.log"
    (tools / "sometool").write_text(f"#!/bin/sh\necho asked >> {asked}\necho sometool 1.0\n")
    (tools / "sometool").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    declared("lint", inputs=("**/*.py",), tools=("sometool",))
    declared("docs", inputs=("docs/**", "README.md"), tools=("sometool",))
    run = CiCache(root=repo)
    hashes = {name: run.hash_for(name) for name in ("lint", "docs")}
    assert asked.read_text().splitlines() == ["asked"]
    assert hashes == {name: input_hash(name, repo) for name in ("lint", "docs")}
    assert hashes["lint"] != hashes["docs"]
    (tools / "sometool").write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo asked >> {asked}
        echo sometool 2.0
    """))  # fmt: skip
    assert CiCache(root=repo).hash_for("lint") != hashes["lint"]  # a new run sees the new version


def test_the_shared_reads_see_a_file_of_every_session(repo, declared):
    declared("lint", inputs=("**/*.py",))
    declared("docs", inputs=("docs/**", "README.md"))
    snapshot = cache.InputSnapshot(repo)
    assert "app.py" in snapshot.input_files("lint")
    assert "docs/index.md" in snapshot.input_files("docs")
    assert "app.py" not in snapshot.input_files("docs")
    assert "noxfile.py" in snapshot.input_files("docs")  # a common input
