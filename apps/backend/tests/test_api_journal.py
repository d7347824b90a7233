"""POST/GET /api/journal: exact money in and out, and clear validation errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import make_url, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.models import JournalEntry
from tests.contract import TestContract
from tests.harness import app_with_settings
from tests.tcp_proxy import loopback_proxy

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
        ({"date": 0, "amount": "1", "description": "x"}, "body.date: Value error, dates are ISO strings"),
        ({"date": 1709251200, "amount": "1", "description": "x"}, "body.date"),
        ({"date": "20240301", "amount": "1", "description": "x"}, "body.date"),
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


@pytest.mark.parametrize(
    ("sent", "normalised"),
    [("1E+2", "100.00"), ("-0", "0.00"), ("-0.00", "0.00"), ("5", "5.00"), ("0.1", "0.10"), (7, "7.00")],
)
async def test_a_write_echoes_the_amount_as_reads_return_it(
    client: AsyncClient, sent: str | int, normalised: str
) -> None:
    created = await client.post("/api/journal", json={"date": "2024-03-01", "amount": sent, "description": "x"})
    assert created.status_code == 201, created.text
    assert created.json()["amount"] == normalised
    listed = (await client.get("/api/journal")).json()
    assert [entry["amount"] for entry in listed] == [normalised]


async def test_options_lists_every_supported_method(client: AsyncClient) -> None:
    response = await client.options("/api/journal")
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, POST"
    wrong = await client.put("/api/journal")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, POST")
    assert (await client.options("/api/nowhere")).status_code == 404


async def test_a_connection_killed_during_the_insert_is_a_retryable_503(
    contract: TestContract, db_session: AsyncSession
) -> None:
    """A real TCP proxy cuts the app's database connection when the INSERT goes out."""
    url = make_url(contract.database_url)
    with loopback_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port, query={"sslmode": "disable", "gssencmode": "disable"})
        settings = contract.settings(database_url=proxied.render_as_string(hide_password=False))
        async with app_with_settings(settings) as app:
            transport = ASGITransport(app=app, raise_app_exceptions=False)
            async with AsyncClient(transport=transport, base_url="http://testserver") as client:
                proxy.cut_on(b"INSERT INTO journal_entries")
                response = await client.post(
                    "/api/journal", json={"date": "2024-03-01", "amount": "1.00", "description": "cut"}
                )
    assert proxy.faults_fired == ["cut"]
    assert response.status_code == 503
    assert response.json() == {"detail": "the database is unavailable; try again", "code": "database_unavailable"}
    assert response.headers["retry-after"] == "1"
    assert (await db_session.scalars(select(JournalEntry).where(JournalEntry.description == "cut"))).all() == []
