"""`nox -s ci`: the local plan, GitHub's matrix, going on past failures, and the input-hash cache."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from noxlib import ci
from noxlib.cache import CiCache, cache_disabled, input_hash

REPO = Path(__file__).resolve().parent.parent

SESSIONS = [
    {"session": "lint", "python": "3.12", "tags": ["ci"]},
    {"session": "test-3.12(shard='1/2')", "python": "3.12", "tags": ["ci", "shard"]},
    {"session": "test-3.12(shard='2/2')", "python": "3.12", "tags": ["ci", "shard"]},
    {"session": "test-3.13(shard='1/2')", "python": "3.13", "tags": ["ci", "shard"]},
    {"session": "coverage", "python": "3.12", "tags": ["ci", "report"]},
    {"session": "frontend_lint", "python": False, "tags": ["ci", "frontend"]},
]


def test_local_plan_runs_shards_as_one_unsharded_test():
    plan, notes = ci.local_plan(SESSIONS, full=False)
    assert plan == ["lint", "test", "coverage", "frontend_lint"]
    assert "3 test shards" in notes[0]


def test_full_plan_is_every_ci_session():
    plan, notes = ci.local_plan(SESSIONS, full=True)
    assert plan == [entry["session"] for entry in SESSIONS]
    assert notes == []


def test_matrix_leaves_reports_to_their_own_job():
    matrix = ci.github_matrix(SESSIONS)
    assert [entry["session"] for entry in matrix["include"]] == [
        "lint", "test-3.12(shard='1/2')", "test-3.12(shard='2/2')", "test-3.13(shard='1/2')", "frontend_lint",
    ]  # fmt: skip
    assert matrix["include"][-1]["python"] is None


def test_ci_never_skips_on_github():
    assert cache_disabled([], {"CI": "true"})
    assert cache_disabled(["--no-cache"], {})
    assert cache_disabled([], {}) is None


# ----- a small repository with its own noxfile, driven through the real `nox -s ci` -------------
NOXFILE = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import nox

    sys.path.insert(0, {repo!r})
    import noxlib.ci as local_ci
    from noxlib.errors import reported

    HERE = Path(__file__).parent


    def count(name):
        with open(HERE / "runs.log", "a") as log:
            log.write(name + "\\n")


    @nox.session(python=False)
    @reported
    def ci(session):
        local_ci.run(session, Path(__file__))


    @nox.session(python=False, tags=["ci"])
    def lint(session):
        count("lint")


    @nox.session(python=False, tags=["ci"])
    def docs(session):
        count("docs")
        if (HERE / "docs" / "broken").exists():
            session.error("docs are broken")


    @nox.session(python=False, tags=["ci"])
    def env_keys(session):
        count("env_keys")
    """
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "noxfile.py").write_text(NOXFILE.format(repo=str(REPO)))
    (tmp_path / "app.py").write_text("VALUE = 1\n")
    (tmp_path / "README.md").write_text("hello\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# docs\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def run_ci(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "VIRTUAL_ENV")}
    environ.update(env, NOX_SCRIPT_MODE="none")
    return subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(repo / "noxfile.py"), "-s", "ci", "--", *args],
        cwd=repo, env=environ, capture_output=True, text=True, check=False,
    )  # fmt: skip


def runs(repo: Path) -> list[str]:
    path = repo / "runs.log"
    lines = path.read_text().split() if path.exists() else []
    path.unlink(missing_ok=True)
    return lines


def test_a_failing_session_fails_ci_and_the_others_still_run(repo):
    (repo / "docs" / "broken").write_text("x")
    result = run_ci(repo)
    assert result.returncode != 0
    assert runs(repo) == ["lint", "docs", "env_keys"]
    summary = result.stdout
    assert "docs            FAILED" in summary or "docs      FAILED" in summary or "FAILED" in summary
    assert "1 of 3 ci session(s) failed: docs" in result.stderr + result.stdout


def test_unchanged_sessions_are_cached_and_an_edit_reruns_them(repo):
    assert run_ci(repo).returncode == 0
    assert runs(repo) == ["lint", "docs", "env_keys"]

    result = run_ci(repo)
    assert result.returncode == 0
    assert runs(repo) == []
    assert result.stdout.count("cached") >= 3

    (repo / "docs" / "index.md").write_text("# doc\n")  # one character: docs' input
    assert run_ci(repo).returncode == 0
    assert runs(repo) == ["docs"]

    (repo / "notes.txt").write_text("hello!\n")  # nobody's input
    assert run_ci(repo).returncode == 0
    assert runs(repo) == []

    (repo / "app.py").write_text("VALUE = 2\n")  # lint's input (**/*.py)
    assert run_ci(repo).returncode == 0
    assert runs(repo) == ["lint"]


def test_a_failed_run_is_never_cached(repo):
    (repo / "docs" / "broken").write_text("x")
    assert run_ci(repo).returncode != 0
    runs(repo)
    assert run_ci(repo).returncode != 0
    assert runs(repo) == ["docs"]  # lint and env_keys passed the first time and stay cached


def test_no_cache_and_ci_true_run_everything(repo):
    assert run_ci(repo).returncode == 0
    runs(repo)
    assert run_ci(repo, "--no-cache").returncode == 0
    assert runs(repo) == ["lint", "docs", "env_keys"]
    assert run_ci(repo, CI="true").returncode == 0
    assert runs(repo) == ["lint", "docs", "env_keys"]


def test_unknown_option_is_one_clear_line(repo):
    result = run_ci(repo, "--fast")
    assert result.returncode != 0
    assert "unknown option --fast" in result.stderr
    assert "Traceback" not in result.stderr


def test_input_hash_sees_one_character_and_ignores_the_rest(repo):
    files = ["app.py", "docs/index.md", "README.md"]
    before = input_hash("lint", files, repo)
    (repo / "README.md").write_text("changed\n")
    assert input_hash("lint", files, repo) == before
    assert input_hash("docs", files, repo) != input_hash("docs", ["app.py"], repo)
    (repo / "app.py").write_text("VALUE = 3\n")
    assert input_hash("lint", files, repo) != before
    assert input_hash("no_such_session", files, repo) is None


def test_cache_records_only_green_runs(repo):
    cache = CiCache(root=repo, files=["app.py"])
    current = cache.hash_for("lint")
    cache.record("lint", current, passed=False)
    assert not cache.is_fresh("lint", current)
    cache.record("lint", current, passed=True)
    assert cache.is_fresh("lint", current)
    cache.record("lint", current, passed=False)
    assert not cache.is_fresh("lint", current)


def test_every_ci_session_declares_its_inputs():
    from noxlib.cache import SESSION_INPUTS

    result = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(REPO / "noxfile.py"), "-t", "ci", "-l", "--json"],
        cwd=REPO, env=dict(os.environ, NOX_SCRIPT_MODE="none"), capture_output=True, text=True, check=True,
    )  # fmt: skip
    import json

    sessions = json.loads(result.stdout)
    plan, _ = ci.local_plan(sessions, full=False)
    assert sorted(set(plan) - set(SESSION_INPUTS)) == []
