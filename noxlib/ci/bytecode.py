"""Compiled bytecode that survives between runs, also where PYTHONDONTWRITEBYTECODE is set.

Many machines and images (this repository's CI among them) export PYTHONDONTWRITEBYTECODE=1 to
keep `__pycache__` out of source trees. Python then compiles every module from source on every
import: nox itself in its script-mode environment (0.3 s of each `nox -l`), noxlib, and in a
test run the app and the test modules again in every pytest worker and every subprocess. The
setting is about where bytecode lands, so the suite keeps its intent and drops its cost:

- nox's script-mode environment (`.nox/_nox_script_mode`, which nox builds for this noxfile)
  is compiled in place once after it changes, because nox is imported before any of our code
  runs and reads bytecode only from beside its sources;
- everything else — noxlib in this process, and the Python processes sessions start — writes
  and reads its bytecode under `.nox/pycache` (PYTHONPYCACHEPREFIX), never in the source tree.

Where the variable is not set Python writes `__pycache__` as usual and nothing here acts; a
PYTHONPYCACHEPREFIX the person set is kept.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from noxlib.core.paths import NOX_DIR

BYTECODE_DIR = NOX_DIR / "pycache"
SCRIPT_MODE_ENV = "_nox_script_mode"
# What the script-mode environment held when it was last compiled.
COMPILED_MARKER = ".noxlib-compiled"
VARIABLES = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
# The person's values of VARIABLES before `keep_bytecode` changed them (empty when it did not).
_persons_values: dict[str, str | None] = {}


def keep_bytecode() -> None:
    """Compile nox's own environment once, and send all later bytecode to `.nox/pycache`."""
    if not sys.dont_write_bytecode:
        return
    compile_script_environment()
    _persons_values.update({name: os.environ.get(name) for name in VARIABLES})
    prefix = os.environ.get("PYTHONPYCACHEPREFIX") or str(BYTECODE_DIR)
    sys.pycache_prefix = prefix
    sys.dont_write_bytecode = False
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def compile_script_environment() -> None:
    """Compile the packages of nox's script-mode environment, once per change of its contents."""
    environment = Path(sys.prefix)
    if environment.name != SCRIPT_MODE_ENV:
        return  # nox run some other way (NOX_SCRIPT_MODE=none, a venv of the person's): not ours
    packages = Path(sysconfig.get_paths()["purelib"])
    try:
        contents = "\n".join(sorted(entry.name for entry in packages.glob("*.dist-info"))) + "\n"
        marker = environment / COMPILED_MARKER
        if marker.is_file() and marker.read_text() == contents:
            return
        # Both cores, no output; a failure only means the next run compiles from source again.
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", str(packages)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        marker.write_text(contents)
    except OSError:
        return  # a read-only environment: nothing to keep


def as_the_person_set_it(environ: dict[str, str]) -> dict[str, str]:
    """`environ` with the bytecode variables the person had before `keep_bytecode`.

    For commands that must run as they would from the person's terminal: the benchmark's
    "before" checkout would otherwise be timed with this checkout's bytecode cache.
    """
    restored = dict(environ)
    for name, value in _persons_values.items():
        if value is None:
            restored.pop(name, None)
        else:
            restored[name] = value
    return restored
