"""The test harness behind conftest.py: the environment contract, isolation, service cleanup.

The test lifecycle (`nox -s test`) hands the tests a contract in environment variables: a migrated
database per xdist worker, a Redis, an S3 bucket for the run. This module reads that contract and
keeps tests from seeing each other's data:

- PostgreSQL: by default each test runs inside one outer transaction that is rolled back at the
  end; the app's sessions join it through savepoints, so code that commits is still undone. The
  benchmark can choose `TEST_ISOLATION=truncate` or `rebuild` instead.
- Redis: every key the app writes starts with `<namespace>:<worker>`; they are deleted per test.
- S3: every object the app writes starts with `<worker>/`; they are deleted per test.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alembic import command
from src.config import Settings, load_settings
from src.database import get_session
from src.main import create_app
from src.migrations import alembic_config
from src.models import Base

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
ISOLATION_MODES = ("savepoint", "truncate", "rebuild")
SessionFactory = Callable[[], AsyncSession]


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
        guarantees the migrated database, and the gate has tests of its own."""
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
        }
        values.update(overrides)
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
        }
        environment.update(overrides)
        return environment


class Isolation(Protocol):
    name: str

    def isolate(self) -> Any:
        """An async context manager yielding the session factory the app uses for one test."""


class SavepointIsolation:
    """One outer transaction per test, rolled back afterwards; the default and the fastest."""

    name = "savepoint"

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def isolate(self) -> AsyncIterator[SessionFactory]:
        async with self.engine.connect() as connection:
            transaction = await connection.begin()
            try:
                # create_savepoint: a session's commit() releases a SAVEPOINT instead of
                # committing the outer transaction, which stays ours to roll back.
                yield lambda: AsyncSession(
                    bind=connection,
                    join_transaction_mode="create_savepoint",
                    expire_on_commit=False,
                )
            finally:
                await transaction.rollback()


class TruncateIsolation:
    """Real commits, then TRUNCATE of every table; kept for the isolation benchmark."""

    name = "truncate"

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def isolate(self) -> AsyncIterator[SessionFactory]:
        try:
            yield async_sessionmaker(self.engine, expire_on_commit=False)
        finally:
            await truncate_all_tables(self.engine)


class RebuildIsolation:
    """Real commits, then a fresh schema from migrations; the slowest, for the benchmark."""

    name = "rebuild"

    def __init__(self, engine: AsyncEngine, database_url: str) -> None:
        self.engine = engine
        self.database_url = database_url

    @asynccontextmanager
    async def isolate(self) -> AsyncIterator[SessionFactory]:
        try:
            yield async_sessionmaker(self.engine, expire_on_commit=False)
        finally:
            await rebuild_schema(self.engine, self.database_url)


async def truncate_all_tables(engine: AsyncEngine) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


async def rebuild_schema(engine: AsyncEngine, database_url: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    # alembic's runner is synchronous; a thread keeps it off the event loop.
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), "head")
    # Pooled connections may hold plans for the dropped tables.
    await engine.dispose()


def isolation_from_environ(
    engine: AsyncEngine, database_url: str, environ: Mapping[str, str] = os.environ
) -> Isolation:
    mode = environ.get("TEST_ISOLATION", "savepoint") or "savepoint"
    if mode == "savepoint":
        return SavepointIsolation(engine)
    if mode == "truncate":
        return TruncateIsolation(engine)
    if mode == "rebuild":
        return RebuildIsolation(engine, database_url)
    raise ContractError(f"TEST_ISOLATION={mode!r} is not one of {', '.join(ISOLATION_MODES)}")


@dataclass(frozen=True)
class WorkerBucket:
    """The run's S3 bucket as this worker sees it: only keys under its own prefix."""

    client: Any
    bucket: str
    prefix: str

    def keys(self) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix)
            for item in page.get("Contents", [])
        ]

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def delete_all(self) -> None:
        keys = self.keys()
        # delete_objects takes at most 1000 keys per call.
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})


@asynccontextmanager
async def app_with_settings(settings: Settings) -> AsyncIterator[FastAPI]:
    """A separate app for a test that needs other settings (a dead Redis, a tiny upload limit)."""
    app = create_app(settings)
    try:
        yield app
    finally:
        await app.state.resources.aclose()


@asynccontextmanager
async def isolated_client(app: FastAPI, session_factory: SessionFactory) -> AsyncIterator[AsyncClient]:
    """An HTTP client into `app` in-process, its database sessions joined to the test's."""

    async def isolated_session() -> AsyncIterator[AsyncSession]:
        async with session_factory() as session:
            yield session

    app.dependency_overrides[get_session] = isolated_session
    # raise_app_exceptions=False: a 500 must reach the test as the JSON response clients get.
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        app.dependency_overrides.clear()


async def delete_redis_keys(redis: Any, prefix: str) -> None:
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*", count=500)]
    if keys:
        await redis.delete(*keys)
