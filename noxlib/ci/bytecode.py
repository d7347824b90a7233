"""Compiled bytecode that survives between runs, also where PYTHONDONTWRITEBYTECODE is set.

Many machines and images (this repository's CI among them) export PYTHONDONTWRITEBYTECODE=1 to
keep `__pycache__` out of source trees. Python then compiles every module from source on every
import: nox itself (0.3 s of each `nox -l`), noxlib, and in a test run the app and the test
modules again in every pytest worker and every subprocess. The setting is about where bytecode
lands, so the suite keeps its intent and drops its cost:

- nox's environment (`.nox/_noxlib`) is compiled by uv when it installs it (`--compile-bytecode`,
  noxlib/core/nox_environment.py), because nox is imported before any of our code runs and reads
  bytecode only from beside its sources;
- everything else — noxlib in this process, and the Python processes sessions start — writes
  and reads its bytecode under `.nox/pycache` (PYTHONPYCACHEPREFIX), never in the source tree.

Where the variable is not set Python writes `__pycache__` as usual and nothing here acts; a
PYTHONPYCACHEPREFIX the person set is kept.
"""

from __future__ import annotations

import os
import sys

from noxlib.core.paths import NOX_DIR

BYTECODE_DIR = NOX_DIR / "pycache"
VARIABLES = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
# The person's values of VARIABLES before `keep_bytecode` changed them (empty when it did not).
_persons_values: dict[str, str | None] = {}


def keep_bytecode() -> None:
    """Send all later bytecode to `.nox/pycache`."""
    if not sys.dont_write_bytecode:
        return
    _persons_values.update({name: os.environ.get(name) for name in VARIABLES})
    prefix = os.environ.get("PYTHONPYCACHEPREFIX") or str(BYTECODE_DIR)
    sys.pycache_prefix = prefix
    sys.dont_write_bytecode = False
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


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
