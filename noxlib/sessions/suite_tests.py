"""Running the suite's own tests, which start whole `nox -s test` runs of their own.

Sessions split them by what they read: `noxlib_test` tests noxlib (names, leases, janitor,
signals, ci, cache, scripts) and reads of the apps only what the nested runs' template database
is migrated with; the journeys walk the app as a person does, so the app is among their inputs,
in three parts that each re-run only when what they read changes: `journeys` the app with its
frontend (dev in a browser, smoke, vitest), `journeys_backend` the backend alone (smoke's API
checks, perf, boot), `journeys_selection` the backend's tests as `nox -s test -- <selection>`
picks them (a subset, an empty selection, the shards) — a frontend edit re-runs the first, a
backend test's edit the last. `docs_check` holds every test that reads README.md or docs/ (the
session table, each documented command), so a docs edit costs those checks and never the
journeys. A test is a journey by its `journey` marker (and `journey_backend` or
`journey_selection` for the two narrower parts), a docs check by its `docs` marker; GitHub runs
`noxlib_test` in shards balanced by recorded durations (pytest-split, as the backend's shards:
`tests/test_durations.json`, re-recorded by `nox -s noxlib_test -- --store-durations`).

Their inner venv is prepared once, here, in an envdir of their own (the developer's `.nox/test`
keeps whatever state the developer left it in), and every inner run reuses it with `-R`. Two
suite runs in one checkout share that envdir safely: the venv lock (noxlib/ci/venvs.py)
lets only one of them build or sync it, and a sync of an unchanged venv is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import re

import nox

from noxlib.ci.arguments import wants_help
from noxlib.ci.listing import VENV_VARIABLES
from noxlib.core.paths import NOX_DIR, REPO_ROOT
from noxlib.sessions.backend_tests import recording_durations, shard_args

INNER_ENVDIR = NOX_DIR / "suite-envs"
# How long pytest may take to stop after Ctrl+C: its controller stops every worker's native
# services and removes the run's state directory in `pytest_unconfigure` (tests/conftest.py).
# nox's default (0.3 s, then SIGTERM, then SIGKILL) killed it first and left them running.
# Below `nox -s ci`'s own wait for a child's cleanup (noxlib/ci/runner.py CLEANUP_TIMEOUT, 60 s).
CLEANUP_SECONDS = 45.0
# Two workers per CPU: most of a suite test is waiting on a nested `nox` run, a server or a
# browser, so one worker per CPU left a third of the CPUs idle (measured on 2 cores). Each
# worker starts services of its own (tests/conftest.py), so the count is capped.
MAX_WORKERS = 12
# GitHub's noxlib_test jobs: each about a quarter of the suite's ~300 s on a 2-core runner.
SHARD_COUNT = 4
DURATIONS_FILE = REPO_ROOT / "tests" / "test_durations.json"
# The real-engine compose tests have their own session (compose_test), so a runner with Docker
# does not build and run the images twice.
# Collecting test_readme.py reads the README and every docs page (its parameters are the
# documented commands): only docs_check collects it, so a docs edit re-runs docs_check alone.
_DOCS_COLLECTED = "--ignore=tests/test_readme.py"
NOXLIB_TESTS = ["-m", "not journey and not docs", "--ignore=tests/test_compose.py", _DOCS_COLLECTED, "tests"]
# The files each journeys session collects, by the marker that puts a test in it (the narrower
# first): every xdist worker collects, and all of tests/ cost more than some journeys.
# tests/conftest.py refuses a journey outside its session's files when noxlib_test (which
# collects every file) runs, so none is left to run in no session.
JOURNEY_FILES = {
    "journey_selection": ("tests/test_journeys.py", "tests/test_shards.py"),
    "journey_backend": ("tests/test_journeys.py", "tests/test_smoke.py", "tests/test_perf.py"),
    "journey": ("tests/test_journeys.py", "tests/test_workflows.py", "tests/test_api_contract.py"),
}
JOURNEYS = ["-m", "journey and not journey_backend and not journey_selection", *JOURNEY_FILES["journey"]]
BACKEND_JOURNEYS = ["-m", "journey_backend", *JOURNEY_FILES["journey_backend"]]
SELECTION_JOURNEYS = ["-m", "journey_selection", *JOURNEY_FILES["journey_selection"]]
DOCS_CHECKS = ["-m", "docs", "--ignore=tests/test_compose.py", "tests"]


def default_workers(per_cpu: int = 2) -> int:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(per_cpu * (usable or 1), MAX_WORKERS)


def prepare_inner_runs(session: nox.Session) -> dict[str, str | None]:
    """Sync the inner `test` venv once; return the env that tells the tests where it is.

    One envdir per outer session: the nested nox finds Python through the outer venv's PATH,
    and a venv built with another interpreter is rebuilt (noxlib/ci/venvs.py), so
    `noxlib_test` and `journeys` side by side in `ci` would rebuild one shared venv under each
    other's running tests.
    """
    clean: dict[str, str | None] = dict.fromkeys(VENV_VARIABLES)
    envdir = INNER_ENVDIR / re.sub(r"[^A-Za-z0-9._-]+", "-", session.name).strip("-")
    envdir.mkdir(parents=True, exist_ok=True)
    session.run(
        "nox", "--envdir", str(envdir), "--reuse-venv", "yes", "-s", "test", "--install-only",
        env=clean,
    )  # fmt: skip
    return {"FR_SUITE_NOX_ENVDIR": str(envdir)}


def pytest_args(
    selection: list[str], posargs: list[str], shard: str | None = None, *, workers_per_cpu: int = 2
) -> list[str]:
    """The session's selection (posargs replace it), on `workers_per_cpu` workers a CPU, and the shard's part."""
    args = list(posargs) or ["-n", str(default_workers(workers_per_cpu)), "--dist", "loadgroup", *selection]
    return [*args, *shard_args(shard, DURATIONS_FILE)] if shard else args


def run(
    session: nox.Session,
    selection: list[str],
    shard: str | None = None,
    *,
    frontend: bool = False,
    workers_per_cpu: int = 2,
) -> None:
    """pytest over the selection, with time to clean up after Ctrl+C.

    `frontend`: the tests run the checkout's frontend side by side, so its node_modules are
    installed once before they start (noxlib/sessions/frontend.py `install`).
    `workers_per_cpu`: two for tests that mostly wait on a nested run, a server or a browser;
    one for checks that run in-process, where a second worker's start-up (~1 s of CPU to import
    pytest, its plugins and noxlib) costs more than it saves.
    """
    if wants_help(list(session.posargs)):  # pytest's own help, before any venv or service is prepared
        session.run("pytest", "--help")
        return
    if frontend:
        from noxlib.sessions import frontend as frontend_app

        frontend_app.install(session)
    env = prepare_inner_runs(session)
    posargs = list(session.posargs)
    # `nox -s noxlib_test -- --store-durations`: the whole selection, its times where the shards read them.
    records = posargs == ["--store-durations"] and selection == NOXLIB_TESTS and shard is None
    with contextlib.ExitStack() as stack:
        recording = stack.enter_context(recording_durations(DURATIONS_FILE)) if records else []
        args = pytest_args(selection, [] if records else posargs, shard, workers_per_cpu=workers_per_cpu)
        session.run("pytest", *args, *recording, env=env, interrupt_timeout=CLEANUP_SECONDS)
