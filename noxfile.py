# /// script
# requires-python = ">=3.12"
# dependencies = [
#   "nox>=2026.10.20",
#   "nox-uv>=0.8.0",
#   "filelock>=3.16",
#   "psutil>=7.0",
#   "psycopg[binary]>=3.2",
#   "boto3>=1.35",
#   "redis>=5.0",
#   "docker>=7.1",
# ]
# ///
"""Finance Report's development sessions. `nox -l` lists them; docs/development.md explains them.

Each session is a sentence; the logic lives in noxlib/.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

# nox imports this file by path; noxlib sits beside it.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from nox_uv import session

import noxlib.ci as local_ci  # noqa: E402
from noxlib import backend_tests, lifecycle, suite_tests  # noqa: E402
from noxlib.errors import reported  # noqa: E402

nox.needs_version = ">=2026.10.20"
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "test"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)
DEFAULT_PYTHON = PYTHONS[0]


@session(python=DEFAULT_PYTHON, uv_groups=["test"])
@reported
def test(session: nox.Session) -> None:
    """Run the backend tests on isolated services (posargs go to pytest; default -n auto)."""
    backend_tests.run(session)


@session(python=False)
@reported
def ci(session: nox.Session) -> None:
    """Run every ci-tagged session like GitHub does and print a summary (-- --full, --matrix)."""
    local_ci.run(session)


@session(python=DEFAULT_PYTHON, uv_groups=["lint"], tags=["ci"])
def lint(session: nox.Session) -> None:
    """Check Python style and formatting with ruff."""
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@session(python=DEFAULT_PYTHON, uv_groups=["lint"])
def format(session: nox.Session) -> None:  # noqa: A001 - the session's name is the verb
    """Fix what ruff can fix and format the code."""
    session.run("ruff", "check", "--fix", ".")
    session.run("ruff", "format", ".")


@session(python=False)
@reported
def infra(session: nox.Session) -> None:
    """Start the services and keep them running; print their URLs (stop with `nox -s down`)."""
    lifecycle.keep_services(session.log)


@session(python=False)
@reported
def down(session: nox.Session) -> None:
    """Stop the services infra/dev started; prune dead leases and orphan test databases."""
    lifecycle.down(session.log, force="--force" in session.posargs)


@session(python=DEFAULT_PYTHON, uv_groups=["suite-test"], tags=["ci"])
def noxlib_test(session: nox.Session) -> None:
    """Test the suite itself: names, leases, databases, lifecycle, scripts and workflows."""
    env = suite_tests.prepare_inner_runs(session)
    session.run("pytest", *(session.posargs or suite_tests.DEFAULT_ARGS), env=env)
