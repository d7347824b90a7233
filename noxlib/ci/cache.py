"""What each session declares beside its definition, and the input-hash cache `nox -s ci` builds on it.

moon skipped tasks whose inputs had not changed; nox has no such cache, so a developer's tenth
`nox -s ci` of the day would redo minutes of work for nothing. Each ci session declares, where
the noxfile defines it (`@session(..., inputs=[...])`), what its result depends on: git glob
pathspecs of the files it reads (lockfiles included), tool versions and environment variables.
Their hash is taken *before* the session runs and recorded only when it passed, so an edit made
during a run, a red run, or any change at all makes the next `ci` run it again. GitHub
(`CI=true`) and `--no-cache` never skip. `nox -s audit_inputs` checks the declarations against
what each session really opens (noxlib/ci/audit.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noxlib.core.json_store import JsonFile
from noxlib.core.paths import REPO_ROOT

CACHE_NAME = "ci-cache.json"

# Every session depends on how it is run: the suite itself, the pins, the interpreter.
COMMON_INPUTS = ("noxfile.py", "noxlib/**", "pyproject.toml", "uv.lock", "apps/backend/pyproject.toml")
COMMON_ENV = ("FR_SERVICES", "CONTAINER_RUNTIME")


@dataclass(frozen=True)
class Declaration:
    """What a session says about itself beside its definition: the noxfile stays the one list.

    `inputs` are git glob pathspecs (`**` crosses directories, `*` does not); a session without
    inputs is never cached. `always_runs` says why a session is never cached although it reads
    files (its result depends on something no hash sees). Sessions with the same `exclusive`
    group never run at once in `ci`. A shard names the session `ci` runs here in its place
    (`local`); `requires` is nox's own (a report's test runs), recorded for `ci`'s plan. `cold_seconds` orders a fresh
    checkout's first `ci` (longest first) before any duration is on record. `skip_reason` is the
    session's own test for a skip (no container engine): `ci` asks it in-process and reports the
    skip without starting a nox that would only skip.
    """

    inputs: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    always_runs: str = ""
    exclusive: str = ""
    local: str = ""
    requires: tuple[str, ...] = ()
    cold_seconds: float = 0.0
    skip_reason: Callable[[], str | None] | None = None

    @property
    def cacheable(self) -> bool:
        return bool(self.inputs) and not self.always_runs


# Filled by `declare` as the noxfile is imported: session name → its declaration.
DECLARED: dict[str, Declaration] = {}


def declare(name: str, **fields: Any) -> Declaration:
    """Record what session `name` declares; the noxfile's `@session` calls this."""
    for key in ("inputs", "env", "tools", "requires"):
        if key in fields:
            fields[key] = tuple(fields[key])
    DECLARED[name] = Declaration(**fields)
    return DECLARED[name]


def declaration(name: str) -> Declaration:
    """The declaration of session `name` (its base name: `test-3.12`, not its parametrized signature)."""
    return DECLARED.get(name.split("(", 1)[0], Declaration())


def _pathspecs(patterns: Iterable[str]) -> list[str]:
    # git's own glob matching, the one a developer's .gitignore uses: nothing re-implemented here.
    return [f":(glob){pattern}" for pattern in patterns]


def tracked_files(root: Path = REPO_ROOT, patterns: Sequence[str] | None = None) -> list[str]:
    """Files git would commit (tracked, plus untracked ones not ignored), matching `patterns` when given."""
    specs = ["--", *_pathspecs(patterns)] if patterns is not None else []
    if patterns is not None and not patterns:
        return []
    result = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", *specs],
        cwd=root,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        return []
    return sorted({name for name in result.stdout.decode(errors="surrogateescape").split("\0") if name})


def input_files(name: str, root: Path = REPO_ROOT) -> list[str]:
    """The files session `name`'s result depends on (its inputs and the common ones)."""
    return InputSnapshot(root).input_files(name)


def _tool_version(tool: str) -> str:
    executable = shutil.which(tool)
    if not executable:
        return f"{tool}: missing"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=10, check=False)
        return f"{tool}: {result.stdout.strip() or result.stderr.strip()}"
    return f"{tool}: unknown"


def file_digest(path: Path) -> bytes:
    """A file's content hash; a fixed marker when it cannot be read (deleted but still in the
    index, or a directory in a file's place), so that change is seen too."""
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return b"<unreadable>"


class InputSnapshot:
    """The checkout as one `ci` run hashes it: each file list, file and tool version read once.

    Every session shares the common inputs (uv.lock alone is 0.7 MB) and most share a tool
    (node, psql): hashed per session, a run where every session is cached read the same files
    and started the same `node --version` a dozen times. A file is read when the first session
    that needs it is hashed, before that session runs: an edit made later in the run is seen by
    the next `ci`, as an edit made during a session always was.
    """

    def __init__(self, root: Path = REPO_ROOT) -> None:
        self.root = root
        self._listed: dict[tuple[str, ...], list[str]] = {}
        self._digests: dict[str, bytes] = {}
        self._tools: dict[str, str] = {}

    def input_files(self, name: str) -> list[str]:
        """The files session `name`'s result depends on (its inputs and the common ones)."""
        declared = declaration(name)
        if not declared.inputs:
            return []
        patterns = (*COMMON_INPUTS, *declared.inputs)
        if patterns not in self._listed:
            self._listed[patterns] = tracked_files(self.root, patterns)
        return self._listed[patterns]

    def digest(self, path_name: str) -> bytes:
        if path_name not in self._digests:
            self._digests[path_name] = file_digest(self.root / path_name)
        return self._digests[path_name]

    def tool_version(self, tool: str) -> str:
        if tool not in self._tools:
            self._tools[tool] = _tool_version(tool)
        return self._tools[tool]


def input_hash(name: str, root: Path = REPO_ROOT, snapshot: InputSnapshot | None = None) -> str | None:
    """The hash of everything session `name` declares as input; None when it is never cached."""
    declared = declaration(name)
    if not declared.cacheable:
        return None
    snapshot = snapshot or InputSnapshot(root)
    digest = hashlib.sha256()
    digest.update(f"python {platform.python_version()}\n".encode())
    for path_name in snapshot.input_files(name):
        digest.update(path_name.encode(errors="surrogateescape") + b"\0")
        digest.update(snapshot.digest(path_name))
    for tool in declared.tools:
        digest.update(snapshot.tool_version(tool).encode() + b"\n")
    for key in (*COMMON_ENV, *declared.env):
        digest.update(f"{key}={os.environ.get(key, '<unset>')}\n".encode())
    return digest.hexdigest()


@dataclass
class CiCache:
    """The record of each session's last green input hash, shared safely by concurrent `ci` runs."""

    root: Path = REPO_ROOT
    path: Path = field(init=False)
    snapshot: InputSnapshot = field(init=False)

    def __post_init__(self) -> None:
        self.path = self.root / ".nox" / CACHE_NAME
        self.snapshot = InputSnapshot(self.root)

    def hash_for(self, session: str) -> str | None:
        return input_hash(session, self.root, self.snapshot)

    def is_fresh(self, session: str, current: str | None) -> bool:
        """Read without the lock (and without writing the file back, as `record` does): every
        write is an atomic rename, so a reader sees a whole file, an earlier one or a later one."""
        if current is None:
            return False
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):  # none yet, a directory in its place, torn by hand: no green run
            return False
        entry = data.get(session) if isinstance(data, dict) else None
        return isinstance(entry, dict) and entry.get("hash") == current

    def record(self, session: str, current: str | None, passed: bool) -> None:
        """Remember a green run's hash; forget the session after a red one (never cache a failure)."""
        with JsonFile(self.path).locked() as data:
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
