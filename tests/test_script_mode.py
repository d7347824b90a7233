"""nox's script-mode environment (`.nox/_nox_script_mode`) when two first runs start together.

Issue 19 item 6: in a fresh clone, `uvx nox -l & sleep 0.6; uvx nox -l` failed at 2 of 4 start
offsets (`failed to remove directory …/lib`, `No module named 'nox'`), once leaving the clone
broken for every later run. nox builds that environment before it reads this repository's code,
so no code here can lock it (docs/development.md, Troubleshooting, says how to rebuild it); this
test walks what users type, at the offsets that failed, so the pinned uv and nox are held to it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.runs import REPO, nox_env

pytestmark = pytest.mark.slow
OFFSETS = (0.0, 0.2, 0.4, 0.6, 0.9)


def first_runs_together(uvx: str, clone: Path, offset: float) -> list[subprocess.CompletedProcess[str]]:
    """`uvx nox -l` in a fresh clone, a second one `offset` seconds later, then a third alone."""
    env = nox_env()
    env.pop("NOX_SCRIPT_MODE")  # the script mode is what is walked: `uvx nox` reads the PEP 723 block

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [uvx, "nox", "-l"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    first = start()
    time.sleep(offset)
    second = start()
    results = []
    for process in (first, second):
        output, _ = process.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, output))
    results.append(subprocess.run([uvx, "nox", "-l"], cwd=clone, env=env, capture_output=True, text=True,
                                  timeout=600, check=False))  # fmt: skip
    return results


def test_two_first_runs_in_a_fresh_clone_both_list_the_sessions_and_leave_it_working(tmp_path):
    uvx = shutil.which("uvx")
    if uvx is None:
        pytest.skip("uvx is not on PATH")
    clones = []
    for offset in OFFSETS:
        clone = tmp_path / f"offset-{offset}"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
        clones.append(clone)
    with ThreadPoolExecutor(max_workers=len(OFFSETS)) as pool:
        walks = list(pool.map(lambda pair: first_runs_together(uvx, *pair), zip(clones, OFFSETS, strict=True)))
    for offset, runs in zip(OFFSETS, walks, strict=True):
        for run in runs:
            assert run.returncode == 0, f"offset {offset} s: {run.args}\n{run.stdout}{run.stderr or ''}"
            assert "- dev ->" in run.stdout, f"offset {offset} s: no session list\n{run.stdout}"
