"""`nox -s bench`: the suite's speed claims, measured side by side with the naive way on this machine.

Machines are noisy, so every figure is the median of several runs (min and max beside it) and
the table leads with ratios. The benchmark runs on services of its own (a private
FR_CACHE_DIR), so measuring a cold start never stops a developer's services.
Speed goals live here, never as timed assertions in tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import nox

from noxlib import lifecycle, paths
from noxlib.ci import nested_nox_env, nox_command
from noxlib.databases import DatabaseJanitor, ensure_database, migrations_hash
from noxlib.errors import UserError
from noxlib.namespace import get_worker_db_name
from noxlib.paths import BACKEND_DIR, NOX_DIR, REPO_ROOT
from noxlib.services.native import NativeServices

RESULTS_FILE = NOX_DIR / "bench.json"
ISOLATION_TESTS = ["tests/test_api_ping.py", "tests/test_api_journal.py", "tests/test_api_reconciliation.py"]
GROUPS = ("services", "databases", "isolation", "test", "ci")


@dataclass
class Figure:
    group: str
    name: str
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def row(self) -> str:
        return (
            f"{self.group:<10} {self.name:<44} {self.median:8.3f} {min(self.runs):8.3f} "
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
        with lifecycle.leased_services("bench", "bench_join", log=lambda line: None):
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
            samples = timed(lambda argv=argv, env=env: _run_quiet(argv, env, BACKEND_DIR), runs)
            per_test = [max(sample - startup, 0.0) / count for sample in samples]
            figures.append(Figure("isolation", f"per test, {mode} ({count} tests)", per_test))
    return figures


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


# ----- report ------------------------------------------------------------------------------
RATIOS = (
    ("migrate per worker / clone per worker", "migrate per worker database (naive)", "clone per worker database"),
    ("TRUNCATE / savepoint, per test", "per test, truncate", "per test, savepoint"),
    ("schema rebuild / savepoint, per test", "per test, rebuild", "per test, savepoint"),
    ("cold start / join", "cold start (postgres+redis+s3)", "join running"),
    ("uncached / cached no-op ci", "nox -s ci, warm, --no-cache", "nox -s ci, nothing changed (cached)"),
    ("nox -s test: -n 0 / -n auto", "nox -s test -- -n 0: wall", "nox -s test -- -n auto: wall"),
)


def _find(figures: list[Figure], prefix: str) -> Figure | None:
    return next((figure for figure in figures if figure.name.startswith(prefix)), None)


def report(figures: list[Figure]) -> tuple[str, dict[str, float]]:
    lines = [f"{'group':<10} {'measure':<44} {'median':>8} {'min':>8} {'max':>8} {'n':>3}  (seconds)"]
    lines += [figure.row() for figure in figures]
    ratios = {}
    for label, numerator, denominator in RATIOS:
        top, bottom = _find(figures, numerator), _find(figures, denominator)
        if top and bottom and bottom.median > 0:
            ratios[label] = round(top.median / bottom.median, 2)
    lines.append("")
    lines += [f"ratio      {label:<44} {value:8.2f}x" for label, value in ratios.items()]
    return "\n".join(lines), ratios


def run(session: nox.Session) -> None:
    args = list(session.posargs)
    runs = 3
    if "--quick" in args:
        runs = 2
        args.remove("--quick")
    chosen = [name for name in args if not name.startswith("-")] or [g for g in GROUPS if g != "ci" or "--ci" in args]
    unknown = sorted(set(chosen) - set(GROUPS))
    if unknown:
        raise UserError(f"unknown bench group {unknown[0]!r}; choose from {', '.join(GROUPS)} (ci is opt-in: --ci).")
    figures: list[Figure] = []
    with private_state():
        session.log(f"benchmarking {', '.join(chosen)} on private services ({runs} runs each)")
        if "services" in chosen:
            figures += bench_services(runs)
        if "databases" in chosen:
            figures += bench_databases(session, runs)
        if "isolation" in chosen:
            figures += bench_isolation(session, runs)
        if "test" in chosen:
            figures += bench_test_session(runs)
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
