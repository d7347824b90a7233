"""`nox -s bench`: the suite's speed claims, measured side by side with the naive way on this machine.

Machines are noisy, so every figure is the median of several runs (min and max beside it) and
the table leads with ratios. The benchmark runs on services of its own (a private
FR_CACHE_DIR), so measuring a cold start never stops a developer's services.
Speed goals live here, never as timed assertions in tests.

The `loop` group times whole commands as a developer types them (`uvx nox -l`, a warm
`uvx nox -s test`, ...); `-- --before REF` runs each of them in a clone of REF too, interleaved
with this checkout's runs so both see the same machine load, and reports before/after ratios.
The opt-in `prepush` group times the loop before a push: `uvx nox -s ci` in a fresh clone
(cold, then with nothing changed, then after each kind of one-line change), which sessions each
run re-ran, and how the run after a backend change compares with a warm `uvx nox -s test`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nox

from noxlib import bytecode, lifecycle, paths
from noxlib.ci import VENV_VARIABLES, nested_nox_env, nox_command
from noxlib.databases import DatabaseJanitor, ensure_database, migrations_hash
from noxlib.errors import UserError
from noxlib.namespace import get_worker_db_name
from noxlib.paths import ARTEFACTS_DIR, BACKEND_DIR, NOX_DIR, REPO_ROOT
from noxlib.service_leases import leased_services
from noxlib.services.native import NativeServices
from noxlib.session_args import arguments

RESULTS_FILE = NOX_DIR / "bench.json"
ISOLATION_TESTS = ["tests/test_api_ping.py", "tests/test_api_journal.py", "tests/test_api_reconciliation.py"]
GROUPS = ("services", "databases", "isolation", "upload", "test", "loop", "suite", "ci", "prepush")
# Opt-in: minutes each (`suite` is noxlib_test and a cold `ci` in a fresh clone; `prepush` is
# five `ci` runs and a `test` per checkout, the first of them cold).
OPT_IN = ("suite", "ci", "prepush")


@dataclass
class Figure:
    group: str
    name: str
    runs: list[float]
    # For a figure that times `nox -s ci`: each session's result in that run's summary table.
    sessions: dict[str, str] | None = field(default=None)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def row(self) -> str:
        return (
            f"{self.group:<10} {self.name:<56} {self.median:8.3f} {min(self.runs):8.3f} "
            f"{max(self.runs):8.3f} {len(self.runs):>3}"
        )


def timed(function: Callable[[], object], runs: int, before: Callable[[], object] | None = None) -> list[float]:
    """Wall seconds of `function`, `runs` times; `before` (untimed) resets the state each time."""
    samples = []
    for _ in range(runs):
        if before:
            before()
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


@contextlib.contextmanager
def private_state() -> Iterator[Path]:
    """A state directory of the benchmark's own: its services, leases and templates."""
    directory = Path("/var/tmp") / f"finance_report-bench-{os.getpid()}"  # noqa: S108 - ours, 0755 for postgres
    directory.mkdir(mode=0o755, exist_ok=True)
    previous = os.environ.get("FR_CACHE_DIR")
    os.environ["FR_CACHE_DIR"] = str(directory)
    paths.state_dir.cache_clear()
    try:
        yield directory
    finally:
        native = NativeServices(directory / "native")
        if native.running():
            native.stop()
        if previous is None:
            os.environ.pop("FR_CACHE_DIR", None)
        else:
            os.environ["FR_CACHE_DIR"] = previous
        paths.state_dir.cache_clear()
        shutil.rmtree(directory, ignore_errors=True)


# ----- measurements ------------------------------------------------------------------------
def bench_services(runs: int) -> list[Figure]:
    native = NativeServices()
    native.start()  # first start: initdb and the tools env, not what a developer pays every time
    cold = timed(native.start, runs, before=native.stop)

    def join() -> None:
        with leased_services("bench", "bench_join", log=lambda line: None):
            pass

    joined = timed(join, runs * 2)
    return [Figure("services", "cold start (postgres+redis+s3)", cold), Figure("services", "join running", joined)]


def bench_databases(session: nox.Session, runs: int) -> list[Figure]:
    urls = NativeServices().urls()
    janitor = DatabaseJanitor(urls.database_url(), "bench", log=lambda line: None)  # timed: no per-drop lines
    python = Path(session.bin) / "python"

    def migrate(url: str) -> None:
        subprocess.run(
            [str(python), "-m", "alembic", "upgrade", "head"],
            cwd=BACKEND_DIR, env={**os.environ, "DATABASE_URL": url}, check=True, capture_output=True,
        )  # fmt: skip

    def sqlalchemy_url(name: str) -> str:
        return urls.database_url(name, driver="postgresql+psycopg")

    schema_hash = migrations_hash(BACKEND_DIR / "alembic")
    template, _ = janitor.ensure_template(schema_hash, migrate, sqlalchemy_url)

    def rebuild_template() -> None:
        janitor.drop_stale_templates(keep=())
        janitor.ensure_template(schema_hash, migrate, sqlalchemy_url)

    worker = get_worker_db_name("bench", "gw0")
    build = timed(rebuild_template, runs)
    clone = timed(lambda: janitor.clone(template, worker), runs * 2, before=lambda: janitor.drop(worker))

    def migrate_worker() -> None:
        ensure_database(urls.database_url(), worker)
        migrate(sqlalchemy_url(worker))

    migrated = timed(migrate_worker, runs, before=lambda: janitor.drop(worker))
    janitor.drop_all_own()
    janitor.drop_stale_templates(keep=())
    return [
        Figure("databases", "template build (alembic upgrade head)", build),
        Figure("databases", "clone per worker database", clone),
        Figure("databases", "migrate per worker database (naive)", migrated),
    ]


def bench_isolation(session: nox.Session, runs: int) -> list[Figure]:
    """The same backend tests under savepoint rollback, TRUNCATE, and schema rebuild per test."""
    python = Path(session.bin) / "python"
    figures = []
    with lifecycle.isolated_run(
        lifecycle.migrate_with_alembic(session.run), log=lambda line: None, namespace_suffix="bench"
    ) as run:
        count = _collect_count(python, run.env)
        # pytest's start-up (interpreter, imports, collection) is the same in every mode: time it
        # alone and take it out, so the figure is what isolating one test costs.
        collect = [str(python), "-m", "pytest", "-q", "--collect-only", "-p", "no:xdist", "--no-cov",
                   *ISOLATION_TESTS]  # fmt: skip
        startup = statistics.median(timed(lambda: _run_quiet(collect, {**os.environ, **run.env}, BACKEND_DIR), runs))
        for mode in ("savepoint", "truncate", "rebuild"):
            env = {**os.environ, **run.env, "TEST_ISOLATION": mode}
            argv = [str(python), "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "--no-cov",
                    *ISOLATION_TESTS]  # fmt: skip
            samples = timed(functools.partial(_run_quiet, argv, env, BACKEND_DIR), runs)
            per_test = [max(sample - startup, 0.0) / count for sample in samples]
            figures.append(Figure("isolation", f"per test, {mode} ({count} tests)", per_test))
    return figures


UPLOAD_LINES = 200_000  # the size of the statement that froze the server in the original report
_UPLOAD_LINE = re.compile(
    r"^bench: upload of \d+ lines .*?: ([0-9.]+) s, .*?during it: \d+ answers, worst ([0-9.]+) ms", re.M
)


def bench_upload(session: nox.Session, runs: int) -> list[Figure]:
    """A 200 000-line statement uploaded to a real uvicorn while /api/health is polled.

    The measurement itself is the backend's test (tests/test_upload_bench.py), which also
    asserts that health kept answering; here it runs on this run's services and its line is read.
    """
    python = Path(session.bin) / "python"
    argv = [str(python), "-m", "pytest", "-q", "-s", "-p", "no:xdist", "-p", "no:cacheprovider", "--no-cov",
            "tests/test_upload_bench.py"]  # fmt: skip
    uploads: list[float] = []
    worst: list[float] = []
    with lifecycle.isolated_run(
        lifecycle.migrate_with_alembic(session.run), log=lambda line: None, namespace_suffix="bench_upload"
    ) as run:
        env = {**os.environ, **run.env, "UPLOAD_BENCH_LINES": str(UPLOAD_LINES)}
        for _ in range(runs):
            output = _run_merged(argv, env, BACKEND_DIR)
            match = _UPLOAD_LINE.search(output)
            if match is None:
                raise UserError(f"the upload bench printed no figure line; its output ended: {output[-300:]}")
            uploads.append(float(match[1]))
            worst.append(float(match[2]) / 1000)
    return [
        Figure("upload", f"upload of {UPLOAD_LINES} lines (s)", uploads),
        Figure("upload", "worst /api/health latency during it (s)", worst),
    ]


def _collect_count(python: Path, env: dict[str, str]) -> int:
    result = subprocess.run(
        [str(python), "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist", "--no-cov", *ISOLATION_TESTS],
        cwd=BACKEND_DIR, env={**os.environ, **env}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return max(1, sum(1 for line in result.stdout.splitlines() if "::" in line))


def _run_quiet(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise UserError(f"benchmark command failed: {' '.join(argv[:4])} …\n{result.stdout[-2000:]}")
    return result.stdout


def _run_merged(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    """Like _run_quiet, with stderr in the output: nox writes its (timestamped) log there."""
    result = _merged_output(argv, env, cwd)
    if result.returncode != 0:
        raise UserError(f"benchmark command failed: {' '.join(argv[:4])} …\n{result.stdout[-2000:]}")
    return result.stdout


def _merged_output(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _nox(*args: str) -> list[str]:
    return nox_command(REPO_ROOT / "noxfile.py", *args)


_PYTEST_TIME = re.compile(r" in ([0-9.]+)s")


def bench_test_session(runs: int) -> list[Figure]:
    """`nox -s test` end to end, and how much of it is not pytest's own test time."""
    figures = []
    for workers in ("0", "auto"):
        walls, overheads = [], []
        for _ in range(runs):
            started = time.perf_counter()
            output = _run_quiet(_nox("-R", "-s", "test", "--", "-n", workers), nested_nox_env(), REPO_ROOT)
            wall = time.perf_counter() - started
            inside = [float(m) for m in _PYTEST_TIME.findall(output)]
            walls.append(wall)
            overheads.append(wall - (inside[-1] if inside else 0.0))
        figures.append(Figure("test", f"nox -s test -- -n {workers}: wall", walls))
        figures.append(Figure("test", f"nox -s test -- -n {workers}: outside pytest", overheads))
    return figures


def bench_ci(runs: int) -> list[Figure]:
    """A warm `nox -s ci` (venvs exist, cache off) against the no-op run the input-hash cache allows."""
    env = {k: v for k, v in nested_nox_env().items() if k != "CI"}
    warm = timed(lambda: _run_quiet(_nox("-R", "-s", "ci", "--", "--no-cache"), env, REPO_ROOT), max(1, runs - 1))
    _run_quiet(_nox("-R", "-s", "ci"), env, REPO_ROOT)  # records every session's hash
    cached = timed(lambda: _run_quiet(_nox("-R", "-s", "ci"), env, REPO_ROOT), runs * 2)
    return [
        Figure("ci", "nox -s ci, warm, --no-cache", warm),
        Figure("ci", "nox -s ci, nothing changed (cached)", cached),
    ]


# ----- whole commands: the inner loop ---------------------------------------------------------
# (figure name, uvx nox arguments, warm: run once untimed first). The figures of issue 15's table.
LOOP_COMMANDS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("uvx nox --version", ("--version",), False),
    ("uvx nox -l", ("-l",), False),
    ("uvx nox -s env_keys, warm", ("-s", "env_keys"), True),
    ("uvx nox -s docs -- build, warm", ("-s", "docs", "--", "build"), True),
    ("uvx nox -s test, warm", ("-s", "test"), True),
)
SUITE_COMMANDS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("uvx nox -s noxlib_test", ("-s", "noxlib_test"), False),
)
_TIMESTAMP = re.compile(r"^nox > \[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] (.*)$")


def developer_env(session: nox.Session) -> dict[str, str]:
    """What a terminal has: no venv of ours on PATH or in the environment, no script-mode override."""
    env = {key: value for key, value in os.environ.items() if key not in (*VENV_VARIABLES, "NOX_SCRIPT_MODE")}
    env = bytecode.as_the_person_set_it(env)
    env.pop("NOX_CURRENT_SESSION", None)
    ours = str(Path(session.bin))
    env["PATH"] = os.pathsep.join(part for part in env.get("PATH", "").split(os.pathsep) if part != ours)
    return env


def uvx_nox(*args: str) -> list[str]:
    uvx = shutil.which("uvx")
    if uvx is None:
        raise UserError("the loop benchmark times `uvx nox ...` as typed: install uv (it brings uvx).")
    return [uvx, "nox", "--add-timestamp", *args] if args != ("--version",) else [uvx, "nox", "--version"]


def fixed_cost(output: str, started: datetime.datetime) -> float | None:
    """Seconds from starting `uvx nox -s X` to the session's first own command (after `uv sync`)."""
    stamped = [(match[1], match[2]) for line in output.splitlines() if (match := _TIMESTAMP.match(line))]
    for (_, text), (stamp, _) in itertools.pairwise(stamped):
        if " sync " in text and text.split()[0].endswith("uv"):
            return (datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f") - started).total_seconds()
    return None


def clone_checkout(ref: str, into: Path) -> Path:
    """A fresh clone of this repository at `ref`: the "before" side, or a cold `ci`'s checkout."""
    resolved = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if resolved.returncode != 0:
        raise UserError(f"--before {ref}: not a commit of this repository; give a branch, tag or commit.")
    subprocess.run(["git", "clone", "--quiet", "--shared", str(REPO_ROOT), str(into)], check=True)
    subprocess.run(["git", "checkout", "--quiet", "--detach", resolved.stdout.strip()], cwd=into, check=True)
    return into


def bench_commands(
    session: nox.Session,
    commands: tuple[tuple[str, tuple[str, ...], bool], ...],
    runs: int,
    checkouts: dict[str, Path],
) -> list[Figure]:
    """Each command in each checkout; a command that fails is reported and skipped."""
    env = developer_env(session)
    figures = []
    for name, args, warm in commands:
        try:
            figures += _bench_command(session, env, name, args, warm, runs, checkouts)
        except UserError as error:
            # One failing command (say, a red test run in the REF checkout) must not cost the
            # figures of the others: say which and carry on.
            session.warn(f"no figure for {name!r}: {error}")
    return figures


def _bench_command(
    session: nox.Session,
    env: dict[str, str],
    name: str,
    args: tuple[str, ...],
    warm: bool,
    runs: int,
    checkouts: dict[str, Path],
) -> list[Figure]:
    """One command in each checkout, the checkouts interleaved run by run."""
    samples: dict[str, list[float]] = {label: [] for label in checkouts}
    fixed: dict[str, list[float]] = {label: [] for label in checkouts}
    if warm:
        for root in checkouts.values():
            _run_quiet(uvx_nox(*args), env, root)
    for _ in range(runs):
        for label, root in checkouts.items():
            started_at = datetime.datetime.now()
            started = time.perf_counter()
            output = _run_merged(uvx_nox(*args), env, root)
            samples[label].append(time.perf_counter() - started)
            cost = fixed_cost(output, started_at)
            if cost is not None:
                fixed[label].append(cost)
    measured = []
    for label in checkouts:
        suffix = "" if label == "after" else f" [{label}]"
        measured.append(Figure("loop", name + suffix, samples[label]))
        if fixed[label]:
            measured.append(Figure("loop", f"{name.split(',')[0]}: to first command{suffix}", fixed[label]))
    # Whole commands take minutes: show each figure as it lands, not only in the final table.
    for figure in measured:
        session.log(figure.row())
    return measured


def bench_cold_ci(session: nox.Session, checkouts: dict[str, Path]) -> list[Figure]:
    """`uvx nox -s ci` in a fresh clone with nothing cached, once per checkout (minutes each)."""
    env = developer_env(session)
    figures = []
    for label, root in checkouts.items():
        with tempfile.TemporaryDirectory(prefix="bench-ci-") as scratch:
            fresh = clone_checkout(_head(root), Path(scratch) / "clone")
            started = time.perf_counter()
            _run_quiet(uvx_nox("-s", "ci"), {**env, "CI": "true"}, fresh)
            suffix = "" if label == "after" else f" [{label}]"
            figures.append(
                Figure("suite", f"uvx nox -s ci, cold, fresh clone{suffix}", [time.perf_counter() - started])
            )
    return figures


def _head(root: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


# ----- the pre-push loop: `uvx nox -s ci` in a fresh clone, change by change -----------------
# The results of ci's summary table (noxlib/ci.py `summary`); the first two mean the session ran.
CI_RAN = ("passed", "FAILED")
_CI_RESULTS = (*CI_RAN, "cached", "skipped", "stopped", "not run")
_SUMMARY_HEADER = re.compile(r"^session\s+result\s+seconds$")
_SUMMARY_ROW = re.compile(rf"^(?P<session>\S.*?)\s{{2,}}(?P<result>{'|'.join(_CI_RESULTS)})\s+\d+\.\d$")
# How a comment line reads in each kind of file a change edits.
_COMMENT = {".py": "# {}", ".ts": "// {}", ".tsx": "// {}", ".md": "<!-- {} -->"}
PREPUSH_TEST = "pre-push test, warm, after backend src change"
# The goal: ci after a one-line backend change at most 1.5x a warm `nox -s test`.
PREPUSH_GOAL = "pre-push ci / warm test, backend src change"


def ci_results(output: str) -> dict[str, str]:
    """Each session's result in the last summary table of `nox -s ci`'s output, in its order.

    Read from the table, not from a list of names: which sessions ci runs is noxfile.py's to say.
    The last table counts because a session's own output (echoed with `-j 1`) may hold one too.
    """
    lines = [line.rstrip() for line in output.splitlines()]
    headers = [number for number, line in enumerate(lines) if _SUMMARY_HEADER.match(line)]
    results: dict[str, str] = {}
    for line in lines[headers[-1] + 1 :] if headers else []:
        if set(line) <= {"-", " "}:
            continue
        row = _SUMMARY_ROW.match(line)
        if row is None:
            break  # the `total` line: the table ends
        results[row["session"]] = row["result"]
    return results


@dataclass(frozen=True)
class CiRun:
    seconds: float
    results: dict[str, str]
    passed: bool

    @property
    def ran(self) -> list[str]:
        """The sessions this run ran (rather than `cached` or `skipped`)."""
        return [name for name, result in self.results.items() if result in CI_RAN]


def run_ci(argv: list[str], env: dict[str, str], root: Path) -> CiRun:
    """One timed `nox -s ci` in `root`; a red run is returned, not raised: its table is the figure."""
    started = time.perf_counter()
    result = _merged_output(argv, env, root)
    seconds = time.perf_counter() - started
    results = ci_results(result.stdout)
    if not results:
        raise UserError(f"`{' '.join(argv)}` in {root} printed no summary table; its output ended:\n"
                        f"{result.stdout[-2000:]}")  # fmt: skip
    return CiRun(seconds, results, result.returncode == 0)


@dataclass(frozen=True)
class OneLineChange:
    """One kind of edit a developer pushes: a comment line in the first of `paths` the checkout has."""

    kind: str
    paths: tuple[str, ...]

    def path(self, root: Path) -> Path:
        for name in self.paths:
            if (root / name).is_file():
                return root / name
        raise UserError(f"the {self.kind} change edits one of {', '.join(self.paths)}; {root} has none of them.")

    def apply(self, root: Path) -> Path:
        """Add the comment as the first line: at the end, ruff format would want two blank lines before it."""
        path = self.path(root)
        comment = _COMMENT[path.suffix].format(f"bench: a one-line {self.kind} change")
        path.write_text(f"{comment}\n{path.read_text()}")
        return path

    def commit(self, root: Path) -> None:
        """Keep the change: the next kind then starts from a tree every session is green for."""
        path = self.path(root).relative_to(root)
        subprocess.run(
            ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "--quiet", "--no-verify",
             "-m", f"bench: a one-line {self.kind} change", "--", str(path)],
            cwd=root, check=True, capture_output=True,
        )  # fmt: skip


# Files present since the first commit, so any --before REF has them.
PREPUSH_CHANGES = (
    OneLineChange("backend src", ("apps/backend/src/routers/ping.py",)),
    OneLineChange("backend tests", ("apps/backend/tests/test_api_ping.py",)),
    OneLineChange("frontend", ("apps/frontend/app/page.tsx", "apps/frontend/src/app/page.tsx")),
    OneLineChange("docs", ("docs/development.md", "docs/index.md")),
)


def prepush_rows(
    clones: dict[str, Path],
    ci: Callable[[Path], CiRun],
    test: Callable[[Path], float],
    log: Callable[[str], object],
    changes: tuple[OneLineChange, ...] = PREPUSH_CHANGES,
) -> list[Figure]:
    """The pre-push figures, each step taken in every clone before the next so both see the same load.

    A change is committed after its timed `ci` rather than reverted: the cache hashes file
    contents, so after a green run every session is fresh for the edited tree, and the next kind
    starts from exactly that state. Reverting would make the same sessions stale again and cost
    one more untimed `ci` per kind for the same independence.
    """
    figures: list[Figure] = []

    def record(label: str, name: str, seconds: float, sessions: dict[str, str] | None = None) -> None:
        figure = Figure("prepush", name + ("" if label == "after" else f" [{label}]"), [seconds], sessions)
        figures.append(figure)
        # Each row takes minutes: show it as it lands, with what ci re-ran.
        log(figure.row() + (f"  re-ran: {', '.join(_ran(sessions)) or 'nothing'}" if sessions is not None else ""))

    warm = dict(clones)
    for label, root in clones.items():
        cold = ci(root)
        if not cold.passed:
            # Without a green first run every later run re-runs the red sessions: no figure is fair.
            failed = [name for name, result in cold.results.items() if result == "FAILED"]
            log(f"no pre-push figures for {label}: the first `ci` in its fresh clone failed ({', '.join(failed)})")
            del warm[label]
            continue
        record(label, "pre-push ci, cold fresh clone", cold.seconds, cold.results)
    for label, root in warm.items():
        noop = ci(root)
        record(label, "pre-push ci, no-op", noop.seconds, noop.results)
    for change in changes:
        for label, root in warm.items():
            change.apply(root)
            changed = ci(root)
            record(label, f"pre-push ci, one-line change: {change.kind}", changed.seconds, changed.results)
            if change is changes[0]:  # backend src: what a warm `nox -s test` is compared with
                try:
                    record(label, PREPUSH_TEST, test(root))
                except UserError as error:
                    log(f"no figure for {PREPUSH_TEST!r} [{label}]: {error}")
            change.commit(root)
    return figures


def _ran(sessions: dict[str, str] | None) -> list[str]:
    """Sessions that ran, a red one marked: a re-run that failed is not a fair time."""
    return [f"{name} (FAILED)" if result == "FAILED" else name for name, result in (sessions or {}).items()
            if result in CI_RAN]  # fmt: skip


def bench_prepush(session: nox.Session, checkouts: dict[str, Path]) -> list[Figure]:
    """The pre-push loop in a fresh clone of each checkout's HEAD (one run per row: minutes each)."""
    # The developer's terminal, with the cache on even if this bench runs under CI=true.
    env = {key: value for key, value in developer_env(session).items() if key != "CI"}
    with tempfile.TemporaryDirectory(prefix="bench-prepush-") as scratch:
        clones = {label: clone_checkout(_head(root), Path(scratch) / label) for label, root in checkouts.items()}
        # Each clone's services in a state directory of its own (0755: PostgreSQL runs as another
        # account): two versions of the suite must not take turns at one set of native services,
        # nor at the developer's.
        envs: dict[Path, dict[str, str]] = {}
        for label, root in clones.items():
            state = Path("/var/tmp") / f"finance_report-bench-prepush-{label}-{os.getpid()}"  # noqa: S108
            state.mkdir(mode=0o755, exist_ok=True)
            envs[root] = dict(env, FR_CACHE_DIR=str(state))

        def ci(root: Path) -> CiRun:
            run = run_ci(uvx_nox("-s", "ci"), envs[root], root)
            if not run.passed:  # the clone goes with the scratch directory: keep what says why
                kept = ARTEFACTS_DIR / "bench" / f"red-ci-{root.name}-{time.strftime('%Y%m%dT%H%M%S')}"
                shutil.copytree(root / ".nox" / "artefacts" / "ci", kept, dirs_exist_ok=True)
                session.log(f"the red `ci` logs of the {root.name} clone: {kept.relative_to(REPO_ROOT)}")
            return run

        try:
            return prepush_rows(
                clones,
                ci=ci,
                test=lambda root: timed(lambda: _run_merged(uvx_nox("-s", "test"), envs[root], root), 1)[0],
                log=session.log,
            )
        finally:
            for root, clone_env in envs.items():
                # Each version stops its own services, the way it knows them.
                _merged_output(uvx_nox("-s", "down", "--", "--force"), clone_env, root)
                shutil.rmtree(clone_env["FR_CACHE_DIR"], ignore_errors=True)


def prepush_table(figures: list[Figure]) -> tuple[list[str], dict[str, float]]:
    """One line per pre-push row, before and after side by side, and the ratio of ci to a warm test."""
    measured = {figure.name: figure for figure in figures if figure.group == "prepush"}
    names = list(dict.fromkeys(name.removesuffix(" [before]") for name in measured))
    if not names:
        return [], {}
    lines = [
        "",
        "pre-push loop: one run per row and checkout (each takes minutes), so single samples, not medians",
        f"{'row':<56} {'before':>9} {'after':>9} {'before/after':>13}",
    ]
    for name in names:
        before, after = measured.get(f"{name} [before]"), measured.get(name)
        ratio = f"{before.median / after.median:12.2f}x" if before and after and after.median > 0 else f"{'—':>13}"
        lines.append(f"{name:<56} {_seconds_cell(before)} {_seconds_cell(after)} {ratio}")
        for label, figure in (("before", before), ("after", after)):
            if figure and figure.sessions is not None:
                lines.append(f"    {label} re-ran: {', '.join(_ran(figure.sessions)) or 'nothing'}")
    ratios: dict[str, float] = {}
    cells = []
    for suffix in (" [before]", ""):
        ci = measured.get(f"pre-push ci, one-line change: {PREPUSH_CHANGES[0].kind}{suffix}")
        test = measured.get(PREPUSH_TEST + suffix)
        if ci and test and test.median > 0:
            ratios[PREPUSH_GOAL + suffix] = round(ci.median / test.median, 2)
            cells.append(f"{ratios[PREPUSH_GOAL + suffix]:8.2f}x")
        else:
            cells.append(f"{'—':>9}")
    lines.append(f"{PREPUSH_GOAL:<56} {cells[0]} {cells[1]}  goal: at most 1.5x")
    return lines, ratios


def _seconds_cell(figure: Figure | None) -> str:
    return f"{figure.median:8.1f}s" if figure else f"{'—':>9}"


def before_after_ratios(figures: list[Figure]) -> dict[str, float]:
    """before / after for every figure measured in both checkouts: above 1 means faster now."""
    ratios = {}
    for figure in figures:
        before = next((f for f in figures if f.name == f"{figure.name} [before]"), None)
        if before and figure.median > 0:
            ratios[f"before / after: {figure.name}"] = round(before.median / figure.median, 2)
    return ratios


# ----- report ------------------------------------------------------------------------------
RATIOS = (
    ("migrate per worker / clone per worker", "migrate per worker database (naive)", "clone per worker database"),
    ("TRUNCATE / savepoint, per test", "per test, truncate", "per test, savepoint"),
    ("schema rebuild / savepoint, per test", "per test, rebuild", "per test, savepoint"),
    ("cold start / join", "cold start (postgres+redis+s3)", "join running"),
    ("uncached / cached no-op ci", "nox -s ci, warm, --no-cache", "nox -s ci, nothing changed (cached)"),
    ("nox -s test: -n 0 / -n auto", "nox -s test -- -n 0: wall", "nox -s test -- -n auto: wall"),
    ("uvx nox -l / uvx nox --version", "uvx nox -l", "uvx nox --version"),
)


def _find(figures: list[Figure], prefix: str) -> Figure | None:
    return next((figure for figure in figures if figure.name.startswith(prefix)), None)


def report(figures: list[Figure]) -> tuple[str, dict[str, float]]:
    lines = [f"{'group':<10} {'measure':<56} {'median':>8} {'min':>8} {'max':>8} {'n':>3}  (seconds)"]
    lines += [figure.row() for figure in figures]
    ratios = before_after_ratios(figures)
    for label, numerator, denominator in RATIOS:
        top, bottom = _find(figures, numerator), _find(figures, denominator)
        if top and bottom and bottom.median > 0:
            ratios[label] = round(top.median / bottom.median, 2)
    lines.append("")
    lines += [f"ratio      {label:<56} {value:8.2f}x" for label, value in ratios.items()]
    prepush_lines, prepush_ratios = prepush_table(figures)
    lines += prepush_lines
    return "\n".join(lines), ratios | prepush_ratios


def add_options(parser: argparse.ArgumentParser) -> None:
    """`nox -s bench -- [GROUP ...] [--before REF] [--quick] [--ci]`."""
    parser.add_argument(
        "groups", nargs="*", choices=GROUPS, metavar="GROUP",
        help=f"what to measure: {', '.join(GROUPS)} (default: all but the opt-in {', '.join(OPT_IN)})",
    )  # fmt: skip
    parser.add_argument("--before", metavar="REF", help="also measure a clone of REF, interleaved, with ratios")
    parser.add_argument("--quick", action="store_true", help="two runs of each figure instead of three")
    parser.add_argument("--ci", action="store_true", help="add the `ci` group to the default ones")


def run(session: nox.Session) -> None:
    options = arguments(session)
    runs = 2 if options.quick else 3
    before = options.before
    chosen = list(options.groups) or [g for g in GROUPS if g not in OPT_IN or (g == "ci" and options.ci)]
    figures: list[Figure] = []
    with private_state(), tempfile.TemporaryDirectory(prefix="bench-before-") as scratch:
        checkouts = {"after": REPO_ROOT}
        if before is not None:
            checkouts = {"before": clone_checkout(before, Path(scratch) / "before"), "after": REPO_ROOT}
        session.log(f"benchmarking {', '.join(chosen)} on private services ({runs} runs each)")
        if "services" in chosen:
            figures += bench_services(runs)
        if "databases" in chosen:
            figures += bench_databases(session, runs)
        if "isolation" in chosen:
            figures += bench_isolation(session, runs)
        if "upload" in chosen:
            figures += bench_upload(session, runs)
        if "test" in chosen:
            figures += bench_test_session(runs)
        if "loop" in chosen:
            cheap = tuple(command for command in LOOP_COMMANDS if not command[2])
            figures += bench_commands(session, cheap, max(runs, 5), checkouts)
            figures += bench_commands(session, tuple(c for c in LOOP_COMMANDS if c[2]), runs, checkouts)
        if "suite" in chosen:
            figures += bench_commands(session, SUITE_COMMANDS, 1, checkouts)
            figures += bench_cold_ci(session, checkouts)
        if "prepush" in chosen:
            figures += bench_prepush(session, checkouts)
    if "ci" in chosen:
        figures += bench_ci(runs)  # on the developer's own state: that is what `ci` uses
    table, ratios = report(figures)
    print(table, flush=True)
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                "figures": [asdict(f) | {"median": f.median} for f in figures],
                "ratios": ratios,
            },
            indent=2,
        )
    )
    session.log(f"wrote {RESULTS_FILE.relative_to(REPO_ROOT)}")
