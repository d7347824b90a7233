"""How the backend's pytest is run: arguments, coverage files and (for the matrix) shards.

Coverage data goes to `coverage-data/` in nox's envdir (`.nox/coverage-data/`) under a name per
session, so shards of one machine do not overwrite each other and the `coverage` session can
combine whatever it finds there. While pytest runs, its data (and its workers' parts, which
pytest-cov combines from `<COVERAGE_FILE>.*`) is named after the run's PID: two runs of one
session in one checkout never write, combine or erase each other's parts; the finished file then
replaces the session's in one rename, so the last run to finish is the session's data, as when
runs take turns. In the envdir, not at a fixed path: the suite's own tests run
`nox -s test` with an envdir of their own, and those runs must not erase or mix into the data of
the checkout's `test` (`nox -s ci` runs both at once).
Shards are balanced by recorded durations (apps/backend/test_durations.json, pytest-split's own
format, re-recorded by `nox -s durations`) by pytest-split (`--splits N --group k`): every
machine computes the same split, and the shards together run every collected test exactly once.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import nox
from nox.command import CommandFailed

from noxlib.ci.arguments import wants_help
from noxlib.core.errors import UserError
from noxlib.core.paths import BACKEND_DIR, NOX_DIR, REPO_ROOT
from noxlib.run import lifecycle

COVERAGE_DIR_NAME = "coverage-data"  # not .nox/coverage: that is the session venv
# Between a session's data file name and the PID of the run still writing it.
RUN_MARK = ".run-"
DURATIONS_FILE = BACKEND_DIR / "test_durations.json"
COVERAGE_RCFILE = BACKEND_DIR / "pyproject.toml"
SHARD_COUNT = 4
INHERITED_PYTEST_VARIABLES = (
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_XDIST_TESTRUNUID",
    "PYTEST_CURRENT_TEST",
    "PYTEST_ADDOPTS",
)
COVERAGE_ARGS = ["--cov=src", "--cov-branch", "--cov-report=term-missing:skip-covered"]
# pytest's "no tests were collected / all deselected" exit status.
NO_TESTS_COLLECTED = 5
# Options that narrow the run to part of the suite (with their value, when they take one).
NARROWING_OPTIONS = ("-k", "-m", "--deselect", "--ignore", "--ignore-glob")
NARROWING_FLAGS = ("--lf", "--last-failed", "--sw", "--stepwise")
# pytest options (core and the plugins the test group installs) whose value is the next
# argument: that argument is not a test path.
OPTIONS_WITH_VALUE = (
    *NARROWING_OPTIONS,
    *("-n", "--numprocesses", "--dist", "--maxprocesses", "--max-worker-restart", "--tx", "-p", "-c", "-o"),
    *("--override-ini", "-W", "--pythonwarnings", "-r", "--tb", "--maxfail", "--durations", "--durations-min"),
    *("--cov", "--cov-report", "--cov-config", "--cov-fail-under", "--cov-context", "--rootdir", "--basetemp"),
    *("--confcutdir", "--import-mode", "--capture", "--junitxml", "--junit-xml", "--log-level", "--log-file"),
    *("--log-cli-level", "--log-file-level", "--lfnf", "--last-failed-no-failures", "--color", "--asyncio-mode"),
    *("--hypothesis-seed", "--hypothesis-profile", "--report-log"),
)


def narrowed_selection(args: list[str]) -> list[str]:
    """The arguments that make this pytest run a part of the suite (-k, -m, --lf, node ids...).

    The coverage threshold is a verdict on the whole suite: a part of it reports coverage but is
    not judged by it, or every `-k` run would fail on lines the other tests cover.
    """
    narrowing: list[str] = []
    position = 0
    while position < len(args):
        arg = args[position]
        option = arg.split("=", 1)[0]
        if option in OPTIONS_WITH_VALUE and "=" not in arg and position + 1 < len(args):
            if option in NARROWING_OPTIONS:
                narrowing.append(f"{arg} {args[position + 1]}")
            position += 2
            continue
        if option in NARROWING_OPTIONS or option in NARROWING_FLAGS:
            narrowing.append(arg)
        elif arg[:2] in ("-k", "-m") and len(arg) > 2 and not arg.startswith("--"):
            narrowing.append(f"{arg[:2]} {arg[2:]}")  # -kexpr
        elif not arg.startswith("-"):
            narrowing.append(arg)  # a test file, directory or node id
        position += 1
    return narrowing


def coverage_dir(session: nox.Session) -> Path:
    """`coverage-data` in the envdir this nox run uses (the parent of the session's venv)."""
    return Path(session.virtualenv.location).parent / COVERAGE_DIR_NAME


def coverage_file(session: nox.Session) -> Path:
    """The session's coverage data, as the `coverage` session combines it."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", session.name).strip("-")
    return coverage_dir(session) / f".coverage.{slug}"


def run_coverage_file(published: Path, pid: int) -> Path:
    """Where the run with this PID writes until it is done (never combined as it stands)."""
    return published.with_name(f"{published.name}{RUN_MARK}{pid}")


def publish_coverage(published: Path) -> None:
    """Make this run's data the session's, and drop what runs that died mid-way left behind."""
    import psutil  # here: `nox -l` imports this module and must stay cheap

    mine = run_coverage_file(published, os.getpid())
    if mine.exists():
        mine.replace(published)  # atomic: `coverage` sees the old data or the new, never a mix
    for leftover in published.parent.glob(f"{published.name}{RUN_MARK}*"):
        pid = leftover.name.removeprefix(f"{published.name}{RUN_MARK}").split(".", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            leftover.unlink(missing_ok=True)


def resolve_workers(args: list[str], default: str = "auto") -> tuple[int, list[str]]:
    """How many xdist workers pytest will start, and the args with `auto` made explicit.

    The lifecycle must create one database per worker before pytest starts, so `-n auto` is
    resolved here (to the CPUs this process may use) instead of inside xdist.
    """
    args = list(args)
    if "no:xdist" in args:
        return 0, args
    value, index, joined = None, None, False
    for position, arg in enumerate(args):
        if arg in ("-n", "--numprocesses") and position + 1 < len(args):
            value, index = args[position + 1], position + 1
        elif arg.startswith("--numprocesses="):
            value, index, joined = arg.split("=", 1)[1], position, True
        elif arg.startswith("-n") and len(arg) > 2 and not arg.startswith("--"):
            value, index, joined = arg[2:], position, True
    if value is None:
        value = default
        args = ["-n", value, *args]
        index, joined = 1, False
    if value in ("auto", "logical"):
        count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        value = str(count or 1)
    if not value.isdigit():
        raise UserError(f"pytest -n expects a number or 'auto', got {value!r}.")
    if int(value) > 999:
        raise UserError("more than 999 xdist workers: worker database names would not fit.")
    assert index is not None
    args[index] = f"--numprocesses={value}" if joined else value
    return int(value), args


def with_group_distribution(args: list[str], workers: int) -> list[str]:
    """Distribute by `xdist_group` unless the person chose a `--dist`.

    Tests that share one expensive fixture per worker (the served uvicorn of tests/served_app.py)
    carry a group; xdist's default `load` ignores groups and would start that fixture on every
    worker. `loadgroup` spreads every ungrouped test exactly as `load` does.
    """
    if workers == 0 or any(arg == "--dist" or arg.startswith("--dist=") or arg == "-d" for arg in args):
        return args
    return [*args, "--dist", "loadgroup"]


def install_only(session: nox.Session) -> bool:
    """`nox --install-only` prepares venvs; it must not start services or touch databases."""
    # nox has no public accessor for the flag; its documented effect is that `session.run` runs
    # nothing and returns None, where a real silent run returns the output ("" here).
    return session.run("python", "-c", "", silent=True, log=False) is None


def run(
    session: nox.Session,
    *,
    shard: str | None = None,
    extra_args: list[str] | None = None,
) -> None:
    """Lease services, run pytest with the run's environment, clean up however it ends."""
    if install_only(session):
        return
    if wants_help(list(session.posargs)):  # pytest's own help, without services or databases
        with session.chdir(BACKEND_DIR):
            session.run("pytest", "--help")
        return
    posargs = [*(extra_args or []), *session.posargs]
    coverage = "--no-cov" not in posargs
    default_args = list(COVERAGE_ARGS) if coverage else []
    selection = narrowed_selection(posargs)
    if shard or (coverage and selection):
        # A shard or a subset sees part of the code; only a whole run (or the combined report of
        # every shard) can judge the threshold.
        default_args.append("--cov-fail-under=0")
    if coverage and selection and not shard:
        session.log(f"coverage   reported, not enforced: the run is narrowed to {' '.join(selection)}")
    coverage_dir(session).mkdir(parents=True, exist_ok=True)
    workers, pytest_args = resolve_workers([*default_args, *posargs])
    pytest_args = with_group_distribution(pytest_args, workers)
    with lifecycle.isolated_run(
        lifecycle.migrate_with_alembic(session.run),
        workers=workers,
        log=session.log,
        namespace_suffix=f"shard{shard.replace('/', 'of')}" if shard else None,
    ) as run:
        published = coverage_file(session)
        env: dict[str, str | None] = dict(run.env, COVERAGE_FILE=str(run_coverage_file(published, os.getpid())))
        # A run started from inside another pytest (the suite's own tests) must not inherit
        # that pytest's worker identity: the app would pick the wrong worker database.
        env.update(dict.fromkeys(INHERITED_PYTEST_VARIABLES))
        with session.chdir(BACKEND_DIR):
            if shard:
                pytest_args = [*pytest_args, *shard_args(shard)]
            try:
                session.run("pytest", *pytest_args, env=env)
            except CommandFailed as failure:
                if failure.return_code == NO_TESTS_COLLECTED and selection:
                    raise UserError(
                        f"no test matched {' '.join(selection)}; list the test names with "
                        "`nox -s test -- --collect-only -q` and pick a -k that is part of one"
                    ) from None
                raise
            finally:
                # Also after failed tests: pytest-cov wrote their data, as it always has.
                publish_coverage(published)


def shard_args(shard: str, durations: Path = DURATIONS_FILE) -> list[str]:
    """pytest-split's arguments for shard `k/N` of a suite, balanced by its recorded durations.

    `least_duration`, not the default's consecutive chunks: xdist spreads a shard's tests anyway.
    Durations are recorded under `--dist loadgroup`, where a grouped test's id ends in `@group`:
    a shard run with `-n 0` looks those up by other ids and may split a little differently.
    """
    group, splits = shard.split("/")
    split = ["--splits", splits, "--group", group, "--splitting-algorithm", "least_duration"]
    return [*split, "--durations-path", str(durations)]


@contextlib.contextmanager
def recording_durations(durations: Path) -> Iterator[list[str]]:
    """pytest-split's arguments to record a whole run's test times into `durations`, once it passed.

    `--clean-durations` drops tests that no longer exist, so a run cut short (Ctrl+C, a red test)
    would leave most of them out: pytest-split writes a scratch file, moved in after the run.
    """
    scratch = NOX_DIR / f"durations-{durations.parent.name}-{os.getpid()}.json"
    scratch.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield ["--store-durations", "--clean-durations", "--durations-path", str(scratch)]
        if scratch.exists():  # not with `nox --install-only`, which runs nothing
            scratch.replace(durations)
    finally:
        scratch.unlink(missing_ok=True)


def refresh_durations(session: nox.Session) -> None:
    """Run the whole suite once and record each test's time where the shards read it (pytest-split)."""
    with recording_durations(DURATIONS_FILE) as recording:
        run(session, extra_args=["--no-cov", *recording])
    session.log(f"recorded the test durations in {DURATIONS_FILE.relative_to(REPO_ROOT)}")


def combine_coverage(session: nox.Session) -> None:
    """Combine every coverage data file in coverage-data/, enforce the threshold, write reports."""
    directory = coverage_dir(session)
    # Not the parts of a run still writing (or of one that died before it was done).
    data = sorted(path for path in directory.glob(".coverage.*") if RUN_MARK not in path.name)
    if not data and not (directory / ".coverage").exists():
        raise UserError(f"no coverage data in {directory}; run `nox -s test` (or the shards) first.")
    combined = directory / ".coverage"
    rc = f"--rcfile={COVERAGE_RCFILE}"
    env = {"COVERAGE_FILE": str(combined)}
    if data:
        # Combining consumes the parts, so a later run never mixes in a stale shard's data.
        session.run("coverage", "combine", rc, *map(str, data), env=env)
    session.run("coverage", "html", rc, "-d", str(REPO_ROOT / "htmlcov"), env=env)
    session.run("coverage", "lcov", rc, "-o", str(REPO_ROOT / "coverage.lcov"), env=env)
    session.run("coverage", "xml", rc, "-o", str(REPO_ROOT / "coverage.xml"), env=env)
    session.run("coverage", "report", rc, "--skip-covered", env=env)
