"""Several `nox -s test` in one checkout share its session venv without breaking each other.

Before venvs were kept and locked, each run recreated `.nox/test` under the others and they
failed with `No module named 'iniconfig'`. These runs use an envdir of their own that starts
empty, so they race for its creation exactly as three terminals on a fresh checkout do.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from noxlib.ci.venvs import INPUTS_MARKER
from tests.runs import GATED_PROBE, PROBE, REPO, nox_env, output, probe_args, release_gate, wait_ready

# One worker for the module: the re-sync starts from the venv the first test built.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(name="checkout_envdir")]

SYNCED = "uv sync --no-default-groups"


@pytest.fixture(scope="module")
def envdir(tmp_path_factory) -> Path:
    """An envdir of this module's runs: no `test` venv in it yet."""
    return tmp_path_factory.mktemp("checkout") / ".nox"


def start(envdir: Path, branch: str, tmp_path: Path, *nox_args: str, probe: Path = PROBE) -> subprocess.Popen:
    """`nox -s test` on one probe, as a developer types it (no -R: nox decides about the venv)."""
    ready = tmp_path / f"ready-{branch}"
    ready.mkdir(exist_ok=True)
    # The child gets its own copy of the descriptor; ours is closed at once (a file left to
    # the garbage collector is a ResourceWarning, an error under filterwarnings=error).
    with open(tmp_path / f"{branch}.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "nox", "--envdir", str(envdir), *nox_args,
             "-s", "test", "--", *probe_args(probe)],
            cwd=REPO,
            env=nox_env(BRANCH_NAME=branch, PROBE_READY_DIR=str(ready)),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip


def test_three_runs_started_together_build_the_venv_once_and_all_pass(services, envdir, tmp_path):
    branches = [f"same-{uuid.uuid4().hex[:6]}-{index}" for index in range(3)]
    procs = []
    for branch in branches:
        procs.append(start(envdir, branch, tmp_path))
        time.sleep(1)  # a second apart, as in the report
    codes = [proc.wait(timeout=900) for proc in procs]
    logs = [output(branch, tmp_path) for branch in branches]
    for code, log in zip(codes, logs, strict=True):
        assert code == 0, log
        assert "No module named" not in log
    # One installed it; the two that started while it did waited and then kept it as it was.
    # (nox may create the bare venv twice when two runs look for it at once: `--allow-existing`
    # makes that take nothing away, noxlib/ci/venvs.py.)
    assert sum(SYNCED in log for log in logs) == 1, "\n\n".join(logs)
    assert not [log for log in logs if "Rebuilding" in log], "\n\n".join(logs)


def test_a_forced_rebuild_waits_for_the_run_using_the_venv(services, envdir, tmp_path):
    user, rebuilder = f"user-{uuid.uuid4().hex[:6]}", f"rebuild-{uuid.uuid4().hex[:6]}"
    using = start(envdir, user, tmp_path, probe=GATED_PROBE)
    wait_ready(user, tmp_path, 1, using)
    rebuilding = start(envdir, rebuilder, tmp_path, "--reuse-venv", "never")
    wait_for_line(rebuilding, rebuilder, tmp_path, "no other run uses")
    assert "uv venv --clear" not in output(rebuilder, tmp_path), "it must not rebuild while the other run uses the venv"
    release_gate(user, tmp_path)
    assert using.wait(timeout=300) == 0, output(user, tmp_path)
    assert rebuilding.wait(timeout=600) == 0, output(rebuilder, tmp_path)
    assert "Rebuilding" in output(rebuilder, tmp_path)


def test_a_resync_waits_for_the_run_using_the_venv(services, envdir, tmp_path):
    """uv.lock changed while a run's pytest uses the venv: the next run's `uv sync` waits for it."""
    user, syncer = f"user-{uuid.uuid4().hex[:6]}", f"sync-{uuid.uuid4().hex[:6]}"
    using = start(envdir, user, tmp_path, probe=GATED_PROBE)
    wait_ready(user, tmp_path, 1, using)
    # What another uv.lock looks like to the next run: the venv's record names another lock.
    record = envdir / "test" / INPUTS_MARKER
    record.write_text(record.read_text().replace("uv.lock ", "uv.lock other-"))
    syncing = start(envdir, syncer, tmp_path)
    wait_for_line(syncing, syncer, tmp_path, "no other run uses")
    assert SYNCED not in output(syncer, tmp_path), "it must not sync while the other run uses the venv"
    release_gate(user, tmp_path)
    assert using.wait(timeout=300) == 0, output(user, tmp_path)
    assert syncing.wait(timeout=600) == 0, output(syncer, tmp_path)
    assert SYNCED in output(syncer, tmp_path)
    assert "uv.lock other-" not in record.read_text()


def wait_for_line(run: subprocess.Popen, branch: str, tmp_path: Path, text: str) -> None:
    """Until the run says `text`: it is waiting for the lock (the deadline only ends a hung test)."""
    deadline = time.monotonic() + 120
    while text not in output(branch, tmp_path):
        assert run.poll() is None, output(branch, tmp_path)
        assert time.monotonic() < deadline, output(branch, tmp_path)
        time.sleep(0.2)
