"""Fixtures over the real PostgreSQL, Redis and S3 of the run; the machinery is in harness.py."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import boto3
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from hypothesis import settings as hypothesis_settings
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from src.main import create_app
from tests.harness import (
    ContractError,
    Isolation,
    SessionFactory,
    TestContract,
    WorkerBucket,
    delete_redis_keys,
    isolated_client,
    isolation_from_environ,
)

# Generated-input tests (test_fuzz.py): a few examples per operation at the desk keep `nox -s test`
# quick; CI (CI=true, as GitHub sets it) runs four times as many. HYPOTHESIS_PROFILE picks one.
hypothesis_settings.register_profile("dev", max_examples=10)
hypothesis_settings.register_profile("ci", max_examples=40)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI", "").lower() in {"1", "true"} else "dev")
)


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help:
        return
    try:
        TestContract.from_environ(os.environ)
    except ContractError as error:
        raise pytest.UsageError(str(error)) from None


@pytest.fixture(scope="session")
def contract() -> TestContract:
    return TestContract.from_environ(os.environ)


@pytest.fixture(scope="session")
async def engine(contract: TestContract) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(contract.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def isolation(engine: AsyncEngine, contract: TestContract) -> Isolation:
    return isolation_from_environ(engine, contract.database_url)


@pytest.fixture
async def session_factory(isolation: Isolation) -> AsyncIterator[SessionFactory]:
    """The sessions of one test: the app's requests and the test's own queries share them."""
    async with isolation.isolate() as factory:
        yield factory


@pytest.fixture
async def db_session(session_factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    async with session_factory() as session:
        yield session


@pytest.fixture(scope="session")
async def redis(contract: TestContract) -> AsyncIterator[Redis]:
    client = Redis.from_url(contract.redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def s3_client(contract: TestContract) -> object:
    return boto3.client(
        "s3",
        endpoint_url=contract.s3_endpoint,
        aws_access_key_id=contract.s3_access_key,
        aws_secret_access_key=contract.s3_secret_key,
        region_name=contract.s3_region,
    )


@pytest.fixture
def bucket(s3_client: object, contract: TestContract) -> Iterator[WorkerBucket]:
    """This worker's part of the run's bucket, emptied after each test."""
    worker_bucket = WorkerBucket(s3_client, contract.s3_bucket, contract.s3_key_prefix)
    yield worker_bucket
    worker_bucket.delete_all()


@pytest.fixture
async def redis_keys(redis: Redis, contract: TestContract) -> AsyncIterator[str]:
    """This worker's Redis key prefix; its keys are deleted after each test."""
    yield contract.redis_key_prefix
    await delete_redis_keys(redis, contract.redis_key_prefix)


@pytest.fixture(scope="session")
async def app(contract: TestContract) -> AsyncIterator[FastAPI]:
    application = create_app(contract.settings())
    yield application
    await application.state.resources.aclose()


@pytest.fixture
async def client(
    app: FastAPI, session_factory: SessionFactory, bucket: WorkerBucket, redis_keys: str
) -> AsyncIterator[AsyncClient]:
    async with isolated_client(app, session_factory) as http_client:
        yield http_client
