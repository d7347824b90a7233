"""Fixtures over the real PostgreSQL, Redis and S3 of the run; the machinery is in harness.py.

This module imports nothing heavy at module level: the contract check in `pytest_configure` runs
before the app, SQLAlchemy or boto3 are loaded (so `pytest` by hand stops with one line at once),
and pytest-xdist's controller process, which runs no test, never pays for them. Fixtures import
what they use; the test modules the workers collect load the app anyway.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

from tests.contract import ContractError, TestContract

if TYPE_CHECKING:
    from fastapi import FastAPI
    from httpx import AsyncClient
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

    from tests.harness import Isolation, SessionFactory, WorkerBucket
    from tests.served_app import ServedApp


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help:
        return
    try:
        TestContract.from_environ(os.environ)
    except ContractError as error:
        raise pytest.UsageError(str(error)) from None
    load_hypothesis_profile()


def load_hypothesis_profile() -> None:
    """Generated-input tests (test_fuzz.py, test_reconciliation_matching.py): a few examples per
    operation at the desk keep `nox -s test` quick; CI (CI=true, as GitHub sets it) runs four times
    as many. HYPOTHESIS_PROFILE picks one.

    Both profiles judge what a test proves, never how fast this machine ran it: no per-example
    deadline and no health check that times generation (`too_slow`) or measures its size
    (`data_too_large`), which fail a correct test when other processes share the cores.
    """
    from hypothesis import HealthCheck
    from hypothesis import settings as hypothesis_settings

    machine_independent = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    }
    hypothesis_settings.register_profile("dev", max_examples=10, **machine_independent)
    hypothesis_settings.register_profile("ci", max_examples=40, **machine_independent)
    ci = os.environ.get("CI", "").lower() in {"1", "true"}
    hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if ci else "dev"))


@pytest.fixture(scope="session")
def contract() -> TestContract:
    return TestContract.from_environ(os.environ)


@pytest.fixture(scope="session")
async def engine(contract: TestContract) -> AsyncIterator[AsyncEngine]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(contract.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def isolation(engine: AsyncEngine, contract: TestContract) -> Isolation:
    from tests.harness import isolation_from_environ

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
    from redis.asyncio import Redis

    client = Redis.from_url(contract.redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def s3_client(contract: TestContract) -> object:
    import boto3

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
    from tests.harness import WorkerBucket

    worker_bucket = WorkerBucket(s3_client, contract.s3_bucket, contract.s3_key_prefix)
    yield worker_bucket
    worker_bucket.delete_all()


@pytest.fixture
async def redis_keys(redis: Redis, contract: TestContract) -> AsyncIterator[str]:
    """This worker's Redis key prefix; its keys are deleted after each test."""
    from tests.harness import delete_redis_keys

    yield contract.redis_key_prefix
    await delete_redis_keys(redis, contract.redis_key_prefix)


@pytest.fixture(scope="session")
async def app(contract: TestContract) -> AsyncIterator[FastAPI]:
    from src.main import create_app

    application = create_app(contract.settings())
    yield application
    await application.state.resources.aclose()


@pytest.fixture
async def client(
    app: FastAPI, session_factory: SessionFactory, bucket: WorkerBucket, redis_keys: str
) -> AsyncIterator[AsyncClient]:
    from tests.harness import isolated_client

    async with isolated_client(app, session_factory) as http_client:
        yield http_client


@pytest.fixture(scope="session")
def served_app(contract: TestContract, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """One real uvicorn per worker for the tests marked `served_app.XDIST_GROUP` (see served_app.py)."""
    from tests.served_app import serve

    with serve(contract, tmp_path_factory.mktemp("served_app")) as served:
        yield served
