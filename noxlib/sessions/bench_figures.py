"""What every `nox -s bench` row shares: a figure (median, min, max), timing, and quiet commands.

Machines are noisy, so every figure keeps its samples and is reported as their median with the
extremes beside it. A figure measured in the `--before REF` clone carries the label in its
name, so the report can pair it with this checkout's.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from noxlib.core.errors import UserError


@dataclass
class Figure:
    group: str
    name: str
    runs: list[float]
    # For a figure that times `nox -s ci`: each session's result in that run's summary table.
    sessions: dict[str, str] | None = field(default=None)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def row(self) -> str:
        return (
            f"{self.group:<10} {self.name:<56} {self.median:8.3f} {min(self.runs):8.3f} "
            f"{max(self.runs):8.3f} {len(self.runs):>3}"
        )


def labelled(name: str, label: str) -> str:
    """A figure's name in one checkout: this one's plain, the others' with `[label]` after it."""
    return name if label == "after" else f"{name} [{label}]"


def timed(function: Callable[[], object], runs: int, before: Callable[[], object] | None = None) -> list[float]:
    """Wall seconds of `function`, `runs` times; `before` (untimed) resets the state each time."""
    samples = []
    for _ in range(runs):
        if before:
            before()
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def completed(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command's result with stderr in its output (nox writes its timestamped log there)."""
    return subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def output_of(argv: list[str], env: dict[str, str], cwd: Path, *, merged: bool = False) -> str:
    """A command's stdout (with stderr when `merged`); a failure is a figure that cannot be had."""
    if merged:
        result = completed(argv, env, cwd)
    else:
        result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise UserError(f"benchmark command failed: {' '.join(argv[:4])} …\n{result.stdout[-2000:]}")
    return result.stdout


def state_dir(*names: str) -> Path:
    """A state directory of the benchmark's own (services, leases, templates) under /var/tmp.

    Not the developer's: measuring a cold start must never stop their services. 0755 and outside
    /tmp's private namespaces because PostgreSQL runs as another account and must reach it.
    """
    directory = Path("/var/tmp") / "-".join(["finance_report-bench", *names, str(os.getpid())])  # noqa: S108
    directory.mkdir(mode=0o755, exist_ok=True)
    return directory
