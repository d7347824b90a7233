"""`nox -s ci`: the local plan, GitHub's matrix, going on past failures, and the input-hash cache."""

from __future__ import annotations

import json
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


def summary_rows(stdout: str) -> list[tuple[str, str]]:
    """(session, result) of the last summary table, in its order."""
    table = stdout.split("-------\n")[-1].split("\ntotal")[0]
    return [(line.split()[0], line.split()[1]) for line in table.splitlines()]


def test_a_failing_session_fails_ci_and_the_others_still_run(repo):
    (repo / "docs" / "broken").write_text("x")
    result = run_ci(repo)
    assert result.returncode != 0
    assert sorted(runs(repo)) == ["docs", "env_keys", "lint"]
    # The table keeps the plan's order whatever finished first.
    assert summary_rows(result.stdout) == [("lint", "passed"), ("docs", "FAILED"), ("env_keys", "passed")]
    assert "1 of 3 ci session(s) failed: docs" in result.stderr + result.stdout
    # Each child's output is in its log; the failing one's tail is printed.
    log = repo / ".nox" / "artefacts" / "ci" / "docs.log"
    assert "docs are broken" in log.read_text()
    assert result.stdout.count("docs are broken") >= 1
    assert "2 passed, 1 failed, 0 skipped" in result.stdout.splitlines()


def test_unchanged_sessions_are_cached_and_an_edit_reruns_them(repo):
    assert run_ci(repo).returncode == 0
    assert sorted(runs(repo)) == ["docs", "env_keys", "lint"]  # in parallel: any order

    result = run_ci(repo)
    assert result.returncode == 0
    assert runs(repo) == []
    assert result.stdout.count("cached") >= 3
    # The words of the summary match the table's.
    assert "ci: 0 passed, 0 failed, 3 cached, 0 skipped" in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1] == "0 passed, 0 failed, 0 skipped"
    assert "skipped (`cached`)" in result.stdout

    (repo / "docs" / "index.md").write_text("# doc\n")  # one character: docs' input
    assert run_ci(repo).returncode == 0
    assert runs(repo) == ["docs"]

    (repo / "notes.txt").write_text("hello!\n")  # nobody's input
    assert run_ci(repo).returncode == 0
    assert runs(repo) == []

    (repo / "app.py").write_text("VALUE = 2\n")  # lint's input (**/*.py)
    assert run_ci(repo).returncode == 0
    assert runs(repo) == ["lint"]


def test_a_skipped_session_is_reported_as_skipped_and_never_cached(repo):
    """nox exits 0 for `session.skip` (compose_test without an engine): that is no green run."""
    noxfile = repo / "noxfile.py"
    noxfile.write_text(
        noxfile.read_text()
        + textwrap.dedent(
            """

            @nox.session(python=False, tags=["ci"])
            def engine(session):
                count("engine")
                session.skip("no container engine answers")
            """
        )
    )
    for _ in range(2):  # the second run must not take the skip from the cache
        result = run_ci(repo)
        assert result.returncode == 0, result.stdout + result.stderr
        assert ("engine", "skipped") in summary_rows(result.stdout)
        assert "no container engine answers" in result.stdout
        assert "engine" in runs(repo)
    assert result.stdout.splitlines()[-1] == "0 passed, 0 failed, 1 skipped"


def test_a_failed_run_is_never_cached(repo):
    (repo / "docs" / "broken").write_text("x")
    assert run_ci(repo).returncode != 0
    runs(repo)
    assert run_ci(repo).returncode != 0
    assert runs(repo) == ["docs"]  # lint and env_keys passed the first time and stay cached


def test_no_cache_and_ci_true_run_everything(repo):
    first = run_ci(repo)
    assert first.returncode == 0
    # Nothing was cached and no shard was planned: neither note is printed.
    assert "note:" not in first.stdout
    assert "ci: 3 passed, 0 failed, 0 cached, 0 skipped" in first.stdout.splitlines()
    runs(repo)
    assert run_ci(repo, "--no-cache").returncode == 0
    assert sorted(runs(repo)) == ["docs", "env_keys", "lint"]
    assert run_ci(repo, CI="true").returncode == 0
    assert sorted(runs(repo)) == ["docs", "env_keys", "lint"]


@pytest.mark.parametrize("args", [["-j", "0"], ["-j"], ["--jobs=x"]])
def test_a_bad_job_count_is_one_clear_line(repo, args):
    result = run_ci(repo, *args)
    assert result.returncode != 0
    assert "-j" in result.stderr
    assert "Traceback" not in result.stderr
    assert runs(repo) == []


def test_job_count_options():
    assert ci.parse_options(["-j", "3"]).jobs == 3
    assert ci.parse_options(["-j2", "--full"]) == ci.Options(full=True, jobs=2)
    assert ci.parse_options(["--jobs=4"]).jobs == 4
    assert ci.parse_options([]).jobs == 0  # the machine's cores
    assert ci.default_jobs() >= 1


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
    from noxlib.cache import NEVER_CACHED, SESSION_INPUTS

    result = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(REPO / "noxfile.py"), "-t", "ci", "-l", "--json"],
        cwd=REPO, env=dict(os.environ, NOX_SCRIPT_MODE="none"), capture_output=True, text=True, check=True,
    )  # fmt: skip
    import json

    sessions = json.loads(result.stdout)
    plan, _ = ci.local_plan(sessions, full=False)
    assert sorted(set(plan) - set(SESSION_INPUTS) - set(NEVER_CACHED)) == []
    assert not set(SESSION_INPUTS) & set(NEVER_CACHED)


# ----- parallel sessions, ordered where they must be -------------------------------------------
ORDER_NOXFILE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    import nox

    sys.path.insert(0, {repo!r})
    import noxlib.ci as local_ci
    from noxlib.errors import reported

    HERE = Path(__file__).parent


    def event(text):
        with open(HERE / "events.log", "a") as log:
            log.write(text + "\\n")


    def meet(me, other):
        # Passes only when the other session runs at the same time: proof of parallelism
        # without a timed assertion.
        (HERE / f"started-{{me}}").write_text("x")
        for _ in range(1200):
            if (HERE / f"started-{{other}}").exists():
                return
            time.sleep(0.05)
        raise SystemExit(f"{{other}} never ran beside {{me}}")


    def step(name):
        event("start " + name)
        time.sleep(0.3)
        event("end " + name)


    @nox.session(python=False)
    @reported
    def ci(session):
        local_ci.run(session, Path(__file__))


    @nox.session(python=False, tags=["ci", "shard"])
    def shard_a(session):
        event("start shard_a")
        meet("a", "b")
        event("end shard_a")


    @nox.session(python=False, tags=["ci", "shard"])
    def shard_b(session):
        event("start shard_b")
        meet("b", "a")
        event("end shard_b")


    @nox.session(python=False, tags=["ci", "report"])
    def coverage(session):
        step("coverage")


    @nox.session(python=False, tags=["ci", "frontend"])
    def front_one(session):
        step("front_one")


    @nox.session(python=False, tags=["ci", "frontend"])
    def front_two(session):
        step("front_two")
    """
)


@pytest.fixture
def order_repo(tmp_path: Path) -> Path:
    (tmp_path / "noxfile.py").write_text(ORDER_NOXFILE.format(repo=str(REPO)))
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def test_independent_sessions_run_side_by_side_and_ordered_ones_wait(order_repo):
    result = run_ci(order_repo, "--full", "--no-cache", "-j", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    events = (order_repo / "events.log").read_text().split("\n")
    # The report starts only after every shard has ended.
    assert events.index("start coverage") > max(events.index("end shard_a"), events.index("end shard_b"))
    # Sessions sharing apps/frontend never overlap.
    one, two = events.index("start front_one"), events.index("start front_two")
    first, second = ("front_one", "front_two") if one < two else ("front_two", "front_one")
    assert events.index(f"end {first}") < events.index(f"start {second}")
    assert [row[0] for row in summary_rows(result.stdout)] == [
        "shard_a", "shard_b", "coverage", "front_one", "front_two",
    ]  # fmt: skip
    assert "5 passed, 0 failed, 0 skipped" in result.stdout.splitlines()


def test_one_job_runs_one_session_at_a_time(order_repo):
    (order_repo / "started-b").write_text("x")  # shard_a need not meet shard_b: it cannot, with one job
    result = run_ci(order_repo, "--full", "--no-cache", "-j", "1")
    events = (order_repo / "events.log").read_text().split("\n")
    assert events.index("end shard_a") < events.index("start shard_b")
    assert result.returncode == 0, result.stdout


# ----- start order: the longest session first ------------------------------------------------
def test_the_longest_expected_session_starts_first_and_the_table_keeps_plan_order(repo):
    """With one job the start order is the run order: env_keys (longest on record) goes first."""
    (repo / ".nox").mkdir()
    (repo / ".nox" / ci.DURATIONS_NAME).write_text('{"env_keys": 90.0, "lint": 5.0, "docs": "hand-edited"}')
    result = run_ci(repo, "--no-cache", "-j", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert runs(repo) == ["env_keys", "lint", "docs"]
    assert [row[0] for row in summary_rows(result.stdout)] == ["lint", "docs", "env_keys"]
    # What this run took is on record for the next one, the bad entry replaced.
    recorded = json.loads((repo / ".nox" / ci.DURATIONS_NAME).read_text())
    assert set(recorded) == {"lint", "docs", "env_keys"}
    assert all(isinstance(seconds, float) for seconds in recorded.values())


def test_a_fresh_checkout_starts_the_sessions_that_take_minutes_first(tmp_path):
    plan = ["lint", "test", "coverage", "docs", "noxlib_test"]
    assert ci.start_order(plan, tmp_path) == ["noxlib_test", "test", "lint", "coverage", "docs"]


def test_the_suite_tests_never_overlap_a_session_that_builds_the_frontend():
    """Its journeys build and serve apps/frontend; two `next build`s in one checkout refuse each other."""
    sessions = [
        {"session": "frontend_build", "tags": ["ci", "frontend"]},
        {"session": "noxlib_test", "tags": ["ci"]},
        {"session": "lint", "tags": ["ci"]},
    ]
    groups = ci.exclusive_groups(["frontend_build", "noxlib_test", "lint"], sessions)
    assert groups == {"frontend_build": "frontend", "noxlib_test": "frontend"}
