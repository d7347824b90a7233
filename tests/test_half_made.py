"""Nothing half-made is trusted: a session venv whose install was killed, and state files found broken.

Each test does what happened to a developer — a real `nox` killed by a real SIGKILL in the middle
of `uv sync`, a directory or stray bytes where a state file should be — and then runs nox again
as they would, expecting it to work (or to say in one line what is wrong), never to trust the
broken thing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from noxlib.ci.venvs import INPUTS_MARKER
from tests.runs import REPO, nox_env, output, start_in_terminal, start_run

pytestmark = pytest.mark.slow

CREATED = "Creating virtual environment"
TRACEBACK = "Traceback (most recent call last)"


def install(envdir: Path, session: str = "test") -> list[str]:
    """`nox -s SESSION --install-only` as a developer types it: nox decides about the venv."""
    return [sys.executable, "-m", "nox", "--envdir", str(envdir), "-s", session, "--install-only"]


def installed(venv: Path) -> list[Path]:
    return list(venv.glob("lib/python*/site-packages/*.dist-info"))


def kill_during_install(envdir: Path, log: Path) -> None:
    """SIGKILL the run once uv has begun to put packages in place, as the report's 0.1 to 0.3 s kills did."""
    run = start_in_terminal(install(envdir), log)
    deadline = time.monotonic() + 300
    while not installed(envdir / "test"):
        assert run.poll() is None, "the install ended before it could be killed:\n" + log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.005)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()


def test_a_venv_whose_uv_sync_was_killed_is_rebuilt_not_trusted(tmp_path):
    """The record was written before `uv sync` ran: after a kill during it the next runs said
    `Reusing .nox/test: nothing it installs changed`, then `Program alembic not found`."""
    envdir = tmp_path / ".nox"
    kill_during_install(envdir, tmp_path / "killed.log")
    assert not (envdir / "test" / INPUTS_MARKER).exists(), "a record of an install that never finished"

    again = subprocess.run(install(envdir), cwd=REPO, env=nox_env(), capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "test: no record that its last install finished" in again.stderr
    assert "uv venv --clear" in again.stderr, "the half-installed venv was reused"
    alembic = subprocess.run([envdir / "test" / "bin" / "alembic", "--help"], capture_output=True, check=False)
    assert alembic.returncode == 0, alembic.stderr

    # Once finished, the venv is kept: the next run neither warns nor rebuilds.
    kept = subprocess.run(install(envdir), cwd=REPO, env=nox_env(), capture_output=True, text=True, check=False)
    assert kept.returncode == 0, kept.stderr
    assert CREATED not in kept.stderr
    assert "Rebuilding" not in kept.stderr
    assert "uv sync" not in kept.stderr


def a_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


BROKEN = {
    "record is a directory": (lambda venv: a_directory(venv / INPUTS_MARKER), "a directory in place of its record"),
    "record is not UTF-8": (lambda venv: (venv / INPUTS_MARKER).write_bytes(b"\xff\xfe python\n"), "is not text"),
    "lock is a directory": (lambda venv: a_directory(venv.parent / f"{venv.name}.lock"), "lint.lock was unreadable"),
}


@pytest.mark.parametrize(("plant", "reason"), BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_venv_record_or_lock_is_one_line_and_the_venv_is_made_whole(tmp_path, plant, reason):
    """A directory in place of `.nox/<session>.lock` or `.noxlib-inputs`, or stray bytes in the
    record, ended in tracebacks (IsADirectoryError, UnicodeDecodeError)."""
    envdir = tmp_path / ".nox"
    first = subprocess.run(install(envdir, "lint"), cwd=REPO, env=nox_env(), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    venv = envdir / "lint"
    plant(venv)

    again = subprocess.run(install(envdir, "lint"), cwd=REPO, env=nox_env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert TRACEBACK not in again.stdout + again.stderr
    assert [line for line in again.stderr.splitlines() if reason in line], again.stderr
    assert (venv / INPUTS_MARKER).is_file()
    assert subprocess.run([venv / "bin" / "ruff", "--version"], capture_output=True, check=False).returncode == 0


def test_a_directory_in_place_of_the_template_lock_is_one_line_and_the_run_goes_on(services, tmp_path):
    """A directory in place of the state directory's `template.lock` ended every run in a traceback."""
    lock = Path(os.environ["FR_CACHE_DIR"]) / "template.lock"
    lock.unlink(missing_ok=True)
    lock.mkdir()
    branch = f"template-lock-{uuid.uuid4().hex[:6]}"
    run = start_run(branch, tmp_path, workers=0)
    assert run.wait(timeout=300) == 0, output(branch, tmp_path)
    text = output(branch, tmp_path)
    assert TRACEBACK not in text
    assert "template.lock was unreadable (a directory, not a file); moved it to" in text
    assert lock.is_file()
    for moved in lock.parent.glob("template.lock.corrupt-*"):
        moved.rmdir()
