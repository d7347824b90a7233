"""npm projects of the repo (the frontend, tools/lint): install only when the lockfile changed.

`npm ci` wipes node_modules and reinstalls — tens of seconds for the frontend on every session
for nothing. A stamp in node_modules records the lockfile digest it was installed from, so the
common case costs a hash and a lockfile bump still reinstalls.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from noxlib.core.errors import UserError
from noxlib.core.paths import REPO_ROOT

STAMP = ".package-lock.sha256"


def lockfile_digest(directory: Path) -> str:
    return hashlib.sha256((directory / "package-lock.json").read_bytes()).hexdigest()


def npm_install_needed(directory: Path) -> bool:
    """True unless node_modules carries a stamp equal to the current lockfile's digest."""
    stamp = directory / "node_modules" / STAMP
    if not stamp.is_file():
        return True
    return stamp.read_text(encoding="utf-8").strip() != lockfile_digest(directory)


def npm_executable(purpose: str) -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise UserError(f"{purpose} needs Node.js 20+ and npm on PATH; install them and rerun.")
    return npm


def ensure_node_modules(
    directory: Path, *, purpose: str, log: Callable[[str], Any] = print, ignore_scripts: bool = True
) -> bool:
    """`npm ci` in `directory` when its lockfile changed since the last install; True if it ran."""
    if not npm_install_needed(directory):
        return False
    npm = npm_executable(purpose)
    where = directory.relative_to(REPO_ROOT) if directory.is_relative_to(REPO_ROOT) else directory
    log(f"npm ci in {where}/ (package-lock.json changed since the last install: about 30 s, once)")
    argv = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    if ignore_scripts:
        argv.append("--ignore-scripts")
    result = subprocess.run(argv, cwd=directory, check=False)
    if result.returncode != 0:
        raise UserError(f"`npm ci` in {directory} failed (exit {result.returncode}); see above.")
    (directory / "node_modules" / STAMP).write_text(lockfile_digest(directory) + "\n")
    return True
