"""Input-hash cache for local `nox -s ci`: skip a session whose inputs are what they were when it last passed.

moon skipped tasks whose inputs had not changed; nox has no such cache, so a developer's tenth
`nox -s ci` of the day would redo minutes of work for nothing. Each ci session declares its
inputs here — file globs (lockfiles included), tool versions, and an allow-list of environment
variables. Their hash is taken *before* the session runs and recorded only when it passed, so
an edit made during a run, a red run, or any change at all makes the next `ci` run it again.
GitHub (`CI=true`) and `--no-cache` never skip.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noxlib.json_store import JsonFile
from noxlib.paths import REPO_ROOT

CACHE_NAME = "ci-cache.json"

# Every session depends on how it is run: the suite itself, the pins, the interpreter.
COMMON_GLOBS = ("noxfile.py", "noxlib/**", "pyproject.toml", "uv.lock", "apps/backend/pyproject.toml")
COMMON_ENV = ("FR_SERVICES", "CONTAINER_RUNTIME")

_BACKEND = ("apps/backend/**",)
_FRONTEND = ("apps/frontend/**",)


@dataclass(frozen=True)
class Inputs:
    """What a session's result depends on."""

    globs: tuple[str, ...]
    tools: tuple[str, ...] = ()
    env: tuple[str, ...] = ()


# ci sessions that always run, with why: their result depends on something no input hash sees.
NEVER_CACHED = {
    "compose_test": "whether a container engine answers (Docker Desktop started later) is not a file or a variable",
}

# The one list of cacheable sessions. A ci session missing here is simply never skipped.
SESSION_INPUTS: dict[str, Inputs] = {
    "lint": Inputs(
        globs=(
            "**/*.py",
            ".github/workflows/*",
            "scripts/*",
            ".ci/run",
            "**/Dockerfile",
            "docker-compose.yml",
            "tools/lint/package.json",
            "tools/lint/package-lock.json",
            "tools/lint/*.mjs",
            ".github/dependabot.yml",
        ),
        tools=("node",),
    ),
    # mypy reads every Python file it checks (and its configuration in pyproject.toml).
    "typecheck": Inputs(globs=("**/*.py",)),
    "api_types": Inputs(
        globs=(
            "apps/backend/src/**",
            "scripts/export_openapi.py",
            "apps/frontend/openapi.json",
            "apps/frontend/lib/api-types.ts",
            "apps/frontend/package.json",
            "apps/frontend/package-lock.json",
        ),
        tools=("node",),
    ),
    "test": Inputs(globs=_BACKEND, env=("BRANCH_NAME", "WORKSPACE_ID")),
    # Coverage data is derived from the backend and its tests: same inputs, same report.
    "coverage": Inputs(globs=_BACKEND),
    "noxlib_test": Inputs(
        globs=(
            "tests/**",
            "scripts/*",
            ".github/workflows/*",
            "docker-compose.yml",
            "tools/lint/**",
            ".env.example",
            "apps/backend/alembic/**",
            "apps/backend/src/**",
            ".ci/run",
            "apps/frontend/Dockerfile",
            "apps/backend/Dockerfile",
        ),
        tools=("node", "psql"),
    ),
    "docs": Inputs(globs=("docs/**", "mkdocs.yml", "apps/backend/src/**", "README.md")),
    "env_keys": Inputs(
        globs=(
            ".env.example",
            "repo/finance_report/finance_report/10.app/secrets.ctmpl",
            "scripts/check_env_keys.py",
            "apps/backend/src/**",
            "docker-compose.yml",
            "apps/frontend/**",
        ),
    ),
    "frontend_lint": Inputs(globs=_FRONTEND, tools=("node",)),
    "frontend_test": Inputs(globs=_FRONTEND, tools=("node",)),
    "frontend_build": Inputs(globs=_FRONTEND, tools=("node",), env=("NEXT_PUBLIC_APP_URL",)),
}


def tracked_files(root: Path = REPO_ROOT) -> list[str]:
    """Files git would commit (tracked, plus untracked ones that are not ignored)."""
    result = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        return []
    return sorted({name for name in result.stdout.decode().split("\0") if name})


def _matches(path: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        if fnmatch.fnmatchcase(path, pattern):
            return True
        if pattern.endswith("/**") and path.startswith(pattern[:-2]):
            return True
        # "**/x" also means "x" at the top level.
        if pattern.startswith("**/") and fnmatch.fnmatchcase(path, pattern[3:]):
            return True
    return False


def _tool_version(tool: str) -> str:
    executable = shutil.which(tool)
    if not executable:
        return f"{tool}: missing"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=10, check=False)
        return f"{tool}: {result.stdout.strip() or result.stderr.strip()}"
    return f"{tool}: unknown"


def input_hash(session: str, files: list[str] | None = None, root: Path = REPO_ROOT) -> str | None:
    """The hash of everything `session` declares as input; None when it declares nothing."""
    inputs = SESSION_INPUTS.get(session)
    if inputs is None:
        return None
    digest = hashlib.sha256()
    digest.update(f"python {platform.python_version()}\n".encode())
    patterns = (*COMMON_GLOBS, *inputs.globs)
    for name in files if files is not None else tracked_files(root):
        if not _matches(name, patterns):
            continue
        path = root / name
        digest.update(name.encode() + b"\0")
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except (FileNotFoundError, IsADirectoryError):
            digest.update(b"<missing>")
    for tool in inputs.tools:
        digest.update(_tool_version(tool).encode() + b"\n")
    for key in (*COMMON_ENV, *inputs.env):
        digest.update(f"{key}={os.environ.get(key, '<unset>')}\n".encode())
    return digest.hexdigest()


@dataclass
class CiCache:
    """The record of each session's last green input hash, shared safely by concurrent `ci` runs."""

    root: Path = REPO_ROOT
    files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = self.root / ".nox" / CACHE_NAME
        self.files = self.files or tracked_files(self.root)

    def _locked(self) -> contextlib.AbstractContextManager[dict[str, dict[str, Any]]]:
        return JsonFile(self.path).locked()

    def hash_for(self, session: str) -> str | None:
        return input_hash(session, self.files, self.root)

    def is_fresh(self, session: str, current: str | None) -> bool:
        if current is None:
            return False
        with self._locked() as data:
            return data.get(session, {}).get("hash") == current

    def record(self, session: str, current: str | None, passed: bool) -> None:
        """Remember a green run's hash; forget the session after a red one (never cache a failure)."""
        with self._locked() as data:
            if passed and current is not None:
                data[session] = {"hash": current, "at": time.time()}
            else:
                data.pop(session, None)


def cache_disabled(args: list[str], environ: dict[str, str] | None = None) -> str | None:
    """Why the cache is off for this run, or None when it is on."""
    env = os.environ if environ is None else environ
    if env.get("CI", "").lower() in ("1", "true", "yes"):
        return "CI=true: every session runs"
    if "--no-cache" in args:
        return "--no-cache: every session runs"
    return None
