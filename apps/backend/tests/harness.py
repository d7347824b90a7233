"""The test harness behind conftest.py: isolation and service cleanup.

The test lifecycle (`nox -s test`) hands the tests a contract in environment variables (read by
contract.py): a migrated database per xdist worker, a Redis, an S3 bucket for the run. This module
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
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alembic import command
from src.config import Settings
from src.database import get_session
from src.main import create_app
from src.migrations import alembic_config
from src.models import Base
from tests.contract import ContractError

ISOLATION_MODES = ("savepoint", "truncate", "rebuild")
SessionFactory = Callable[[], AsyncSession]


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


def waiting_lock_requests_sql(table: str) -> str:
    """Lock requests on `table` in this database that wait, not granted: how a test sees the app's
    writes queue behind a lock it holds, by count rather than by time."""
    return f"""
SELECT count(*) FROM pg_locks
WHERE NOT granted AND relation = '{table}'::regclass
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
