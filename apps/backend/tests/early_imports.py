"""Import the libraries the tests use before coverage starts tracing, in the processes that run tests.

Coverage's tracer is called for every Python function call, measured file or not; importing
FastAPI, SQLAlchemy, pydantic, schemathesis and boto3 under it costs each pytest worker about a
second of CPU for lines nobody measures. Imported before pytest-cov starts, they cost what they
cost without coverage, and nothing of `src` is imported here, so every line of the app is still
measured from its first import on.

Loaded with `-p tests.early_imports` (addopts); only where tests run under coverage: an xdist
worker, or a run without workers. The xdist controller runs no test and skips it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Generator

import pytest

LIBRARIES = (
    "fastapi",
    "pydantic",
    "sqlalchemy",
    "sqlalchemy.ext.asyncio",
    "psycopg",
    "httpx",
    "redis.asyncio",
    "boto3",
    "alembic.command",
    "alembic.config",
    "hypothesis",
    "schemathesis",
)


def runs_tests_under_coverage(config: pytest.Config) -> bool:
    options = config.known_args_namespace
    if not getattr(options, "cov_source", None) or getattr(options, "no_cov", False):
        return False
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return True
    workers = getattr(options, "numprocesses", None)
    return not workers  # None or 0: this process runs the tests itself


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None, None, None]:
    """A wrapper runs before every plain implementation, pytest-cov's (which starts coverage) included."""
    if runs_tests_under_coverage(early_config):
        for name in LIBRARIES:
            importlib.import_module(name)
    return (yield)
