"""Where a `nox -s ci` run keeps its sessions' output: a directory of its own, never another run's.

Two `ci` runs in one checkout (two terminals, a pre-push hook beside a hand run) once shared
`.nox/artefacts/ci/<session>.log`, each opening it for writing from the start: one run's summary
then pointed at the other run's log, and the failure tail it printed was the other run's. Each
run now writes `.nox/artefacts/ci/<start time>-<pid>/`, a directory it creates itself (creation
fails if it exists), and reads only what it wrote there: each session's log and nox's `--report`.
Directories of earlier runs whose process has exited are removed, all but the newest few.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from noxlib.core.paths import ARTEFACTS_DIR, REPO_ROOT

# Relative to the noxfile's directory: `.nox/artefacts/ci/<run>/<session>.log` of the checkout.
LOG_ROOT = (ARTEFACTS_DIR / "ci").relative_to(REPO_ROOT)
LOG_TAIL_LINES = 30
# Earlier runs' logs kept for a look afterwards; older ones go when a run starts.
KEPT_RUNS = 10


@dataclass(frozen=True)
class RunLogs:
    """The log directory of one `ci` run."""

    directory: Path

    @classmethod
    def create(cls, root: Path) -> RunLogs:
        """A new directory for this run, named by its start and PID; earlier finished runs' pruned."""
        parent = root / LOG_ROOT
        parent.mkdir(parents=True, exist_ok=True)
        _prune(parent)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for attempt in range(100):
            directory = parent / (f"{stamp}-{os.getpid()}" + (f"-{attempt}" if attempt else ""))
            with contextlib.suppress(FileExistsError):
                directory.mkdir()
                return cls(directory)
        raise FileExistsError(f"no free log directory under {parent}")

    def path(self, signature: str) -> Path:
        return self.directory / (re.sub(r"[^A-Za-z0-9._-]+", "-", signature).strip("-") + ".log")

    def report(self, signature: str) -> Path:
        """Where the session's nox writes its `--report` JSON, beside its log."""
        return self.path(signature).with_suffix(".json")


def _prune(parent: Path) -> None:
    """Remove earlier runs' directories beyond the newest few, never one whose run is still going."""
    runs = sorted((path for path in parent.iterdir() if path.is_dir() and not path.is_symlink()), reverse=True)
    for old in runs[KEPT_RUNS:]:
        if not _run_alive(old.name):
            shutil.rmtree(old, ignore_errors=True)


def _run_alive(name: str) -> bool:
    parts = name.split("-")
    if len(parts) < 2 or not parts[1].isdigit():
        return False  # not a run's directory (an older version's): nothing runs there
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def copy_output(source: IO[bytes], log: IO[bytes], echo: bool) -> None:
    """Copy a child's output line by line into its log (and to our stdout with `-j 1`)."""
    with log:
        for line in iter(source.readline, b""):
            log.write(line)
            log.flush()
            if echo:
                sys.stdout.buffer.write(line)
                sys.stdout.flush()


def log_tail(path: Path, lines: int | None = LOG_TAIL_LINES) -> str:
    """The end of a child's log (all of it when `lines` is None), indented under its result line."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(f"    {line}" for line in (text[-lines:] if lines else text))


def reported_status(report: Path, returncode: int | None) -> tuple[str, str | None]:
    """The session's status (`success`, `skipped`, `failed`, `aborted`) and reason from nox's `--report`.

    nox exits 0 for a skipped session too; its documented JSON report tells the two apart. A child
    that wrote none (killed, or nox refused its arguments) is judged by its exit status alone.
    """
    try:
        [entry] = json.loads(report.read_text(encoding="utf-8"))["sessions"]
        status, reason = str(entry["result"]), entry.get("reason")
    except (OSError, ValueError, KeyError, TypeError):
        return ("success" if returncode == 0 else "failed"), None
    # A report of success from a child that failed afterwards (its exit status says so) is no pass.
    return ("failed" if returncode != 0 and status == "success" else status), reason
