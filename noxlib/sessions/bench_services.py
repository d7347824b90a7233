"""The bench rows measured on its own services: start and join, databases, isolation, an upload.

Each sets the suite's way beside the naive one (clone a template vs migrate each worker's
database; savepoint rollback vs TRUNCATE vs a schema rebuild per test), so the report can lead
with ratios. They run on a private FR_CACHE_DIR (`private_state`), never the developer's.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import statistics
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nox

from noxlib.core import paths
from noxlib.core.errors import UserError
from noxlib.core.paths import BACKEND_DIR
from noxlib.names.namespace import get_worker_db_name
from noxlib.run import lifecycle
from noxlib.run.databases import DatabaseJanitor, ensure_database, migrations_hash
from noxlib.run.service_leases import leased_services
from noxlib.services.native import NativeServices
from noxlib.sessions.bench_figures import Figure, output_of, state_dir, timed

ISOLATION_TESTS = ["tests/test_api_ping.py", "tests/test_api_journal.py", "tests/test_api_reconciliation.py"]
UPLOAD_LINES = 200_000  # the size of the statement that froze the server in the original report
_UPLOAD_LINE = re.compile(
    r"^bench: upload of \d+ lines .*?: ([0-9.]+) s, .*?during it: \d+ answers, worst ([0-9.]+) ms", re.M
)


@contextlib.contextmanager
def private_state() -> Iterator[Path]:
    """Point FR_CACHE_DIR at a state directory of the benchmark's own; stop and remove it after."""
    directory = state_dir()
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


def start_and_join(runs: int) -> list[Figure]:
    native = NativeServices()
    native.start()  # first start: initdb and the tools env, not what a developer pays every time
    cold = timed(native.start, runs, before=native.stop)

    def join() -> None:
        with leased_services("bench", "bench_join", log=lambda line: None):
            pass

    joined = timed(join, runs * 2)
    return [Figure("services", "cold start (postgres+redis+s3)", cold), Figure("services", "join running", joined)]


def databases(session: nox.Session, runs: int) -> list[Figure]:
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


def _isolated_run(session: nox.Session, suffix: str) -> contextlib.AbstractContextManager[lifecycle.IsolatedRun]:
    """A migrated database and a bucket of the benchmark's own, quiet: its lines are no figures."""
    return lifecycle.isolated_run(
        lifecycle.migrate_with_alembic(session.run), log=lambda line: None, namespace_suffix=suffix
    )


def _pytest(session: nox.Session, *args: str) -> list[str]:
    """The backend's pytest on one process without coverage: what is timed is the tests alone."""
    python = str(Path(session.bin) / "python")
    return [python, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "--no-cov", *args]


def isolation_per_test(session: nox.Session, runs: int) -> list[Figure]:
    """The same backend tests under savepoint rollback, TRUNCATE, and schema rebuild per test."""
    figures = []
    with _isolated_run(session, "bench") as run:
        env = {**os.environ, **run.env}
        # pytest's start-up (interpreter, imports, collection) is the same in every mode: time it
        # alone and take it out, so the figure is what isolating one test costs.
        collected: list[str] = []
        collect = _pytest(session, "--collect-only", *ISOLATION_TESTS)
        startup = statistics.median(timed(lambda: collected.append(output_of(collect, env, BACKEND_DIR)), runs))
        count = max(1, sum(1 for line in collected[-1].splitlines() if "::" in line))
        for mode in ("savepoint", "truncate", "rebuild"):
            argv = _pytest(session, *ISOLATION_TESTS)
            samples = timed(functools.partial(output_of, argv, {**env, "TEST_ISOLATION": mode}, BACKEND_DIR), runs)
            per_test = [max(sample - startup, 0.0) / count for sample in samples]
            figures.append(Figure("isolation", f"per test, {mode} ({count} tests)", per_test))
    return figures


def large_upload(session: nox.Session, runs: int) -> list[Figure]:
    """A 200 000-line statement uploaded to a real uvicorn while /api/health is polled.

    The measurement itself is the backend's test (tests/test_upload_bench.py), which also
    asserts that health kept answering; here it runs on this run's services and its line is read.
    """
    argv = _pytest(session, "-s", "tests/test_upload_bench.py")
    uploads: list[float] = []
    worst: list[float] = []
    with _isolated_run(session, "bench_upload") as run:
        env = {**os.environ, **run.env, "UPLOAD_BENCH_LINES": str(UPLOAD_LINES)}
        for _ in range(runs):
            output = output_of(argv, env, BACKEND_DIR, merged=True)
            match = _UPLOAD_LINE.search(output)
            if match is None:
                raise UserError(f"the upload bench printed no figure line; its output ended: {output[-300:]}")
            uploads.append(float(match[1]))
            worst.append(float(match[2]) / 1000)
    return [
        Figure("upload", f"upload of {UPLOAD_LINES} lines (s)", uploads),
        Figure("upload", "worst /api/health latency during it (s)", worst),
    ]
