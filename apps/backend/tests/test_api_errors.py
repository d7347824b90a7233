"""Every error is JSON `{detail, code}`, whatever raised it; CORS follows CORS_ORIGINS."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from src.errors import ApiError, code_for_status
from tests.contract import TestContract
from tests.harness import SessionFactory, app_with_settings, isolated_client

pytestmark = pytest.mark.integration


async def test_unknown_route_is_a_json_404(client: AsyncClient) -> None:
    response = await client.get("/api/nowhere")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found", "code": "not_found"}


async def test_wrong_method_is_a_json_405_with_allow(client: AsyncClient) -> None:
    response = await client.put("/api/journal")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response.headers["allow"]


async def test_path_parameter_out_of_range_is_a_json_422(client: AsyncClient) -> None:
    response = await client.get(f"/api/statements/{2**64}")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("path.statement_id")


async def test_unexpected_exception_is_a_json_500_without_internals(
    contract: TestContract, session_factory: SessionFactory
) -> None:
    async with app_with_settings(contract.settings()) as app:

        @app.get("/api/explode")
        async def explode() -> None:
            raise RuntimeError("secret internals")

        @app.get("/api/teapot")
        async def teapot() -> None:
            raise ApiError(418, "teapot", "short and stout")

        async with isolated_client(app, session_factory) as client:
            exploded = await client.get("/api/explode")
            brewed = await client.get("/api/teapot")
    assert exploded.status_code == 500
    assert exploded.json() == {"detail": "internal server error", "code": "internal_error"}
    assert "secret internals" not in exploded.text
    assert (brewed.status_code, brewed.json()["code"]) == (418, "teapot")


async def test_cors_allows_configured_origins_only(contract: TestContract, session_factory: SessionFactory) -> None:
    preflight = {"access-control-request-method": "POST"}
    settings = contract.settings(cors_origins=["http://app.example"])
    async with app_with_settings(settings) as app, isolated_client(app, session_factory) as client:
        allowed = await client.options("/api/journal", headers={"origin": "http://app.example", **preflight})
        refused = await client.options("/api/journal", headers={"origin": "http://evil.example", **preflight})
    assert allowed.headers["access-control-allow-origin"] == "http://app.example"
    assert "access-control-allow-origin" not in refused.headers


@pytest.mark.parametrize(
    ("status", "code"),
    [(404, "not_found"), (405, "method_not_allowed"), (599, "http_error")],
)
def test_code_for_status(status: int, code: str) -> None:
    assert code_for_status(status) == code
