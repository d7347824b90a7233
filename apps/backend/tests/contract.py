"""The test contract: what `nox -s test` hands the tests in environment variables.

Kept apart from harness.py and free of heavy imports (the app, SQLAlchemy, boto3) on purpose:
conftest.py checks the contract before anything else, so `pytest` run by hand stops with one
line at once, and pytest-xdist's controller process, which runs no test, never imports the app.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from src.config import Settings

CONTRACT_KEYS = (
    "DATABASE_URL",
    "TEST_DATABASE_WORKER_PATTERN",
    "TEST_NAMESPACE",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_BUCKET",
    "S3_REGION",
)

# HEALTH_CHECK_TIMEOUT of every app under test, unless a test sets its own. A test judges a
# dependency by its answer (a refused port, a missing bucket), never by how fast this machine got
# it: on a loaded machine a fresh app's first database check alone has taken over 2 s, the
# production default. Only the tests of hung dependencies set a short timeout, to prove it ends.
PATIENT_CHECK_TIMEOUT_SECONDS = 60.0


class ContractError(RuntimeError):
    """The environment does not carry the test contract; pytest is being run by hand."""


def missing_contract_keys(environ: Mapping[str, str]) -> list[str]:
    return [key for key in CONTRACT_KEYS if not environ.get(key)]


def get_worker_database_name(pattern: str, database_name: str, worker: str | None) -> str:
    """The lifecycle clones one database per xdist worker and hands over how it named them
    (`TEST_DATABASE_WORKER_PATTERN`, `{worker}` standing for `gw0`, `gw1`, ...): the harness
    never re-derives the lifecycle's naming rule."""
    return pattern.replace("{worker}", worker) if worker else database_name


def get_worker_database_url(database_url: str, worker: str | None, pattern: str) -> str:
    from sqlalchemy import make_url

    url = make_url(database_url)
    worker_url = url.set(database=get_worker_database_name(pattern, url.database or "", worker))
    return worker_url.render_as_string(hide_password=False)


@dataclass(frozen=True)
class TestContract:
    """What the lifecycle handed this worker, and the prefixes that keep workers apart."""

    __test__ = False  # not a test class, despite the name

    database_url: str
    namespace: str
    worker: str
    redis_url: str
    run_redis_key_prefix: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_bucket: str
    s3_region: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> TestContract:
        missing = missing_contract_keys(environ)
        if missing:
            raise ContractError(
                "run via `nox -s test` (it starts PostgreSQL, Redis and S3 and exports the "
                f"test contract); missing: {', '.join(missing)}"
            )
        worker = environ.get("PYTEST_XDIST_WORKER") or None
        pattern = environ["TEST_DATABASE_WORKER_PATTERN"]
        return cls(
            database_url=get_worker_database_url(environ["DATABASE_URL"], worker, pattern),
            namespace=environ["TEST_NAMESPACE"],
            worker=worker or "main",
            redis_url=environ["REDIS_URL"],
            run_redis_key_prefix=environ["REDIS_KEY_PREFIX"],
            s3_endpoint=environ["S3_ENDPOINT"],
            s3_access_key=environ["S3_ACCESS_KEY"],
            s3_secret_key=environ["S3_SECRET_KEY"],
            s3_bucket=environ["S3_BUCKET"],
            s3_region=environ["S3_REGION"],
        )

    @property
    def redis_key_prefix(self) -> str:
        """The run's prefix (the lifecycle's cleanup removes everything under it) plus the worker."""
        return f"{self.run_redis_key_prefix}:{self.worker}"

    @property
    def s3_key_prefix(self) -> str:
        return f"{self.worker}/"

    def settings(self, **overrides: Any) -> Settings:
        """Settings for an app under test; the start-up gate is off because the harness already
        guarantees the migrated database, and the gate has tests of its own; checks are patient
        (PATIENT_CHECK_TIMEOUT_SECONDS)."""
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "redis_key_prefix": self.redis_key_prefix,
            "s3_endpoint": self.s3_endpoint,
            "s3_access_key": self.s3_access_key,
            "s3_secret_key": self.s3_secret_key,
            "s3_bucket": self.s3_bucket,
            "s3_region": self.s3_region,
            "s3_key_prefix": self.s3_key_prefix,
            "boot_gate_on_startup": False,
            "health_check_timeout_seconds": PATIENT_CHECK_TIMEOUT_SECONDS,
        }
        values.update(overrides)
        from src.config import load_settings

        return load_settings(**values)

    def environ(self, **overrides: str) -> dict[str, str]:
        """The environment a subprocess (boot gate, uvicorn) needs to see this worker's services."""
        environment = {
            **os.environ,
            "ENVIRONMENT": "test",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "REDIS_KEY_PREFIX": self.redis_key_prefix,
            "S3_ENDPOINT": self.s3_endpoint,
            "S3_ACCESS_KEY": self.s3_access_key,
            "S3_SECRET_KEY": self.s3_secret_key,
            "S3_BUCKET": self.s3_bucket,
            "S3_REGION": self.s3_region,
            "S3_KEY_PREFIX": self.s3_key_prefix,
            "HEALTH_CHECK_TIMEOUT": f"{PATIENT_CHECK_TIMEOUT_SECONDS:g}",
        }
        environment.update(overrides)
        return environment
