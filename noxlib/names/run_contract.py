"""The environment noxlib hands an app process: one typed object, one writer.

Every name an app of a run uses — its database and, for test runs, the pattern of the xdist
workers' clones, its bucket, its Redis key prefix — is decided here from the namespace and the
kind of run, and written to the environment by `to_env()`. The apps (the backend, its test
harness, the probes of the suite's own tests) parse these keys and never re-derive a name, so a
naming rule changed in noxlib/names/namespace.py reaches them without a second edit.

The Redis prefix carries the kind (`test.<ns>`, `dev.<ns>`): a sanitized namespace never holds a
`.`, so a test run's cleanup of `test.<ns>:*` can never reach the keys of `nox -s dev`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from noxlib.core.errors import UserError
from noxlib.names.namespace import (
    get_dev_bucket,
    get_dev_db_name,
    get_s3_bucket,
    get_test_db_name,
    worker_db_pattern,
)
from noxlib.names.service_urls import ServiceUrls

Kind = Literal["test", "dev"]
# The driver the backend's SQLAlchemy engine speaks; admin connections use plain postgresql://.
APP_DRIVER = "postgresql+psycopg"
# Where the services are: what a user hands `FR_SERVICES=external`, and every app reads.
SERVICE_KEYS = ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY")
# What a run adds: the names that make it this run's. Test runs add the two TEST_* keys.
RUN_KEYS = ("S3_REGION", "S3_BUCKET", "REDIS_KEY_PREFIX")
TEST_KEYS = ("TEST_NAMESPACE", "TEST_DATABASE_WORKER_PATTERN")


@dataclass(frozen=True)
class RunContract:
    """What one run's app processes are told; `to_env()` and `from_env()` are inverses."""

    kind: Kind
    namespace: str
    database: str
    database_url: str
    redis_url: str
    redis_key_prefix: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_region: str
    bucket: str
    # `{worker}` stands for gw0, gw1, …; empty for dev runs, which have no workers.
    worker_database_pattern: str = ""

    @classmethod
    def for_run(cls, kind: Kind, urls: ServiceUrls, namespace: str) -> RunContract:
        """The contract of a `kind` run of `namespace` on the services at `urls`."""
        if kind == "test":
            database, bucket = get_test_db_name(namespace), get_s3_bucket(namespace)
            pattern = worker_db_pattern(namespace)
        else:
            database, bucket, pattern = get_dev_db_name(namespace), get_dev_bucket(namespace), ""
        return cls(
            kind=kind,
            namespace=namespace,
            database=database,
            database_url=urls.database_url(database, driver=APP_DRIVER),
            redis_url=urls.redis_url,
            redis_key_prefix=f"{kind}.{namespace}",
            s3_endpoint=urls.s3_endpoint,
            s3_access_key=urls.s3_access_key,
            s3_secret_key=urls.s3_secret_key,
            s3_region=urls.s3_region,
            bucket=bucket,
            worker_database_pattern=pattern,
        )

    @property
    def redis_key_pattern(self) -> str:
        """Every key the run's apps may write (the harness appends `:<worker>`, the app `:…`)."""
        return f"{self.redis_key_prefix}:*"

    def to_env(self) -> dict[str, str]:
        """The keys the apps read: always all of them for the kind, never others."""
        env = {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "REDIS_KEY_PREFIX": self.redis_key_prefix,
            "S3_ENDPOINT": self.s3_endpoint,
            "S3_ACCESS_KEY": self.s3_access_key,
            "S3_SECRET_KEY": self.s3_secret_key,
            "S3_REGION": self.s3_region,
            "S3_BUCKET": self.bucket,
        }
        if self.kind == "test":
            env["TEST_NAMESPACE"] = self.namespace
            env["TEST_DATABASE_WORKER_PATTERN"] = self.worker_database_pattern
        return env

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RunContract:
        """Read back a contract written by `to_env()`; one line naming what is missing otherwise."""
        kind: Kind = "test" if "TEST_NAMESPACE" in env else "dev"
        needed = SERVICE_KEYS + RUN_KEYS + (TEST_KEYS if kind == "test" else ())
        missing = [key for key in needed if not env.get(key)]
        if missing:
            raise UserError(f"the run's environment lacks {', '.join(missing)}; start it through nox.")
        prefix = env["REDIS_KEY_PREFIX"]
        namespace = env.get("TEST_NAMESPACE") or prefix.partition(".")[2]
        url = env["DATABASE_URL"]
        return cls(
            kind=kind,
            namespace=namespace,
            database=url.rsplit("/", 1)[-1].split("?", 1)[0],
            database_url=url,
            redis_url=env["REDIS_URL"],
            redis_key_prefix=prefix,
            s3_endpoint=env["S3_ENDPOINT"],
            s3_access_key=env["S3_ACCESS_KEY"],
            s3_secret_key=env["S3_SECRET_KEY"],
            s3_region=env["S3_REGION"],
            bucket=env["S3_BUCKET"],
            worker_database_pattern=env.get("TEST_DATABASE_WORKER_PATTERN", ""),
        )
