"""Running the suite's own tests, which start whole `nox -s test` runs of their own.

Those inner runs must not rebuild a venv under each other (two `uv venv --clear` on one
directory race), nor touch the developer's `.nox/test`: their venv is prepared once, here,
in a separate envdir, and every inner run reuses it with `-R`.
"""

from __future__ import annotations

import nox
from filelock import FileLock

from noxlib.ci import VENV_VARIABLES
from noxlib.paths import NOX_DIR

INNER_ENVDIR = NOX_DIR / "suite-envs"
# The real-engine compose tests have their own session (compose_test), so a runner with Docker
# does not build and run the images twice.
DEFAULT_ARGS = ["-n", "auto", "--dist", "loadgroup", "--ignore=tests/test_compose.py", "tests"]


def prepare_inner_runs(session: nox.Session) -> dict[str, str | None]:
    """Sync the inner `test` venv once; return the env that tells the tests where it is."""
    clean: dict[str, str | None] = dict.fromkeys(VENV_VARIABLES)
    INNER_ENVDIR.mkdir(parents=True, exist_ok=True)
    # Two suite runs in one checkout share the envdir: reuse the venv (uv sync is a no-op when it
    # is current) and never let two syncs run at once.
    with FileLock(str(INNER_ENVDIR / ".sync.lock")):
        session.run(
            "nox", "--envdir", str(INNER_ENVDIR), "--reuse-venv", "yes", "-s", "test", "--install-only",
            env={**clean, "NOX_SCRIPT_MODE": "none"},
        )  # fmt: skip
    return {"FR_SUITE_NOX_ENVDIR": str(INNER_ENVDIR)}
