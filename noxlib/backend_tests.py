"""How the backend's pytest is run: arguments, coverage files and (for the matrix) shards.

Coverage data goes to `.nox/coverage/` under a name per session, so shards of one machine do
not overwrite each other and the `coverage` session can combine whatever it finds there.
"""

from __future__ import annotations

import re

import nox

from noxlib import lifecycle
from noxlib.paths import BACKEND_DIR, NOX_DIR

COVERAGE_DIR = NOX_DIR / "coverage"
INHERITED_PYTEST_VARIABLES = (
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_XDIST_TESTRUNUID",
    "PYTEST_CURRENT_TEST",
    "PYTEST_ADDOPTS",
)
COVERAGE_ARGS = ["--cov=src", "--cov-branch", "--cov-report=term-missing:skip-covered"]


def coverage_file(session_name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", session_name).strip("-")
    return str(COVERAGE_DIR / f".coverage.{slug}")


def install_only(session: nox.Session) -> bool:
    """`nox --install-only` prepares venvs; it must not start services or touch databases."""
    # nox has no public accessor for this flag; session.run() itself reads the same attribute.
    return bool(getattr(session._runner.global_config, "install_only", False))


def run(session: nox.Session, *, shard: str | None = None, extra_args: list[str] | None = None) -> None:
    """Lease services, run pytest with the run's environment, clean up however it ends."""
    if install_only(session):
        return
    posargs = [*(extra_args or []), *session.posargs]
    coverage = "--no-cov" not in posargs
    default_args = list(COVERAGE_ARGS) if coverage else []
    if shard:
        # A shard sees part of the code; only the combined report can judge the threshold.
        default_args.append("--cov-fail-under=0")
    COVERAGE_DIR.mkdir(parents=True, exist_ok=True)
    with lifecycle.test_run(
        posargs,
        lifecycle.migrate_with_alembic(session.run),
        log=session.log,
        namespace_suffix=f"shard{shard.replace('/', 'of')}" if shard else None,
        default_args=default_args,
    ) as run:
        env: dict[str, str | None] = dict(run.env, COVERAGE_FILE=coverage_file(session.name))
        # A run started from inside another pytest (the suite's own tests) must not inherit
        # that pytest's worker identity: the app would pick the wrong worker database.
        env.update(dict.fromkeys(INHERITED_PYTEST_VARIABLES))
        with session.chdir(BACKEND_DIR):
            session.run("pytest", *run.pytest_args, env=env)
