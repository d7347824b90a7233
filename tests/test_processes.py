"""The stop primitive on real processes: polite signal, then SIGKILL; never a PID that is no longer ours.

Fast: plain Python children, no services. What is asserted is what is left running afterwards.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from noxlib.core import processes
from noxlib.core.processes import TrackedProcess

# Says "ready" once its SIGTERM handler is in place, then ignores SIGTERM for good.
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"
)
# Starts two sleeping children, prints their PIDs, and sleeps itself.
PARENT = (
    "import subprocess, sys, time\n"
    "kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']) for _ in range(2)]\n"
    "print(' '.join(str(kid.pid) for kid in kids), flush=True)\n"
    "time.sleep(600)\n"
)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; whatever is still running at its end is killed."""
    popens: list[subprocess.Popen[bytes]] = []
    yield popens
    for popen in popens:
        if popen.poll() is None:
            popen.kill()
        popen.wait()


def start(started: list[subprocess.Popen[bytes]], tmp_path: Path, code: str) -> tuple[TrackedProcess, str]:
    """`code` started and recorded like a service; returns it and its first line of output."""
    log = tmp_path / f"{len(started)}.log"
    tracked, popen = processes.start("probe", [sys.executable, "-c", code], log_path=log)
    started.append(popen)
    processes.wait_until(lambda: log.read_text().strip() != "", what="the probe", timeout=60, process=tracked)
    return tracked, log.read_text().split("\n")[0]


def test_a_process_that_ignores_the_polite_signal_is_killed(started, tmp_path):
    tracked, _ = start(started, tmp_path, STUBBORN)

    assert processes.stop(tracked, timeout=0.5)

    assert not tracked.is_running()  # SIGTERM could not do it: it was killed


def test_a_record_whose_pid_is_now_another_process_stops_nothing(started, tmp_path):
    tracked, _ = start(started, tmp_path, STUBBORN)
    # The same PID with another start time: what the record named is gone and the PID was reused.
    stale = TrackedProcess(name="probe", pid=tracked.pid, create_time=tracked.create_time - 3600)

    assert processes.stop(stale)
    assert processes.stop_tree(stale)

    assert tracked.is_running()
    assert started[0].poll() is None


def test_a_tree_is_stopped_with_every_descendant(started, tmp_path):
    tracked, first_line = start(started, tmp_path, PARENT)
    children = [psutil.Process(int(pid)) for pid in first_line.split()]

    assert processes.stop_tree(tracked)

    assert not tracked.is_running()
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)


def test_a_process_group_is_stopped_whole(started, tmp_path):
    tracked, first_line = start(started, tmp_path, PARENT)  # its own session: a group of three
    assert {member.pid for member in processes.group_members(tracked.pid)} == {
        tracked.pid,
        *map(int, first_line.split()),
    }

    assert processes.stop_group(tracked.pid)

    assert processes.group_members(tracked.pid) == []
