"""Generated requests from the OpenAPI document, in-process against the ASGI app.

Schemathesis drives a separate app instance with its real lifespan (start-up gate included) and
real commits; afterwards the worker's tables, keys and objects are cleared. The checks: no 5xx,
responses match the documented schemas and status codes, and every 4xx is a JSON error body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from redis.asyncio import Redis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from src.main import create_app
from tests.contract import TestContract
from tests.harness import WorkerBucket, delete_redis_keys, truncate_all_tables

# no_cover (pytest-cov): the calls are not traced. The fuzz proves the API survives odd input; under
# the tracer its generation and schema checks cost several seconds of CPU, and every line of
# `src` it reaches is also run by a test that names the case (the lifespan through the ASGI
# protocol by test_startup.py), so the coverage figure is the same without it.
pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.no_cover]

# Examples per operation and generation mode come from the hypothesis profile (conftest.py):
# 10 at the desk, 40 in CI (11 operations x 2 modes x 40: about 330 requests, some operations
# having fewer distinct inputs). A run must generate at least this many requests per example.
REQUESTS_PER_EXAMPLE = 2.5


def error_is_json(ctx: object, response: schemathesis.Response, case: schemathesis.Case) -> bool:
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict), f"{response.status_code} body is not a JSON object"
        assert isinstance(body.get("detail"), str), f"{response.status_code} without a detail"
        assert isinstance(body.get("code"), str), f"{response.status_code} without a code"
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_is_json,
]


@pytest.fixture(scope="module")
async def fuzzed_schema(
    contract: TestContract, engine: AsyncEngine, redis: Redis, s3_client: object
) -> AsyncIterator[schemathesis.BaseSchema]:
    prefix = f"{contract.worker}-fuzz"
    app = create_app(
        contract.settings(
            boot_gate_on_startup=True,
            redis_key_prefix=f"{contract.redis_key_prefix}:fuzz",
            s3_key_prefix=f"{prefix}/",
            max_upload_bytes=64 * 1024,
        )
    )
    yield schemathesis.openapi.from_asgi("/api/openapi.json", app)
    await truncate_all_tables(engine)
    await delete_redis_keys(redis, f"{contract.redis_key_prefix}:fuzz")
    WorkerBucket(s3_client, contract.s3_bucket, f"{prefix}/").delete_all()


def takes_input(operation: Any) -> bool:
    parameters = (operation.path_parameters, operation.query, operation.body)
    return any(len(parameter) for parameter in parameters)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_api_survives_generated_requests(fuzzed_schema: schemathesis.BaseSchema, mode: GenerationMode) -> None:
    calls = 0
    for result in fuzzed_schema.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and not takes_input(operation):
            continue  # nothing to make invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call_and_validate(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(checks=CHECKS)

        call_and_validate()
    expected = int(settings.default.max_examples * REQUESTS_PER_EXAMPLE)
    assert calls >= expected, f"only {calls} requests were generated (expected {expected})"
