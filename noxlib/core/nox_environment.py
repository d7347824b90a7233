"""The interpreter nox runs this noxfile in: noxlib's locked libraries, built by uv under uv's lock.

`uvx nox` starts nox in uv's tool environment, which holds nox alone. nox's own answer, a PEP 723
block in the noxfile, has nox build `.nox/_nox_script_mode` before it reads any of our code, and
without a lock: two first runs in one checkout (two terminals, `ci` beside `test`) both run
`uv venv --clear` on it, and on a loaded machine one fails ("Failed to create virtual
environment") or leaves it half-built for later runs. So the noxfile carries no such block.
When the interpreter importing it lacks the `noxlib` dependency group, `uv sync` brings
`.nox/_noxlib` to that group of uv.lock (uv holds a lock on a project environment while it
creates and syncs it, and installs nothing when it is in sync) and nox starts again there with
the same arguments. An interpreter that already has the libraries (the suite's test venv, a
venv of the person's) is used as it is.

Only the standard library, nox and packaging (nox's own dependency) are imported here: this runs
before anything else the noxfile imports, possibly on a Python older than the suite supports.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nox.project
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

GROUP = "noxlib"
ENVIRONMENT = Path(".nox") / "_noxlib"
# Set for the nox started in the environment: one that still lacks a library says so, never loops.
STARTED = "FR_NOX_ENVIRONMENT"


def find_uv() -> str | None:
    """uv sets `UV` for the processes it runs (uvx nox); otherwise look on PATH."""
    return os.environ.get("UV") or shutil.which("uv")


def requires_python(pyproject: dict[str, Any]) -> str:
    """The project's `requires-python` (pyproject.toml says it once, for uv and for us)."""
    return str(pyproject["project"]["requires-python"])


def unmet(root: Path) -> list[str]:
    """What of the `noxlib` group (and the Python it needs) this interpreter lacks."""
    pyproject = nox.project.load_toml(root / "pyproject.toml")
    if platform.python_version() not in SpecifierSet(requires_python(pyproject)):
        return [f"python{requires_python(pyproject)}"]
    lacking = []
    for line in nox.project.dependency_groups(pyproject, GROUP):
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            lacking.append(line)
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            lacking.append(line)
    return lacking


def run_nox_with_noxlib(noxfile: Path) -> None:
    """Return when this interpreter has noxlib's libraries; otherwise build them and re-run nox there."""
    root = noxfile.parent
    lacking = unmet(root)
    if not lacking:
        os.environ.pop(STARTED, None)  # a `uvx nox` this run starts (a journey, the bench) builds its own
        return
    if os.environ.get(STARTED):
        raise SystemExit(f"nox: {ENVIRONMENT} still lacks {', '.join(lacking)}; delete it and run again.")
    uv = find_uv()
    if not uv:
        raise SystemExit("nox: this noxfile needs uv to build its environment; install it (pip install uv).")
    environment = root / ENVIRONMENT
    first = not (environment / "bin" / "python").exists()
    sync = [uv, "sync", "--project", str(root), "--only-group", GROUP, "--locked", "--compile-bytecode"]
    if first:
        print(f"nox > Building {ENVIRONMENT} (the noxlib group of uv.lock) with uv, once", file=sys.stderr, flush=True)
    else:
        sync.append("--quiet")
    result = subprocess.run(sync, env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(environment)}, check=False)
    if result.returncode in (-2, 130):
        raise SystemExit(130)
    if result.returncode != 0:
        wanted = requires_python(nox.project.load_toml(root / "pyproject.toml"))
        found = subprocess.run([uv, "python", "find", wanted], capture_output=True, check=False).returncode == 0
        if not found:  # the line nox's own script mode gave, which the docs' troubleshooting explains
            raise SystemExit(f"No Python satisfies \"requires-python\": '{wanted}'")
        raise SystemExit(f"nox: uv could not build {ENVIRONMENT} (its message is above).")
    python = environment / "bin" / "python"
    argv = [str(python), "-m", "nox", "--noxfile", str(noxfile), *sys.argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(python, argv, {**os.environ, STARTED: "1"})  # noqa: S606 - nox again, by its path, with our argv
