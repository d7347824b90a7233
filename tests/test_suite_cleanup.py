"""The suite's own runs leave nothing behind (tests/conftest.py), walked on a nested pytest run.

A run of these tests gets a state directory of its own under /var/tmp and starts native
services in it. When it ends, its controller stops them, stops whatever a test leaked (named,
so the test can be found) and removes the directory; a SIGTERM (from `nox -s ci`, a CI runner)
or a closed terminal does the same as Ctrl+C.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from noxlib.core.processes import stop_processes
from tests.conftest import SUITE_PREFIX, _record_ports_of_its_own, processes_of_run
from tests.runs import _terminal_signals

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent

LEAKS_A_PROCESS = """
import os, pathlib, subprocess, sys

def test_leaks_a_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    pathlib.Path(os.environ["NESTED_RECORD"]).write_text(f"{child.pid} {os.environ['FR_CACHE_DIR']}")
"""

WAITS_ON_ITS_SERVICES = """
import os, pathlib, time

def test_waits_on_its_services(services):
    pathlib.Path(os.environ["NESTED_RECORD"]).write_text(f"{os.getpid()} {os.environ['FR_CACHE_DIR']}")
    time.sleep(600)
"""


def start_nested_run(tmp_path: Path, state: Path, source: str) -> subprocess.Popen[str]:
    """`pytest` on one test file with the suite's conftest, as a terminal's foreground job."""
    (tmp_path / "test_nested.py").write_text(source)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NESTED_RECORD": str(tmp_path / "record"), "FR_CACHE_DIR": str(state)}
    for key in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_CURRENT_TEST"):
        env.pop(key, None)
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "-q", str(tmp_path / "test_nested.py")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, preexec_fn=_terminal_signals,
    )  # fmt: skip


def names(found: list[psutil.Process]) -> list[str]:
    return [f"{process.pid} {process.name()}" for process in found]


@pytest.fixture
def nested_state() -> Iterator[Path]:
    """The nested run's state directory, on ports the kernel hands out (beside the workers' own).

    Named as the suite's, so the nested run adopts it; whatever of it a failing test leaves is
    stopped and removed here.
    """
    state = Path("/var/tmp") / f"{SUITE_PREFIX}nested-{uuid.uuid4().hex[:8]}"
    state.mkdir(mode=0o755)
    _record_ports_of_its_own(state / "native")
    yield state
    stop_processes(processes_of_run(state), timeout=10)
    shutil.rmtree(state, ignore_errors=True)


def test_a_process_a_test_leaves_running_is_named_and_stopped_with_the_run(tmp_path, nested_state):
    run = start_nested_run(tmp_path, nested_state, LEAKS_A_PROCESS)
    try:
        output, _ = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 0, output
    pid, state = (tmp_path / "record").read_text().split()
    assert state == str(nested_state)
    assert f"note: a test left pid {pid} running" in output
    assert names(processes_of_run(nested_state)) == []
    assert not nested_state.exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "sighup"])
def test_a_run_ended_by_a_signal_stops_its_services(tmp_path, nested_state, signum):
    """Ctrl+C, a SIGTERM from `nox -s ci` or a CI runner, a closed terminal: the same cleanup."""
    run = start_nested_run(tmp_path, nested_state, WAITS_ON_ITS_SERVICES)
    record = tmp_path / "record"
    try:
        deadline = time.monotonic() + 180
        while not record.exists() or not record.read_text():
            assert run.poll() is None, run.stdout.read() if run.stdout else ""
            assert time.monotonic() < deadline
            time.sleep(0.2)
        started = {process.name() for process in processes_of_run(nested_state)}
        assert {"postgres", "redis-server", "weed"} <= started, started
        os.kill(run.pid, signum)
        output, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode != 0, output
    assert names(processes_of_run(nested_state)) == [], output
    assert not nested_state.exists()
