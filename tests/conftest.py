"""Shared fixtures for the suite's own tests.

The suite's tests run real services, but never the developer's: every test process points
FR_CACHE_DIR at a state directory of this test run, so its native services, leases and
templates are separate (other ports, other data) and vanish with the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

SUITE_STATE_ROOT = Path("/var/tmp")


SUITE_PREFIX = "finance_report-suite-"


def _suite_state_dir() -> Path:
    """The controller picks the directory; xdist workers inherit it through the environment."""
    inherited = os.environ.get("FR_CACHE_DIR", "")
    if Path(inherited).name.startswith(SUITE_PREFIX):
        return Path(inherited)
    # Under root, PostgreSQL runs as an unprivileged account: the directory must be enterable,
    # so it lives under /var/tmp (not pytest's private 0700 tmp dirs) and is 0755.
    return SUITE_STATE_ROOT / f"{SUITE_PREFIX}{os.getpid()}"


def _inside_a_lifecycle_run() -> bool:
    # The lifecycle tests run tests/lifecycle/probe_run.py through `nox -s test`; this conftest
    # is then an ancestor conftest of the probe and must leave the run's environment alone.
    return "TEST_NAMESPACE" in os.environ


def pytest_configure(config: pytest.Config) -> None:
    if _inside_a_lifecycle_run():
        return
    state = _suite_state_dir()
    state.mkdir(mode=0o755, exist_ok=True)
    state.chmod(0o755)
    os.environ["FR_CACHE_DIR"] = str(state)
    os.environ["FR_SERVICES"] = "native"
    for key in ("BRANCH_NAME", "WORKSPACE_ID", "DATABASE_URL"):
        os.environ.pop(key, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or _inside_a_lifecycle_run():
        return  # only the controller tidies up, after every worker is done
    from noxlib.services.native import NativeServices

    state = Path(os.environ["FR_CACHE_DIR"])
    native = NativeServices(state / "native")
    if native.running():
        native.stop()
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def services() -> Iterator:
    """A lease on this test run's native services, held for the whole worker session."""
    from noxlib import service_leases

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with service_leases.leased_services("suite", f"suite_{worker}", log=lambda line: None) as lease:
        yield lease


@pytest.fixture
def admin_url(services) -> str:
    return services.urls.database_url()
