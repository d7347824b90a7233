"""The ci-tagged sessions as `nox -t ci -l --json` lists them, kept until what the list is made of changes.

nox documents no in-process way to list a noxfile's sessions, so `ci` starts a second nox for it:
another interpreter, nox and the whole noxfile imported again — in a run where every session is
cached, about half of what `nox -s ci` costs. The list is a function of the noxfile, the noxlib
it imports, pyproject.toml (the Pythons), nox's version, the interpreter and nox's own `NOX*`
variables (`NOXPYTHON` filters it); `.nox/ci-sessions.json` keeps the last list under a hash of
all of them, so a list is used again only for exactly the same inputs. `--no-cache` and
`CI=true` list afresh, as they run every session.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import noxlib
from noxlib.ci.cache import file_digest
from noxlib.core.errors import UserError
from noxlib.core.json_store import JsonFile

# One entry of `nox -l --json`: session, name, signatures, python, tags, call_spec, description.
SessionEntry = dict[str, Any]
CI_TAG = "ci"
LISTING_NAME = "ci-sessions.json"
# Bumped when what is stored changes shape: an older file is then listed afresh.
LISTING_FORMAT = "1"
# An activated venv's variables would point each child's uv at the wrong environment.
VENV_VARIABLES = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON")


def nox_command(noxfile: Path, *args: str) -> list[str]:
    """nox run by the interpreter that runs us: the noxfile's script environment."""
    return [sys.executable, "-m", "nox", "--noxfile", str(noxfile), *args]


def nested_nox_env() -> dict[str, str]:
    """The environment for a nox started from inside nox (ci, bench, the suite's tests)."""
    # The parent runs with noxlib's libraries, so the child nox uses them as they are (no re-exec).
    return {key: value for key, value in os.environ.items() if key not in VENV_VARIABLES}


def list_sessions(noxfile: Path) -> list[SessionEntry]:
    """The ci-tagged sessions as a nox of their own lists them (signature, python, tags, call_spec)."""
    result = subprocess.run(
        nox_command(noxfile, "-t", CI_TAG, "-l", "--json"),
        capture_output=True, text=True, cwd=noxfile.parent, env=nested_nox_env(), check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise UserError(f"could not list the ci sessions: {result.stderr.strip().splitlines()[-1:]}")
    listed: list[SessionEntry] = json.loads(result.stdout)
    return listed


def listing_key(noxfile: Path) -> str:
    """A hash of everything the list depends on (see the module's docstring)."""
    digest = hashlib.sha256(f"{LISTING_FORMAT}\n{sys.executable}\n{sys.version}\n".encode())
    digest.update(f"nox {importlib.metadata.version('nox')}\n".encode())
    for key in sorted(name for name in os.environ if name.startswith("NOX")):
        digest.update(f"{key}={os.environ[key]}\n".encode())
    # The noxlib this process imported: a test's noxfile elsewhere imports this checkout's.
    package = Path(noxlib.__file__).parent
    sources = [noxfile, noxfile.parent / "pyproject.toml", *sorted(package.rglob("*.py"))]
    for path in sources:
        digest.update(str(path).encode(errors="surrogateescape") + b"\0")
        digest.update(file_digest(path))
    return digest.hexdigest()


def ci_sessions(noxfile: Path, *, reuse: bool = False) -> list[SessionEntry]:
    """The ci-tagged sessions; with `reuse`, the list kept from an earlier run with the same inputs."""
    if not reuse:
        return list_sessions(noxfile)
    key = listing_key(noxfile)
    store = JsonFile(noxfile.parent / ".nox" / LISTING_NAME)
    with store.locked() as kept:
        sessions = kept.get("sessions")
        if kept.get("key") == key and isinstance(sessions, list):
            return sessions
    sessions = list_sessions(noxfile)
    # Kept only once the list came back whole: a failed listing leaves the old entry to be replaced.
    with store.locked() as kept:
        kept.clear()
        kept.update(key=key, sessions=sessions)
    return sessions
