"""`nox -s ci`: the local plan, GitHub's matrix, going on past failures, and the input-hash cache."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nox
import psutil
import pytest

from noxlib.ci import cache
from noxlib.ci import runner as ci
from noxlib.ci.cache import CiCache, cache_disabled, input_hash
from noxlib.sessions import backend_tests

REPO = Path(__file__).resolve().parent.parent

SESSIONS = [
    {"session": "lint", "python": "3.12", "tags": ["ci"]},
    {"session": "test-3.12(shard='1/2')", "python": "3.12", "tags": ["ci", "shard"]},
    {"session": "test-3.12(shard='2/2')", "python": "3.12", "tags": ["ci", "shard"]},
    {"session": "test-3.13(shard='1/2')", "python": "3.13", "tags": ["ci", "shard"]},
    {"session": "coverage", "python": "3.12", "tags": ["ci", "report"]},
    {"session": "frontend_lint", "python": False, "tags": ["ci", "frontend"]},
]


@pytest.fixture
def declared(monkeypatch):
    """Declarations as the noxfile's `@session` makes them, for this test only."""

    def declare(name: str, **fields) -> None:
        monkeypatch.setitem(cache.DECLARED, name, cache.Declaration(**fields))

    return declare


def test_local_plan_runs_shards_as_one_unsharded_test(declared):
    for name in ("test-3.12", "test-3.13"):
        declared(name, local="test")
    plan, notes = ci.local_plan(SESSIONS, full=False)
    assert plan == ["lint", "test", "coverage", "frontend_lint"]
    assert notes[0].startswith("3 shards ran as one unsharded `test`")


def test_each_shard_kind_collapses_into_its_own_session_and_reports_wait_for_it(declared):
    declared("test-3.12", local="test")
    declared("noxlib_test_shard", local="noxlib_test")
    declared("coverage", requires=("test-3.12",))
    sessions = [
        *SESSIONS[:3],
        {"session": "noxlib_test_shard(shard='1/2')", "tags": ["ci", "shard"]},
        {"session": "noxlib_test_shard(shard='2/2')", "tags": ["ci", "shard"]},
        SESSIONS[4],
    ]
    plan, notes = ci.local_plan(sessions, full=False)
    assert plan == ["lint", "test", "noxlib_test", "coverage"]
    assert len(notes) == 2
    assert ci.dependencies(plan) == {"lint": set(), "test": set(), "noxlib_test": set(), "coverage": {"test"}}
    full, _ = ci.local_plan(sessions, full=True)
    # On GitHub's plan the report waits for the backend shards, not for the suite's.
    assert ci.dependencies(full)["coverage"] == {"test-3.12(shard='1/2')", "test-3.12(shard='2/2')"}


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
    import os
    import sys
    import time
    from pathlib import Path

    import nox

    sys.path.insert(0, {repo!r})
    import noxlib.ci.runner as local_ci
    from noxlib.ci import audit as input_audit
    from noxlib.ci.venvs import session as declared_session

    HERE = Path(__file__).parent


    def count(name):
        with open(HERE / "runs.log", "a") as log:
            log.write(name + "\\n")


    def both_running(mark):
        # Until the other ci run's docs runs too: their logs are written at the same time.
        print("docs of run " + mark + " started", flush=True)
        (HERE / ("docs-of-" + mark)).write_text("x")
        for _ in range(2400):
            if len(list(HERE.glob("docs-of-*"))) == 2:
                return
            time.sleep(0.05)


    @declared_session(python=False, options=local_ci.add_options)
    def ci(session):
        local_ci.run(session, Path(__file__))


    @declared_session(python=False, options=input_audit.add_options)
    def audit_inputs(session):
        input_audit.run(session, Path(__file__))


    @declared_session(python=False, tags=["ci"], inputs=["**/*.py"])
    def lint(session):
        count("lint")


    @declared_session(python=False, tags=["ci"], inputs=["docs/**", "README.md"])
    def docs(session):
        count("docs")
        if (HERE / "docs" / "side-by-side").exists():
            both_running(os.environ["RUN_MARK"])
            session.error("docs are broken in run " + os.environ["RUN_MARK"])
        if (HERE / "docs" / "broken").exists():
            session.error("docs are broken")
        if (HERE / "docs" / "read-notes").exists():
            (HERE / "notes.txt").read_text()


    @declared_session(python=False, tags=["ci"], inputs=[".env.example"])
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
    (tmp_path / ".env.example").write_text("A=1\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def ci_command(repo: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "nox", "-f", str(repo / "noxfile.py"), "-s", "ci", "--", *args]


def ci_env(**env: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "VIRTUAL_ENV")}
    return dict(environ, **env)


def start_ci(repo: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """`nox -s ci` in the background, its output (stdout and stderr) on a pipe."""
    return subprocess.Popen(
        ci_command(repo, *args),
        cwd=repo,
        env=ci_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_ci(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ci_command(repo, *args), cwd=repo, env=ci_env(**env), capture_output=True, text=True, check=False
    )


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
    log = named_log(result.stdout, "docs", repo)
    assert "docs are broken" in log.read_text()
    assert result.stdout.count("docs are broken") >= 1
    assert "2 passed, 1 failed, 0 skipped" in result.stdout.splitlines()


def named_log(stdout: str, session: str, repo: Path) -> Path:
    """The log the run's result line for `session` points at."""
    [line] = [line for line in stdout.splitlines() if line.startswith(f"━━━ nox -s {session}: ")]
    return repo / line.rsplit("log ", 1)[1].rstrip(")")


def test_two_ci_runs_in_one_checkout_each_keep_and_read_their_own_logs(repo):
    """Both wrote `.nox/artefacts/ci/docs.log` (opened `wb`): one run's summary pointed at the
    other's log, and the failure tail it printed was the other run's."""
    (repo / "docs" / "side-by-side").write_text("x")
    started = {mark: start_ci(repo, "--no-cache", RUN_MARK=mark) for mark in ("one", "two")}
    for mark, run in started.items():
        other = "two" if mark == "one" else "one"
        stdout, _ = run.communicate(timeout=300)
        assert run.returncode != 0, stdout
        assert f"docs are broken in run {mark}" in stdout, "its failure tail is another run's"
        assert f"run {other}" not in stdout
        log = named_log(stdout, "docs", repo).read_text()
        assert f"docs are broken in run {mark}" in log
        assert f"run {other}" not in log


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
    options = ci.parse_options(["-j2", "--full"])
    assert (options.jobs, options.full, options.matrix, options.no_cache) == (2, True, False, False)
    assert ci.parse_options(["--jobs=4"]).jobs == 4
    assert ci.parse_options([]).jobs == 0  # the machine's cores
    assert ci.default_jobs() >= 1


def test_unknown_option_is_one_clear_line(repo):
    result = run_ci(repo, "--fast")
    assert result.returncode != 0
    assert "nox -s ci --: unrecognized arguments: --fast" in result.stderr
    assert "Traceback" not in result.stderr


def test_input_hash_sees_one_character_and_ignores_the_rest(repo, declared):
    declared("lint", inputs=("**/*.py",))
    declared("docs", inputs=("docs/**", "README.md"))
    before = input_hash("lint", repo)
    (repo / "README.md").write_text("changed\n")
    assert input_hash("lint", repo) == before
    docs_before = input_hash("docs", repo)
    (repo / "docs" / "deep").mkdir()
    (repo / "docs" / "deep" / "page.md").write_text("new\n")  # `**` crosses directories
    assert input_hash("docs", repo) != docs_before
    (repo / "app.py").write_text("VALUE = 3\n")
    assert input_hash("lint", repo) != before
    assert input_hash("no_such_session", repo) is None


def test_cache_records_only_green_runs(repo, declared):
    declared("lint", inputs=("**/*.py",))
    cache = CiCache(root=repo)
    current = cache.hash_for("lint")
    cache.record("lint", current, passed=False)
    assert not cache.is_fresh("lint", current)
    cache.record("lint", current, passed=True)
    assert cache.is_fresh("lint", current)
    cache.record("lint", current, passed=False)
    assert not cache.is_fresh("lint", current)


def test_a_hand_edited_cache_entry_is_no_green_run(repo, declared):
    declared("lint", inputs=("**/*.py",))
    (repo / ".nox").mkdir()
    (repo / ".nox" / cache.CACHE_NAME).write_text('{"lint": 5}')
    assert not CiCache(root=repo).is_fresh("lint", input_hash("lint", repo))


def test_every_ci_session_declares_its_inputs_and_every_tracked_file_is_one():
    """The cheap half of `nox -s audit_inputs`, on this repository: no file escapes every session."""
    result = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(REPO / "noxfile.py"), "-s", "audit_inputs", "--", "--no-trace"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every tracked file is a ci session's input" in result.stdout + result.stderr


def traced() -> bool:
    """This process runs under a tracer (the audit of noxlib_test itself): strace cannot trace inside it."""
    status = Path("/proc/self/status")
    return status.exists() and any(
        line.split()[1:] != ["0"] for line in status.read_text().splitlines() if line.startswith("TracerPid:")
    )


@pytest.mark.skipif(shutil.which("strace") is None, reason="the audit traces with strace (`apt-get install strace`)")
@pytest.mark.skipif(traced(), reason="this run is itself traced (nox -s audit_inputs): ptrace does not nest")
def test_the_audit_names_a_read_outside_the_declared_inputs_and_a_file_nobody_claims(repo):
    """A session that reads an undeclared tracked file would keep a stale green result: the audit says so."""
    (repo / "notes.txt").write_text("hello\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    (repo / "docs" / "read-notes").write_text("x")
    result = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(repo / "noxfile.py"), "-s", "audit_inputs", "--", "docs"],
        cwd=repo, capture_output=True, text=True, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "docs reads notes.txt, which is not among its inputs" in output
    assert "notes.txt: no ci session declares it as an input" in output
    assert "Traceback" not in output


# ----- parallel sessions, ordered where they must be -------------------------------------------
ORDER_NOXFILE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    import nox

    sys.path.insert(0, {repo!r})
    import noxlib.ci.runner as local_ci
    from noxlib.ci.venvs import session as declared_session

    HERE = Path(__file__).parent
    # As the repository's noxfile: side by side under `nox -j`, unless a session says otherwise.
    nox.options.allow_parallel = True


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


    @declared_session(python=False, options=local_ci.add_options)
    def ci(session):
        local_ci.run(session, Path(__file__))


    @declared_session(python=False, tags=["ci", "shard"], local="shard_all")
    def shard_a(session):
        event("start shard_a")
        meet("a", "b")
        event("end shard_a")


    @declared_session(python=False, tags=["ci", "shard"], local="shard_all")
    def shard_b(session):
        event("start shard_b")
        meet("b", "a")
        event("end shard_b")


    @declared_session(python=False, tags=["ci", "report"], requires=["shard_a", "shard_b"])
    def coverage(session):
        step("coverage")


    @declared_session(python=False, tags=["ci", "frontend"], exclusive="frontend", allow_parallel=False)
    def front_one(session):
        step("front_one")


    @declared_session(python=False, tags=["ci", "frontend"], exclusive="frontend", allow_parallel=False)
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


def test_nox_t_ci_j_auto_runs_shards_side_by_side_the_report_after_them_and_the_frontend_alone(order_repo):
    """`nox -t ci -j auto` as a nox user types it: nox's own runner, `requires=` and `allow_parallel=`."""
    if ci.default_jobs() < 2:
        pytest.skip("one CPU: `-j auto` runs one session at a time, so the shards cannot meet")
    report = order_repo / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(order_repo / "noxfile.py"), "-t", "ci", "-j", "auto",
         "--report", str(report)],
        cwd=order_repo, env=ci_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    events = (order_repo / "events.log").read_text().split()
    events = [f"{verb} {name}" for verb, name in zip(events[::2], events[1::2], strict=True)]
    # The shards met (each waited for the other to start), and the report came after both.
    assert events.index("start coverage") > max(events.index("end shard_a"), events.index("end shard_b"))
    # A session that shares apps/frontend runs alone: nothing starts or ends while it runs.
    for front in ("front_one", "front_two"):
        start = events.index(f"start {front}")
        assert events[start + 1] == f"end {front}", events
    statuses = {entry["name"]: entry["result"] for entry in json.loads(report.read_text())["sessions"]}
    assert statuses == dict.fromkeys(["shard_a", "shard_b", "coverage", "front_one", "front_two"], "success")


def test_a_report_needs_its_test_runs_under_nox_too():
    """`nox -s coverage` runs every Python's test shards first (GitHub's coverage job: --no-dependencies)."""
    result = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(REPO / "noxfile.py"), "-s", "coverage", "-l", "--json"],
        cwd=REPO, env=ci_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    listed = [entry["session"] for entry in json.loads(result.stdout)]
    pythons = nox.project.python_versions(nox.project.load_toml(REPO / "pyproject.toml"))
    shards = [f"test-{python}(shard='{index}/{backend_tests.SHARD_COUNT}')" for python in pythons
              for index in range(1, backend_tests.SHARD_COUNT + 1)]  # fmt: skip
    assert sorted(listed) == sorted([*shards, "coverage"])
    assert listed[-1] == "coverage"


def test_one_job_runs_one_session_at_a_time(order_repo):
    (order_repo / "started-b").write_text("x")  # shard_a need not meet shard_b: it cannot, with one job
    result = run_ci(order_repo, "--full", "--no-cache", "-j", "1")
    events = (order_repo / "events.log").read_text().split("\n")
    assert events.index("end shard_a") < events.index("start shard_b")
    assert result.returncode == 0, result.stdout


# ----- start order: the quick checks, then the longest session first ----------------------------
def test_the_longest_expected_session_starts_first_and_the_table_keeps_plan_order(repo):
    """With one job the start order is the run order: env_keys (longest on record) goes first."""
    (repo / ".nox").mkdir()
    (repo / ".nox" / ci.DURATIONS_NAME).write_text('{"env_keys": 90.0, "lint": 15.0, "docs": "hand-edited"}')
    result = run_ci(repo, "--no-cache", "-j", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert runs(repo) == ["env_keys", "lint", "docs"]
    assert [row[0] for row in summary_rows(result.stdout)] == ["lint", "docs", "env_keys"]
    # What this run took is on record for the next one, the bad entry replaced.
    recorded = json.loads((repo / ".nox" / ci.DURATIONS_NAME).read_text())
    assert set(recorded) == {"lint", "docs", "env_keys"}
    assert all(isinstance(seconds, float) for seconds in recorded.values())


def test_quick_checks_on_record_start_before_the_long_sessions(repo):
    """A lint error after a one-line change shows in seconds, not after the tests' minutes."""
    (repo / ".nox").mkdir()
    recorded = {"env_keys": 90.0, "lint": ci.QUICK_SECONDS, "docs": 0.5}
    (repo / ".nox" / ci.DURATIONS_NAME).write_text(json.dumps(recorded))
    result = run_ci(repo, "--no-cache", "-j", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert runs(repo) == ["docs", "lint", "env_keys"]


def test_a_fresh_checkout_starts_the_sessions_that_take_minutes_first(tmp_path, declared):
    declared("noxlib_test", cold_seconds=200)
    declared("test", cold_seconds=100)
    plan = ["lint", "test", "coverage", "docs", "noxlib_test"]
    assert ci.start_order(plan, tmp_path) == ["noxlib_test", "test", "lint", "coverage", "docs"]


def noxfile_declarations() -> dict[str, dict]:
    """What this repository's noxfile declares for each session, as `nox -s ci` reads it."""
    script = (
        "import dataclasses, json, runpy; runpy.run_path('noxfile.py');"
        "from noxlib.ci.cache import DECLARED;"
        # A session's own skip check (`skip_reason=`) is code, not data: null here.
        "print(json.dumps({name: dataclasses.asdict(d) for name, d in DECLARED.items()}, default=lambda _: None))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(result.stdout.splitlines()[-1])


def test_the_journeys_never_overlap_a_session_that_builds_the_frontend():
    """They build and serve apps/frontend; two `next build`s in one checkout refuse each other."""
    declared = noxfile_declarations()
    groups = {name: d["exclusive"] for name, d in declared.items() if d["exclusive"]}
    assert groups["journeys"] == groups["frontend_build"] == groups["frontend_test"] == "frontend"
    assert "noxlib_test" not in groups  # it reads none of the frontend: it runs beside them


def test_an_app_change_is_no_input_of_the_suite_s_own_tests():
    """A one-line backend change re-runs the backend's tests and the journeys, never noxlib_test."""
    from noxlib.ci.cache import Declaration

    declared = noxfile_declarations()
    for name, fields in declared.items():
        cache.DECLARED[name] = Declaration(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    try:
        touched = "apps/backend/src/routers/ping.py"
        readers = {name for name in declared if touched in cache.input_files(name, REPO)}
        assert "noxlib_test" not in readers
        assert {"test", "journeys", "typecheck"} <= readers
        assert "lint_docker" not in readers
    finally:
        for name in declared:
            cache.DECLARED.pop(name, None)


# ----- hostile state files and a broken scheduler ---------------------------------------------
@pytest.mark.parametrize("name", ["ci-durations.json", "ci-cache.json", "ci-cache.json.lock", "ci-durations.json.lock"])
def test_a_directory_in_place_of_a_ci_state_file_is_one_line_and_ci_goes_on(repo, name):
    """A directory in place of `.nox/ci-durations.json` (or the cache, or their locks) ended every
    later `ci` in an IsADirectoryError traceback."""
    (repo / ".nox" / name).mkdir(parents=True)
    result = run_ci(repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert f"{name} was unreadable (a directory, not a file); moved it to" in result.stderr
    assert "3 passed, 0 failed, 0 skipped" in result.stdout.splitlines()
    assert (repo / ".nox" / name).is_file() or not (repo / ".nox" / name).exists()


HANGING_NOXFILE = textwrap.dedent(
    """
    import os, time
    from pathlib import Path

    import nox


    @nox.session(python=False)
    def hangs(session):
        (Path(__file__).parent / "hangs.pid").write_text(str(os.getpid()))
        time.sleep(600)


    @nox.session(python=False)
    def second(session):
        pass
    """
)


class BrokenCache(CiCache):
    """Any error of the scheduler once a session runs (a hand-edited cache gave an AttributeError)."""

    def hash_for(self, session: str) -> str | None:
        if session == "hangs":
            return None
        deadline = time.monotonic() + 120
        while not (self.root / "hangs.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise AttributeError("'int' object has no attribute 'get'")


def test_an_error_in_the_scheduler_stops_the_sessions_it_started(tmp_path):
    """`ci` exited with the traceback while the children it had started ran on, detached."""
    (tmp_path / "noxfile.py").write_text(HANGING_NOXFILE)
    with pytest.raises(AttributeError):
        ci.run_plan(tmp_path / "noxfile.py", ["hangs", "second"], jobs=2, cache=BrokenCache(root=tmp_path))
    pid = int((tmp_path / "hangs.pid").read_text())
    try:
        child = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return  # stopped, and reaped
    try:
        assert child.status() == psutil.STATUS_ZOMBIE, "a session the broken ci started runs on"
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
