"""Whole `nox -s test` runs against real native services: concurrency, interrupts, crashes.

Each run executes tests/lifecycle/probe_run.py, which checks the environment it was handed and
leaves a database row, an S3 object and a Redis key behind for the cleanup to remove.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import pytest

from noxlib.names.namespace import sanitize_namespace
from noxlib.run import service_leases
from tests.runs import PROBE, leftovers, output, probe_args, run_nox, start_run, wait_ready

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def warm(services):
    """One serial run first: it builds the template the other runs then reuse."""
    branch = f"warm-{uuid.uuid4().hex[:6]}"
    result = run_nox("-s", "test", "--", *probe_args(PROBE), BRANCH_NAME=branch)
    assert result.returncode == 0, result.stdout
    return services


@pytest.mark.parametrize("runs", [2, 4])
def test_concurrent_runs_in_distinct_namespaces(warm, tmp_path, runs):
    branches = [f"conc-{uuid.uuid4().hex[:6]}-{index}" for index in range(runs)]
    procs = [start_run(branch, tmp_path) for branch in branches]
    codes = [proc.wait(timeout=600) for proc in procs]
    for branch, code in zip(branches, codes, strict=True):
        assert code == 0, output(branch, tmp_path)
        assert "(reused)" in output(branch, tmp_path)
        assert leftovers(sanitize_namespace(branch), warm.urls) == []


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_mid_run_cleans_up(warm, tmp_path, sig, code):
    branch = f"intr-{uuid.uuid4().hex[:6]}"
    proc = start_run(branch, tmp_path, sleep=60)
    wait_ready(branch, tmp_path, 1, proc)
    namespace = sanitize_namespace(branch)
    assert leftovers(namespace, warm.urls), "the run should hold databases while it runs"
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # what a terminal's Ctrl+C does: the whole foreground group
    else:
        os.kill(proc.pid, sig)  # what a supervisor does: only the nox process
    assert proc.wait(timeout=60) == code, output(branch, tmp_path)
    deadline = time.monotonic() + 10
    while leftovers(namespace, warm.urls) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(namespace, warm.urls) == []
    assert warm.backend.healthy(), "another lease holds the services: they must stay up"


def test_sigkilled_run_is_reclaimed_by_the_next_run(warm, tmp_path):
    branch = f"kill-{uuid.uuid4().hex[:6]}"
    proc = start_run(branch, tmp_path, sleep=60)
    wait_ready(branch, tmp_path, 1, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    namespace = sanitize_namespace(branch)
    time.sleep(0.5)
    # Read the registry file as it lies: any registry call would already prune the dead lease.
    recorded = json.loads(service_leases.registry().path.read_text())["leases"]
    assert [lease["pid"] for lease in recorded if lease["namespace"] == namespace] == [proc.pid]
    assert any(item.startswith("finance_report_test_") for item in leftovers(namespace, warm.urls))

    again = start_run(branch, tmp_path)
    assert again.wait(timeout=300) == 0, output(branch, tmp_path)
    assert "leftover" in output(branch, tmp_path)
    assert leftovers(namespace, warm.urls) == []


def test_same_namespace_twice_is_refused_clearly(warm, tmp_path):
    branch = f"twice-{uuid.uuid4().hex[:6]}"
    first = start_run(branch, tmp_path, sleep=30)
    wait_ready(branch, tmp_path, 1, first)
    second = run_nox("-s", "test", "--", *probe_args(PROBE), BRANCH_NAME=branch)
    os.killpg(first.pid, signal.SIGINT)
    first.wait(timeout=60)
    assert second.returncode != 0
    assert "WORKSPACE_ID" in second.stdout
    assert "Traceback" not in second.stdout
