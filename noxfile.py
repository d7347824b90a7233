#!/usr/bin/env -S uv run --script
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
#   "rich>=13.7",
# ]
# ///
"""Finance Report's development sessions. `nox -l` lists them; docs/development.md explains them.

Each session is a sentence; the logic lives in noxlib/. Tags say where a session runs:
`ci` (GitHub's matrix and `nox -s ci`), `frontend`, `shard` (test shards), `report`
(runs after the shards in GitHub).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

# nox imports this file by path; noxlib sits beside it.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from noxlib.bytecode import keep_bytecode

# Before anything else is imported: with PYTHONDONTWRITEBYTECODE set, every run would compile
# nox, noxlib and the apps from source again (noxlib/bytecode.py).
keep_bytecode()

# noxlib imports no client library (boto3, redis, psycopg, psutil) at module level: `nox -l`
# imports this whole file, and each session loads only what it uses (tests/test_startup_cost.py).
import noxlib.ci as local_ci
import noxlib.infra as infra_services
from noxlib import api_contract, backend_tests, container_tests, frontend, smoke_session, stack, suite_tests
from noxlib import bench as benchmarks
from noxlib import docs as docs_site
from noxlib import env_keys as env_key_contract
from noxlib import lint as lint_checks
from noxlib.errors import reported
from noxlib.session_venvs import session, share_between_runs

nox.needs_version = ">=2026.10.20"
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
# Keep session venvs between runs: `uv sync --locked` brings them up to date (a no-op when nothing
# changed), and runs in one checkout share them safely (noxlib/session_venvs.py). `--reuse-venv
# never` rebuilds on request.
nox.options.reuse_venv = "yes"
share_between_runs()

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)
DEFAULT_PYTHON = PYTHONS[0]
SHARDS = [f"{index}/{backend_tests.SHARD_COUNT}" for index in range(1, backend_tests.SHARD_COUNT + 1)]


# ----- everyday --------------------------------------------------------------------------------
@session(python=DEFAULT_PYTHON, uv_groups=["backend"], default=False)
@reported
def dev(session: nox.Session) -> None:
    """Run the app: services (kept), migrations, uvicorn --reload on :8000 (-- --frontend adds :3000)."""
    stack.run_dev(session, frontend="--frontend" in session.posargs)


@session(python=DEFAULT_PYTHON, uv_groups=["test"])
@reported
def test(session: nox.Session) -> None:
    """Run the backend tests on isolated services (posargs go to pytest; default -n auto)."""
    backend_tests.run(session)


@session(python=False, default=False)
@reported
def ci(session: nox.Session) -> None:
    """Run every ci-tagged session like GitHub does, in parallel; skip unchanged ones (-- -j N, --full, --no-cache)."""
    local_ci.run(session, Path(__file__))


@session(python=DEFAULT_PYTHON, uv_groups=["lint"], tags=["ci"])
@reported
def lint(session: nox.Session) -> None:
    """Lint Python (ruff), workflows (actionlint, zizmor), shell, Dockerfiles and the compose file."""
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    lint_checks.run(session)


@session(python=DEFAULT_PYTHON, uv_groups=["lint"], default=False)
@reported
def format(session: nox.Session) -> None:
    """Fix what ruff can fix and format the code."""
    session.run("ruff", "check", "--fix", ".")
    session.run("ruff", "format", ".")


# ----- services ----------------------------------------------------------------------------
@session(python=False, default=False)
@reported
def infra(session: nox.Session) -> None:
    """Start the services and keep them running; print their URLs (stop with `nox -s down`)."""
    infra_services.keep_services(session.log)


@session(python=False, default=False)
@reported
def down(session: nox.Session) -> None:
    """Stop the services infra/dev started; drop dead runs' test databases (-- --force, --prune-foreign)."""
    infra_services.down(
        session.log, force="--force" in session.posargs, prune_foreign="--prune-foreign" in session.posargs
    )


@session(python=DEFAULT_PYTHON, uv_groups=["backend"], default=False)
@reported
def boot(session: nox.Session) -> None:
    """Run the backend's boot gates on isolated services (posarg: dry-run, critical or full; default full)."""
    stack.run_boot(session, mode=session.posargs[0] if session.posargs else "full")


@session(python=DEFAULT_PYTHON, uv_groups=["backend", "smoke"], default=False)
@reported
def smoke(session: nox.Session) -> None:
    """Start the stack on free ports and smoke-test it (-- --base-url URL --mode prod/staging/dev: a deployment)."""
    smoke_session.run_session(session)


# ----- the matrix --------------------------------------------------------------------------
for _python in PYTHONS:

    @session(name=f"test-{_python}", python=_python, uv_groups=["test"], tags=["ci", "shard"], default=False)
    @nox.parametrize("shard", SHARDS)
    @reported
    def test_shard(session: nox.Session, shard: str) -> None:
        """One of the backend test shards on this Python, as one GitHub matrix job runs it."""
        backend_tests.run(session, shard=shard)


@session(python=DEFAULT_PYTHON, uv_groups=["test"], tags=["ci", "report"], default=False)
@reported
def coverage(session: nox.Session) -> None:
    """Combine the test runs' coverage, enforce the branch threshold, write htmlcov/ and lcov."""
    backend_tests.combine_coverage(session)


@session(python=DEFAULT_PYTHON, uv_groups=["test"], default=False)
@reported
def durations(session: nox.Session) -> None:
    """Re-record the test durations that balance the shards (apps/backend/test_durations.json)."""
    backend_tests.refresh_durations(session)


@session(python=DEFAULT_PYTHON, uv_groups=["test"], default=False)
@reported
def bench(session: nox.Session) -> None:
    """Measure cold start, join, template vs clone vs migrate, isolation, test overhead (-- --ci adds ci)."""
    benchmarks.run(session)


# ----- frontend ----------------------------------------------------------------------------
@session(python=False, tags=["ci", "frontend"], default=False)
@reported
def frontend_lint(session: nox.Session) -> None:
    """Lint the frontend with eslint (zero warnings)."""
    frontend.npm_script(session, "lint")


@session(python=False, tags=["ci", "frontend"], default=False)
@reported
def frontend_test(session: nox.Session) -> None:
    """Run the frontend's vitest suite."""
    frontend.npm_script(session, "test")


@session(python=False, tags=["ci", "frontend"], default=False)
@reported
def frontend_build(session: nox.Session) -> None:
    """Build the frontend for production (next build)."""
    frontend.npm_script(session, "build")


@session(python=False, tags=["frontend"], default=False)
@reported
def frontend_dev(session: nox.Session) -> None:
    """Run the Next.js dev server on :3000 against the backend at BACKEND_URL."""
    frontend.npm_script(session, "dev")


# ----- docs and contracts ------------------------------------------------------------------
@session(python=DEFAULT_PYTHON, uv_groups=["docs"], tags=["ci"], default=False)
@reported
def docs(session: nox.Session) -> None:
    """Serve the docs with live reload in a terminal; build them strictly otherwise (-- build)."""
    docs_site.run(session)


@session(python=DEFAULT_PYTHON, uv_groups=["docs"], tags=["ci"], default=False)
@reported
def env_keys(session: nox.Session) -> None:
    """Check the env-key contract: Settings, .env.example, the Vault template, frontend build args."""
    env_key_contract.run(session)


@session(python=DEFAULT_PYTHON, uv_groups=["backend"], tags=["ci"], default=False)
@reported
def api_types(session: nox.Session) -> None:
    """Check the frontend's API types match the backend's OpenAPI document (-- --fix regenerates them)."""
    api_contract.run(session, fix="--fix" in session.posargs)


@session(python=DEFAULT_PYTHON, uv_groups=["typecheck"], tags=["ci"], default=False)
@reported
def typecheck(session: nox.Session) -> None:
    """Type-check noxlib, the backend and the scripts with mypy --strict (what and how: pyproject.toml)."""
    session.run("mypy", *session.posargs)


@session(python=DEFAULT_PYTHON, uv_groups=["suite-test"], tags=["ci"], default=False)
@reported
def noxlib_test(session: nox.Session) -> None:
    """Test the suite itself: names, leases, databases, lifecycle, scripts and workflows."""
    env = suite_tests.prepare_inner_runs(session)
    session.run(
        "pytest", *(session.posargs or suite_tests.DEFAULT_ARGS), env=env, interrupt_timeout=suite_tests.CLEANUP_SECONDS
    )


@session(python=DEFAULT_PYTHON, uv_groups=["suite-test"], tags=["ci"], default=False)
@reported
def compose_test(session: nox.Session) -> None:
    """Test the compose backend, compose file and images on a real engine (skips when none answers)."""
    container_tests.run(session)


if __name__ == "__main__":
    # `./noxfile.py -s lint`: uv reads the PEP 723 block above and runs nox with it.
    nox.main()
