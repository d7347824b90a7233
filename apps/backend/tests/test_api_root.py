"""The backend's bare address, as `nox -s dev` prints it, leads a browser to the API docs."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

pytestmark = pytest.mark.integration


async def test_the_bare_address_redirects_to_the_api_docs_which_answer(client: AsyncClient) -> None:
    """It answered `{"detail":"Not Found"}`: the first page a newcomer opened was an error."""
    response = await client.get("/")
    assert response.status_code == 307
    assert response.headers["location"] == "/api/docs"
    docs = await client.get(response.headers["location"])
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text.lower()


async def test_the_redirect_is_not_part_of_the_api_document(client: AsyncClient) -> None:
    """The frontend's types come from the OpenAPI document; a page for people is not an operation."""
    paths = (await client.get("/api/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert all(path.startswith("/api/") for path in paths)
