"""Whole `nox -s test` runs against real native services: concurrency, interrupts, crashes.

Each run executes tests/lifecycle/probe_run.py, which checks the environment it was handed and
leaves a database row, an S3 object and a Redis key behind for the cleanup to remove.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import psycopg
import pytest

from noxlib import buckets, lifecycle
from noxlib.namespace import get_s3_bucket, get_test_db_name, sanitize_namespace

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(name="postgres")]

REPO = Path(__file__).resolve().parent.parent
# Prepared once by the noxlib_test session (noxlib/suite_tests.py); every inner run reuses it.
ENVDIR = os.environ.get("FR_SUITE_NOX_ENVDIR", str(REPO / ".nox" / "suite-envs"))
PROBE = Path(__file__).resolve().parent / "lifecycle" / "probe_run.py"


def nox_env(**extra: str) -> dict[str, str]:
    """The outer session's venv variables would point the inner nox's uv at the wrong venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON", "CONDA_PREFIX")
    }
    return dict(env, NOX_SCRIPT_MODE="none", **extra)


def start_run(branch: str, tmp_path: Path, *, sleep: float = 0, workers: int = 2) -> subprocess.Popen:
    ready = tmp_path / f"ready-{branch}"
    ready.mkdir(exist_ok=True)
    env = nox_env(BRANCH_NAME=branch, PROBE_READY_DIR=str(ready), PROBE_SLEEP=str(sleep))
    log = open(tmp_path / f"{branch}.log", "wb")  # noqa: SIM115 - closed by the OS with the child
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nox",
            "--envdir",
            str(ENVDIR),
            "-R",
            "-s",
            "test",
            "--",
            "--no-cov",
            "-n",
            str(workers),
            "-p",
            "no:cacheprovider",
            str(PROBE),
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    """xdist workers ignore SIGINT and children inherit that; a terminal's run would not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def output(branch: str, tmp_path: Path) -> str:
    return (tmp_path / f"{branch}.log").read_text(errors="replace")


def wait_ready(branch: str, tmp_path: Path, count: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while len(list((tmp_path / f"ready-{branch}").iterdir())) < count:
        assert proc.poll() is None, output(branch, tmp_path)
        assert time.monotonic() < deadline, output(branch, tmp_path)
        time.sleep(0.1)


def leftovers(namespace: str, urls) -> list[str]:
    """Everything a run of `namespace` could leave behind; empty when it cleaned up."""
    found = []
    with psycopg.connect(urls.database_url(), autocommit=True) as connection:
        rows = connection.execute("SELECT datname FROM pg_database").fetchall()
    found += [name for (name,) in rows if name.startswith(get_test_db_name(namespace))]
    if buckets.bucket_exists(urls, get_s3_bucket(namespace)):
        found.append(f"bucket {get_s3_bucket(namespace)}")
    found += [
        f"lease pid {lease.pid}" for lease in lifecycle.registry().snapshot().leases if lease.namespace == namespace
    ]
    for process in psutil.process_iter(["cmdline"]):
        try:
            if (
                str(PROBE) in " ".join(process.info["cmdline"] or [])
                and process.environ().get("TEST_NAMESPACE") == namespace
            ):
                found.append(f"process {process.pid}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture(scope="module")
def warm(services):
    """One serial run first: it builds the template the other runs then reuse."""
    branch = f"warm-{uuid.uuid4().hex[:6]}"
    env = nox_env(BRANCH_NAME=branch)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nox",
            "--envdir",
            str(ENVDIR),
            "-R",
            "-s",
            "test",
            "--",
            "--no-cov",
            "-n",
            "0",
            str(PROBE),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
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
    recorded = json.loads(lifecycle.registry().path.read_text())["leases"]
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
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "nox",
            "--envdir",
            str(ENVDIR),
            "-R",
            "-s",
            "test",
            "--",
            "--no-cov",
            str(PROBE),
        ],
        cwd=REPO,
        env=nox_env(BRANCH_NAME=branch),
        capture_output=True,
        text=True,
        check=False,
    )
    os.killpg(first.pid, signal.SIGINT)
    first.wait(timeout=60)
    assert second.returncode != 0
    assert "WORKSPACE_ID" in second.stdout + second.stderr
    assert "Traceback" not in second.stdout + second.stderr
