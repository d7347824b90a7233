"""What a person types first, `uvx nox`, in fresh clones: nox's environment is built once, safely.

Issue 19 found two first `uvx nox` in one fresh clone breaking nox's script-mode environment
(`uv venv --clear` by two processes: "Failed to create virtual environment", a deleted METADATA,
every later run failing), and a first run killed while it was built leaving it half-made. The
noxfile now has uv build `.nox/_noxlib` (noxlib/core/nox_environment.py) under uv's own lock.
Real `uvx nox` (or `uv tool run nox`) in real clones, real SIGKILL; nothing stands in.
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from noxlib.core import nox_environment
from tests.runs import REPO, fresh_clone, nox_env

pytestmark = pytest.mark.slow
# Start offsets (s) of four first runs in one clone: together, and while the first builds.
OFFSETS = (0.0, 0.05, 0.2, 0.5)


def uv() -> str:
    if found := nox_environment.find_uv():
        return found
    pytest.skip("uv is not installed")


def uvx() -> list[str]:
    """uvx as the person types it: `uv tool run nox`."""
    return [uv(), "tool", "run", "nox"]


def list_sessions(clone: Path, delay: float = 0.0) -> subprocess.CompletedProcess[str]:
    time.sleep(delay)
    return subprocess.run(
        [*uvx(), "-l"], cwd=clone, env=nox_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=600, check=False,
    )  # fmt: skip


def assert_lists(run: subprocess.CompletedProcess[str], what: str) -> None:
    assert run.returncode == 0, f"{what}: rc {run.returncode}\n{run.stdout}"
    assert "- dev ->" in run.stdout, f"{what}: no session list\n{run.stdout}"


def test_four_first_runs_side_by_side_all_list_and_leave_the_clone_working(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path / "together")
    with ThreadPoolExecutor(max_workers=len(OFFSETS)) as pool:
        runs = list(pool.map(lambda delay: list_sessions(clone, delay), OFFSETS))
    for offset, run in zip(OFFSETS, runs, strict=True):
        assert_lists(run, f"first run at +{offset} s")
    assert_lists(list_sessions(clone), "the run after them")
    assert (clone / nox_environment.ENVIRONMENT / "bin" / "python").exists()
    assert not (clone / ".nox" / "_nox_script_mode").exists(), "nox's unlocked script-mode environment is not used"


def test_a_first_run_killed_while_its_environment_is_built_leaves_nothing_trusted(tmp_path: Path) -> None:
    """SIGKILL to the whole first run (uv included) once uv has begun; the next run repairs it."""
    clone = fresh_clone(tmp_path / "killed")
    environment = clone / nox_environment.ENVIRONMENT
    first = subprocess.Popen(
        [*uvx(), "-l"], cwd=clone, env=nox_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not environment.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert environment.exists(), "uv never began building the environment"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    assert_lists(list_sessions(clone), "the run after the killed one")


def test_an_interpreter_without_noxlibs_libraries_after_the_build_says_so_in_one_line(tmp_path: Path) -> None:
    """The re-run nox still lacking a library (a tampered environment) stops with one line, no loop."""
    venv = tmp_path / "nox-alone"
    subprocess.run([uv(), "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=120)
    install = [uv(), "pip", "install", "-q", "--python", str(venv / "bin" / "python")]
    subprocess.run([*install, f"nox=={importlib.metadata.version('nox')}"], check=True, timeout=300)
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "nox", "--noxfile", str(REPO / "noxfile.py"), "-l"],
        cwd=REPO, env=nox_env(**{nox_environment.STARTED: "1"}), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    [line] = [text for text in run.stderr.splitlines() if "_noxlib" in text]
    assert "still lacks" in line
    assert "psutil" in line
