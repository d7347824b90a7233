"""GET /api/health against the real services, and against dead ones."""

from __future__ import annotations

import re
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient

from tests.contract import TestContract
from tests.dead_endpoints import closed_port, silent_server
from tests.harness import app_with_settings

pytestmark = pytest.mark.integration


async def get_health(contract: TestContract, **overrides: Any) -> tuple[int, dict[str, Any]]:
    """Health of a fresh app whose settings differ from the working ones by `overrides`."""
    async with app_with_settings(contract.settings(**overrides)) as app:
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/api/health")
    return response.status_code, response.json()


async def test_healthy_when_every_dependency_answers(client: AsyncClient) -> None:
    response = await client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["failing"] == []
    assert body["git_sha"] == "unknown"
    assert set(body["checks"]) == {"database", "redis", "s3"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert body["timestamp"].endswith("Z") or "+00:00" in body["timestamp"]


async def test_reports_the_build_sha(contract: TestContract) -> None:
    status, body = await get_health(contract, git_commit_sha="abc1234")
    assert (status, body["git_sha"]) == (200, "abc1234")


async def test_degraded_200_when_redis_port_is_closed(contract: TestContract) -> None:
    """Redis is a cache: without it the app serves every request, so a load balancer must keep it."""
    status, body = await get_health(contract, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    assert status == 200
    assert body["status"] == "degraded"
    assert body["failing"] == ["redis"]
    assert body["checks"]["redis"]["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["s3"]["status"] == "ok"


async def test_a_hung_redis_costs_one_timeout_not_a_hang(contract: TestContract) -> None:
    with silent_server() as port:
        status, body = await get_health(
            contract, redis_url=f"redis://127.0.0.1:{port}/0", health_check_timeout_seconds=1.0
        )
    redis_check = body["checks"]["redis"]
    assert redis_check["status"] == "error"
    assert "timed out after 1 s" in redis_check["message"] or "Timeout" in redis_check["message"]
    assert "redis" in body["failing"]
    # On a loaded machine the database may miss so short a timeout too; only that makes it a 503.
    assert (status, body["status"]) == ((503, "unhealthy") if "database" in body["failing"] else (200, "degraded"))


async def test_unhealthy_when_the_database_is_down(contract: TestContract) -> None:
    dead = f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/nothing"
    status, body = await get_health(contract, database_url=dead)
    assert status == 503
    assert body["status"] == "unhealthy"
    assert body["failing"] == ["database"]
    assert body["checks"]["database"]["status"] == "error"


async def test_degraded_when_the_bucket_is_missing(contract: TestContract) -> None:
    status, body = await get_health(contract, s3_bucket="no-such-bucket-anywhere")
    assert (status, body["status"], body["failing"]) == (200, "degraded", ["s3"])
    assert body["checks"]["s3"]["message"].startswith("BucketMissingError: bucket no-such-bucket")


async def test_degraded_when_s3_is_down(contract: TestContract) -> None:
    status, body = await get_health(contract, s3_endpoint=f"http://127.0.0.1:{closed_port()}")
    assert (status, body["status"]) == (200, "degraded")
    assert body["checks"]["s3"]["status"] == "error"


async def test_openapi_and_swagger_ui_are_served_under_api(client: AsyncClient) -> None:
    schema = (await client.get("/api/openapi.json")).json()
    assert "/api/statements" in schema["paths"]
    docs = await client.get("/api/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text.lower()


async def test_swagger_ui_works_offline(client: AsyncClient) -> None:
    """Every script and style the docs page loads is served by the app itself, not a CDN."""
    page = (await client.get("/api/docs")).text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
    assert assets, page
    for asset in assets:
        assert asset.startswith("/api/"), f"{asset} is not served by the app"
        response = await client.get(asset)
        assert response.status_code == 200, asset
    script = next(asset for asset in assets if asset.endswith(".js"))
    assert "SwaggerUIBundle" in (await client.get(script)).text
