"""POST/GET /api/journal: exact money in and out, and clear validation errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from src.models import JournalEntry

pytestmark = pytest.mark.integration


async def test_create_entry_keeps_the_amount_exact(client: AsyncClient, db_session: AsyncSession) -> None:
    response = await client.post("/api/journal", json={"date": "2024-03-01", "amount": "0.10", "description": "Fee"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["amount"], body["currency"], body["description"]) == ("0.10", "USD", "Fee")
    row = await db_session.get(JournalEntry, body["id"])
    assert row is not None
    assert row.amount == Decimal("0.10")


async def test_list_is_in_ledger_order_and_paginates(client: AsyncClient) -> None:
    for day, description in (("2024-03-05", "later"), ("2024-03-01", "earlier")):
        entry = {"date": day, "amount": 12.3, "description": description, "currency": "EUR"}
        assert (await client.post("/api/journal", json=entry)).status_code == 201
    listed = (await client.get("/api/journal")).json()
    assert [entry["description"] for entry in listed] == ["earlier", "later"]
    assert listed[0]["amount"] == "12.30"
    paged = (await client.get("/api/journal", params={"limit": 1, "offset": 1})).json()
    assert [entry["description"] for entry in paged] == ["later"]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"date": "2024-03-01", "amount": "1.001", "description": "x"}, "body.amount"),
        ({"date": "2024-03-01", "amount": "NaN", "description": "x"}, "body.amount"),
        ({"date": "2024-03-01", "amount": "1", "description": "  "}, "body.description"),
        ({"date": "2024-03-01", "amount": "1", "description": "a\u0000b"}, "body.description"),
        ({"date": "03/01/2024", "amount": "1", "description": "x"}, "body.date"),
        ({"date": "2024-03-01", "amount": "1", "description": "x", "currency": "eur"}, "currency"),
        ({"date": "2024-03-01", "amount": "1", "description": "x", "memo": "?"}, "body.memo"),
    ],
)
async def test_invalid_entry_is_a_json_422_naming_the_field(
    client: AsyncClient, db_session: AsyncSession, payload: dict, problem: str
) -> None:
    response = await client.post("/api/journal", json=payload)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert problem in body["detail"]
    assert (await db_session.scalars(select(JournalEntry))).all() == []


async def test_malformed_json_is_a_json_422(client: AsyncClient) -> None:
    response = await client.post("/api/journal", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_bad_pagination_is_a_json_422(client: AsyncClient) -> None:
    response = await client.get("/api/journal", params={"limit": 0})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("query.limit")
