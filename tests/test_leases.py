"""The lease registry: who holds the services, kept correct under reused PIDs and concurrent writers.

Fast tests on a registry in tmp_path; no services are started. Where `release` needs a backend,
a recording stand-in is used: what is tested is whether the lifecycle *asks* to stop the
services, not PostgreSQL itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from noxlib.core.processes import TrackedProcess, current_process_identity
from noxlib.run.leases import Lease, LeaseRegistry
from noxlib.run.service_leases import ServiceLease, release
from noxlib.services import ServiceUrls
from tests.faults.lease_writer import write
from tests.runs import REPO

LEASE_WRITER = Path(__file__).resolve().parent / "faults" / "lease_writer.py"


def lease_of(pid: int, create_time: float, namespace: str, kind: str = "test") -> Lease:
    return Lease(pid=pid, create_time=create_time, namespace=namespace, backend="native", kind=kind)


def my_lease(namespace: str, kind: str = "test") -> Lease:
    me = current_process_identity()
    return lease_of(me.pid, me.create_time, namespace, kind)


def recorded(registry: LeaseRegistry) -> dict:
    """The registry file as it lies on disk, without the pruning every `locked()` does."""
    return json.loads(registry.path.read_text())


# ----- identity ----------------------------------------------------------------------------
def test_a_reused_pid_counts_as_dead_and_is_pruned(tmp_path):
    registry = LeaseRegistry(tmp_path)
    me = current_process_identity()
    live = lease_of(me.pid, me.create_time, "live")
    # Same PID, another start time: the run that took this lease is gone and its PID was reused.
    reused = lease_of(me.pid, me.create_time - 3600, "reused")
    with registry.locked() as state:
        state.leases += [live, reused]
    assert [entry["namespace"] for entry in recorded(registry)["leases"]] == ["live", "reused"]

    assert live.is_alive()
    assert not reused.is_alive()
    with registry.locked() as state:
        assert [lease.namespace for lease in state.pruned] == ["reused"]
        assert [lease.namespace for lease in state.leases] == ["live"]
    assert [entry["namespace"] for entry in recorded(registry)["leases"]] == ["live"]


def test_a_lease_of_an_exited_process_is_pruned(tmp_path):
    registry = LeaseRegistry(tmp_path)
    gone = subprocess.Popen(["true"])
    create_time = current_process_identity().create_time  # any value: the PID no longer exists
    gone.wait()
    with registry.locked() as state:
        state.leases.append(lease_of(gone.pid, create_time, "exited"))
    assert registry.snapshot().leases == []


def test_same_holder_tolerates_clock_tick_rounding_only():
    lease = my_lease("a")
    assert lease.same_holder(lease_of(lease.pid, lease.create_time + 0.01, "b"))
    assert not lease.same_holder(lease_of(lease.pid, lease.create_time + 1, "b"))
    assert not lease.same_holder(lease_of(lease.pid + 1, lease.create_time, "b"))


# ----- concurrency -------------------------------------------------------------------------
def test_concurrent_writers_lose_nothing(tmp_path):
    """Threads (one shared registry object and separate ones) and processes change the file at once."""
    me = current_process_identity()
    count = 8
    shared = LeaseRegistry(tmp_path)
    errors: list[BaseException] = []

    def thread_writer(registry: LeaseRegistry, prefix: str) -> None:
        try:
            write(registry, prefix, count, me.pid, me.create_time)
        except BaseException as error:  # surfaced by the assertion below, not lost in the thread
            errors.append(error)

    threads = [
        threading.Thread(target=thread_writer, args=(shared if index % 2 else LeaseRegistry(tmp_path), f"t{index}"))
        for index in range(4)
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    holder = [str(me.pid), repr(me.create_time)]
    writers = [
        subprocess.Popen([sys.executable, str(LEASE_WRITER), str(tmp_path), f"p{index}", str(count), *holder], env=env)
        for index in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0]
    assert errors == []

    prefixes = [f"t{index}" for index in range(4)] + [f"p{index}" for index in range(3)]
    expected = sorted(f"{prefix}-{index}" for prefix in prefixes for index in range(1, count, 2))
    assert sorted(entry["namespace"] for entry in recorded(shared)["leases"]) == expected
    assert sorted(path.name for path in tmp_path.iterdir()) == ["leases.json", "leases.lock"]


def test_an_unreadable_registry_is_moved_aside_once(tmp_path, capsys):
    registry = LeaseRegistry(tmp_path)
    registry.path.write_text('{"leases": [{"pid": ')
    with registry.locked() as state:
        assert state.leases == []
        state.leases.append(my_lease("after"))
    with registry.locked() as state:
        assert [lease.namespace for lease in state.leases] == ["after"]
    assert capsys.readouterr().err.count("lease file was unreadable") == 1
    moved = list(tmp_path.glob("leases.json.corrupt-*"))
    assert [path.read_text() for path in moved] == ['{"leases": [{"pid": ']


def _valid_lease() -> dict:
    me = current_process_identity()
    return {"pid": me.pid, "create_time": me.create_time, "namespace": "ns", "backend": "native", "kind": "test"}


# Each shape a lease file was found in (issue 12 item 7), and a few of their relatives.
CORRUPT_CONTENT = {
    "random-bytes": bytes(range(256)) * 800,
    "not-json": b"leases: []",
    "a-list": b"[]",
    "create-time-string": json.dumps({"leases": [_valid_lease() | {"create_time": "yesterday"}]}).encode(),
    "pid-minus-one": json.dumps({"leases": [_valid_lease() | {"pid": -1}]}).encode(),
    "pid-boolean": json.dumps({"leases": [_valid_lease() | {"pid": True}]}).encode(),
    "create-time-infinite": json.dumps({"leases": [_valid_lease()]})
    .replace("}]", ', "acquired_at": Infinity}]')
    .encode(),
    "missing-namespace": json.dumps(
        {"leases": [{k: v for k, v in _valid_lease().items() if k != "namespace"}]}
    ).encode(),
    "ports-garbage": json.dumps({"leases": [_valid_lease() | {"ports": {"postgres": "5432"}}]}).encode(),
    "services-garbage": json.dumps({"leases": [], "services": "garbage"}).encode(),
    "services-kept-string": json.dumps({"leases": [], "services": {"backend": "native", "kept": "no"}}).encode(),
    "leases-not-a-list": json.dumps({"leases": {"pid": 1}}).encode(),
}


@pytest.mark.parametrize("content", CORRUPT_CONTENT.values(), ids=CORRUPT_CONTENT.keys())
def test_each_corrupt_registry_is_one_line_moved_aside_and_replaced(tmp_path, capsys, content):
    registry = LeaseRegistry(tmp_path)
    registry.path.write_bytes(content)
    with registry.locked() as state:
        assert (state.leases, state.services) == ([], None)
        state.leases.append(my_lease("after"))
    assert [lease.namespace for lease in registry.snapshot().leases] == ["after"]
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert len(err) < 400, "the line must not quote the file"
    moved = list(tmp_path.glob("leases.json.corrupt-*"))
    assert [path.read_bytes() for path in moved] == [content]
    assert err.rstrip().endswith(str(moved[0]))


def test_a_registry_that_is_a_directory_is_moved_aside(tmp_path, capsys):
    registry = LeaseRegistry(tmp_path)
    registry.path.mkdir()
    (registry.path / "inside").write_text("kept")
    with registry.locked() as state:
        state.leases.append(my_lease("after"))
    assert [lease.namespace for lease in registry.snapshot().leases] == ["after"]
    (moved,) = tmp_path.glob("leases.json.corrupt-*")
    assert (moved / "inside").read_text() == "kept"
    assert "a directory" in capsys.readouterr().err


def test_a_lock_that_is_a_directory_is_moved_aside(tmp_path, capsys):
    registry = LeaseRegistry(tmp_path)
    Path(registry.lock.lock_file).mkdir()
    with registry.locked() as state:
        state.leases.append(my_lease("after"))
    assert [lease.namespace for lease in registry.snapshot().leases] == ["after"]
    assert len(list(tmp_path.glob("leases.lock.corrupt-*"))) == 1
    assert capsys.readouterr().err.count("lease lock file was unreadable") == 1


def test_a_newer_suites_registry_with_more_fields_is_read_not_moved_aside(tmp_path, capsys):
    """Worktrees at different commits share one state directory: its live leases must stay listed."""
    registry = LeaseRegistry(tmp_path)
    services = {"backend": "native", "kept": True, "started_by": "infra", "added_later": [1]}
    registry.path.write_text(json.dumps({"leases": [_valid_lease() | {"added_later": 2}], "services": services}))
    state = registry.snapshot()
    assert state.services == services
    assert [lease.namespace for lease in state.leases] == ["ns"]
    assert capsys.readouterr().err == ""
    assert list(tmp_path.glob("*.corrupt-*")) == []


# ----- release -----------------------------------------------------------------------------
@dataclass
class RecordingBackend:
    """Counts the lifecycle's requests to stop; stands in for a backend, not for the services."""

    name: str = "native"
    owns_services: bool = True
    stops: int = 0

    def start(self) -> None:
        raise AssertionError("release never starts services")

    def urls(self) -> ServiceUrls:
        return URLS

    def healthy(self) -> bool:
        return True

    def stop(self) -> None:
        self.stops += 1


URLS = ServiceUrls(
    postgres_host="127.0.0.1",
    postgres_port=1,
    postgres_user="postgres",
    postgres_password="unused",
    redis_url="redis://127.0.0.1:2/0",
    s3_endpoint="http://127.0.0.1:3",
    s3_access_key="unused",
    s3_secret_key="unused",
)


def registry_with(tmp_path: Path, leases: list[Lease], services: dict | None) -> LeaseRegistry:
    registry = LeaseRegistry(tmp_path)
    with registry.locked() as state:
        state.leases = leases
        state.services = services
    return registry


TEST_STARTED = {"backend": "native", "kept": False, "started_by": "test"}


def test_a_run_whose_lease_vanished_does_not_stop_the_services(tmp_path):
    """A reset registry may have lost other runs' leases too: stopping now could break them."""
    mine = my_lease("vanished")
    registry = registry_with(tmp_path, [], TEST_STARTED)
    backend = RecordingBackend()
    lines: list[str] = []
    release(ServiceLease(backend, URLS, mine, registry, joined=False), lines.append)
    assert backend.stops == 0
    assert any("lease was missing" in line for line in lines)
    assert registry.snapshot().services == TEST_STARTED


def test_the_last_lease_out_stops_services_a_test_run_started(tmp_path):
    mine = my_lease("last")
    registry = registry_with(tmp_path, [mine], TEST_STARTED)
    backend = RecordingBackend()
    release(ServiceLease(backend, URLS, mine, registry, joined=False), lambda line: None)
    assert backend.stops == 1
    assert recorded(registry) == {"leases": [], "services": None}


@pytest.mark.parametrize(
    ("others", "services"),
    [
        pytest.param(["other"], TEST_STARTED, id="another-run-still-holds-a-lease"),
        pytest.param([], {"backend": "native", "kept": True, "started_by": "infra"}, id="kept-by-infra"),
        pytest.param([], {"backend": "native", "kept": True, "started_by": "unknown"}, id="started-by-unknown"),
    ],
)
def test_release_leaves_services_running_when_they_are_not_the_runs_to_stop(tmp_path, others, services):
    mine = my_lease("mine")
    # Another live holder: this test's parent process (pytest or nox) outlives the test.
    parent = TrackedProcess.of_pid("parent", os.getppid())
    other_leases = [lease_of(parent.pid, parent.create_time, name) for name in others]
    registry = registry_with(tmp_path, [mine, *other_leases], services)
    backend = RecordingBackend()
    release(ServiceLease(backend, URLS, mine, registry, joined=True), lambda line: None)
    assert backend.stops == 0
    state = registry.snapshot()
    assert [lease.namespace for lease in state.leases] == others
    assert state.services == services
